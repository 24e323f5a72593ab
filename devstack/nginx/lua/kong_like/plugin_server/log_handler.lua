-- Kong's log handler for an external plugin: a snapshot and a 0-delay timer whose creation Kong does not check
-- (a refused timer loses the event silently); in the timer, HandleEvent and one step per PDK call.
local clone = require "table.clone"
local get_ctx_table = require("resty.core.ctx").get_ctx_table
local instances = require "kong_like.plugin_server.instances"
local pdk_answers = require "kong_like.plugin_server.pdk_answers"
local rpc = require "kong_like.plugin_server.rpc"
local serialize = require("kong_like.serialize").serialize
local stats = require "kong_like.stats"

local ngx = ngx
local find = string.find

-- Kong retries an event after "no plugin instance" without bound; a bound keeps a broken server from looping.
local MAX_INSTANCE_RETRIES = 3

local _M = {}

local function bridge(socket, instance_id)
  local step, err = rpc.call(socket, "plugin.HandleEvent", { InstanceId = instance_id, EventName = "log" })
  if not step then return err end
  local event_id = step.EventId
  while step.Data ~= "ret" do
    local method, data = pdk_answers.answer(step.Data.Method, step.Data.Args)
    step, err = rpc.call(socket, method, { EventId = event_id, Data = data })
    if not step then return err end
  end
end

local function handle_event(server, conf, retries)
  local id, err = instances.get_id(server.socket, server.plugin, conf)
  if id then err = bridge(server.socket, id) end
  if not err then return true end
  if find(err:lower(), "no plugin instance", 1, true) and retries < MAX_INSTANCE_RETRIES then
    instances.reset()
    ngx.log(ngx.WARN, err)
    return handle_event(server, conf, retries + 1)
  end
  ngx.log(ngx.ERR, err)
end

local function on_timer(premature, saved)
  if premature then return end
  get_ctx_table(saved.ngx_ctx)
  local co = coroutine.running()
  pdk_answers.save(co, saved)
  local ok = handle_event(saved.server, saved.conf, 0)
  pdk_answers.save(co, nil)
  stats.incr(ok and "log_events_done" or "log_events_failed")
end

--- The handler for plugin `server.plugin`, run by the plugin server listening on `server.socket`.
function _M.new(server)
  return {
    log = function(conf)
      local ctx = ngx.ctx
      local ok = ngx.timer.at(0, on_timer, {
        server = server,
        conf = conf,
        serialize_data = serialize(ctx),
        ngx_ctx = clone(ctx),
        ctx_shared = {},
        request_headers = ngx.req.get_headers(),
        response_headers = ngx.resp.get_headers(),
        response_status = ngx.status,
        req_start_time = ngx.req.start_time(),
      })
      stats.incr(ok and "log_events_scheduled" or "log_timers_refused")
    end,
  }
end

return _M
