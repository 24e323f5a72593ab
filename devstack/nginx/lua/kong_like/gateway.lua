-- The phase handlers with Kong's timestamps: KONG_WAITING_TIME is header-filter start (cached time) minus
-- balancer end (updated time), sent as X-Kong-Upstream-Latency.
local balancer = require "ngx.balancer"
local cjson = require "cjson.safe"
local config = require "kong_like.config"
local lua_metrics = require "kong_like.plugins.lua_metrics"
local log_handler = require "kong_like.plugin_server.log_handler"
local router = require "kong_like.router"
local stats = require "kong_like.stats"

local ngx = ngx
local var = ngx.var
local now = ngx.now
local update_time = ngx.update_time

local NO_ROUTE = cjson.encode({ message = "no Route matched with those values" })

local _M = {}

local handlers = { ["lua-metrics"] = lua_metrics }

local function handler_for(name, plugin_server)
  local h = handlers[name]
  if h then return h end
  if plugin_server and plugin_server.plugin == name then
    h = log_handler.new(plugin_server)
    handlers[name] = h
    return h
  end
  error("no handler for plugin " .. name)
end

function _M.access()
  local ctx = ngx.ctx
  ctx.KONG_PROCESSING_START = ngx.req.start_time() * 1000
  local c = config.get()
  local entry, upstream_path = router.match(c.routes, var.uri)
  if not entry then
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
    ngx.header["X-Kong-Response-Latency"] = now() * 1000 - ctx.KONG_PROCESSING_START
    ngx.status = 404
    ngx.say(NO_ROUTE)
    return ngx.exit(404)
  end
  ctx.route = entry.route
  ctx.service = entry.service.entity
  ctx.target = entry.service.target
  ctx.plugins = entry.plugins
  ctx.plugin_server = c.plugin_server
  local args = var.args
  var.upstream_uri = args and upstream_path .. "?" .. args or upstream_path
  ctx.KONG_PROXIED = true
end

function _M.balancer()
  local ctx = ngx.ctx
  local target = ctx.target
  local ok, err = balancer.set_current_peer(target.host, target.port)
  if not ok then
    ngx.log(ngx.ERR, "failed to set the current peer: ", err)
    return ngx.exit(500)
  end
  update_time()
  ctx.KONG_BALANCER_ENDED_AT = now() * 1000
  ctx.KONG_PROXY_LATENCY = ctx.KONG_BALANCER_ENDED_AT - ctx.KONG_PROCESSING_START
  ctx.balancer_tries = { { ip = target.host, port = target.port, balancer_latency = 0 } }
end

function _M.header_filter()
  local ctx = ngx.ctx
  if not ctx.KONG_PROXIED or not ctx.KONG_BALANCER_ENDED_AT then return end
  ctx.KONG_HEADER_FILTER_STARTED_AT = now() * 1000
  ctx.KONG_WAITING_TIME = ctx.KONG_HEADER_FILTER_STARTED_AT - ctx.KONG_BALANCER_ENDED_AT
  ngx.header["X-Kong-Upstream-Latency"] = ctx.KONG_WAITING_TIME
  ngx.header["X-Kong-Proxy-Latency"] = ctx.KONG_PROXY_LATENCY
end

function _M.log()
  local ctx = ngx.ctx
  if not ctx.KONG_PROXIED then return end
  if ctx.KONG_BALANCER_ENDED_AT and not ctx.KONG_WAITING_TIME then
    -- The client left before the response's headers: Kong measures up to the log phase.
    ctx.KONG_WAITING_TIME = now() * 1000 - ctx.KONG_BALANCER_ENDED_AT
  end
  if ctx.KONG_HEADER_FILTER_STARTED_AT then
    ctx.KONG_RECEIVE_TIME = now() * 1000 - ctx.KONG_HEADER_FILTER_STARTED_AT
  end
  stats.incr("proxied:" .. (ctx.service.name or ctx.service.host))
  local plugins = ctx.plugins
  for i = 1, #plugins do
    local p = plugins[i]
    ctx.plugin_id = p.id
    handler_for(p.name, ctx.plugin_server).log(p.conf)
  end
end

return _M
