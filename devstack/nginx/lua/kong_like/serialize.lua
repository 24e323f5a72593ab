-- kong.log.serialize()'s table for the current request: what Kong saves for every external plugin's log
-- event, so building it is part of what such a plugin costs the gateway.
local cjson = require "cjson.safe"

local ngx = ngx
local var = ngx.var
local tonumber = tonumber

local WORKSPACE_ID = "0dc6f45b-8f8d-40d2-a504-473544ee190b"

local _M = { WORKSPACE_ID = WORKSPACE_ID }

function _M.serialize(ctx)
  local req_headers = ngx.req.get_headers()
  if req_headers.authorization then req_headers.authorization = "REDACTED" end
  local started_at = ngx.req.start_time() * 1000
  local request_ms = var.request_time * 1000
  local proxy_ms = ctx.KONG_WAITING_TIME or -1
  return {
    request = {
      uri = var.request_uri,
      url = var.scheme .. "://" .. var.host .. ":" .. var.server_port .. var.request_uri,
      querystring = ngx.req.get_uri_args(),
      method = ngx.req.get_method(),
      headers = req_headers,
      size = tonumber(var.request_length),
    },
    upstream_uri = var.upstream_uri,
    upstream_status = var.upstream_status,
    response = { status = ngx.status, headers = ngx.resp.get_headers(), size = tonumber(var.bytes_sent) },
    latencies = {
      kong = (ctx.KONG_PROXY_LATENCY or 0) + (ctx.KONG_RECEIVE_TIME or 0),
      proxy = proxy_ms,
      request = request_ms,
      receive = ctx.KONG_RECEIVE_TIME or 0,
    },
    tries = ctx.balancer_tries,
    route = ctx.route or cjson.null,
    service = ctx.service or cjson.null,
    client_ip = var.remote_addr,
    started_at = started_at,
    source = ctx.KONG_PROXIED and "service" or "exit",
    workspace = WORKSPACE_ID,
    workspace_name = "default",
  }
end

return _M
