-- The gateway's own counters, which Kong does not have: what the tests and the benchmark compare the
-- exporter's totals with (proxied requests per Service) and how they attribute a lost event.
local cjson = require "cjson.safe"

local shared = ngx.shared.kong_like_stats

local _M = {}

function _M.incr(key)
  shared:incr(key, 1, 0)
end

--- Every counter, as JSON: { proxied = { [service name] = n }, log_events_scheduled = n, ... }.
function _M.json()
  local out = { proxied = {} }
  for _, key in ipairs(shared:get_keys(0)) do
    local service = key:match("^proxied:(.*)$")
    if service then out.proxied[service] = shared:get(key) else out[key] = shared:get(key) end
  end
  return cjson.encode(out)
end

return _M
