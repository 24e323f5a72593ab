-- This worker's external-plugin instances by plugin id, reused while __seq__ matches; a reset reaches every
-- worker through a generation counter, as Kong's worker event does.
local cjson = require "cjson.safe"
local rpc = require "kong_like.plugin_server.rpc"

local ngx = ngx
local shared = ngx.shared.kong_like

local SLEEP_STEP = 0.1
local MAX_WAIT_STEPS = 100

local _M = {}

local running = {}
local generation = 0

local function forget_if_reset()
  local g = shared:get("instances_generation") or 0
  if g ~= generation then
    running = {}
    generation = g
  end
end

function _M.reset()
  running = {}
  generation = shared:incr("instances_generation", 1, 0)
end

--- The instance id for `conf`, starting the instance if needed; raises when the server refuses to start it.
function _M.get_id(socket, plugin_name, conf)
  forget_if_reset()
  local key = conf.__plugin_id
  local info = running[key]
  local waited = 0
  while info and not info.id do
    -- Another timer of this worker is starting it.
    ngx.sleep(SLEEP_STEP)
    waited = waited + 1
    if waited > MAX_WAIT_STEPS then
      running[key] = nil
      return nil, "could not claim instance_id for " .. plugin_name .. " (key: " .. key .. ")"
    end
    info = running[key]
  end
  if info and info.id and info.seq == conf.__seq__ then return info.id end

  local old_id = info and info.id
  if info then
    info.id = nil
  else
    info = { seq = conf.__seq__ }
    running[key] = info
  end
  local started, err = rpc.call(socket, "plugin.StartInstance", { Name = plugin_name, Config = cjson.encode(conf) })
  if not started then
    ngx.log(ngx.ERR, "starting instance: ", err)
    running[key] = nil
    error(err)
  end
  info.id = started.Id
  info.seq = conf.__seq__
  if old_id then rpc.call(socket, "plugin.CloseInstance", old_id) end
  return info.id
end

return _M
