-- The in-process baseline: what Kong's bundled prometheus plugin does per request for upstream latency, a
-- bucket, the sum and the count per Service in a shared dict, with no timer and no other process.
local ngx = ngx
local metrics = ngx.shared.lua_metrics

-- Kong's prometheus plugin's default latency buckets (ms).
local BUCKETS = { 1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000 }

local _M = {}

function _M.log()
  local ctx = ngx.ctx
  local ms = ctx.KONG_WAITING_TIME
  if not ms or ms < 0 then return end
  local service = ctx.service
  local label = service.name or service.host
  local le = "+Inf"
  for i = 1, #BUCKETS do
    if ms <= BUCKETS[i] then
      le = BUCKETS[i]
      break
    end
  end
  metrics:incr(label .. "|bucket|" .. le, 1, 0)
  metrics:incr(label .. "|sum", ms, 0)
  metrics:incr(label .. "|count", 1, 0)
end

return _M
