-- The gateway's admin listener (loopback only): GET /status for the counters, POST /config for a new
-- declarative configuration, which every worker picks up on its next request.
local config = require "kong_like.config"
local stats = require "kong_like.stats"

local ngx = ngx

local _M = {}

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(body)
  return ngx.exit(status)
end

function _M.serve()
  local method, uri = ngx.req.get_method(), ngx.var.uri
  if method == "GET" and uri == "/status" then return reply(200, stats.json()) end
  if method == "POST" and uri == "/config" then
    ngx.req.read_body()
    local version, err = config.store(ngx.req.get_body_data() or "")
    if not version then return reply(400, require("cjson.safe").encode({ message = err })) end
    return reply(200, '{"version":' .. version .. "}")
  end
  return reply(404, '{"message":"GET /status or POST /config"}')
end

return _M
