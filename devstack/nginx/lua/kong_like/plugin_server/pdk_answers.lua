-- Kong's answers to PDK calls from a log timer: the saved request stands in for the finished one, and what needs
-- the request itself (ngx.var) raises there.
local cjson = require "cjson.safe"

local ngx = ngx
local type = type

local _M = {}

local saved_by_thread = {}

function _M.save(co, saved) saved_by_thread[co] = saved end

local function saved() return saved_by_thread[coroutine.running()] end

local function first(headers, name)
  local v = headers[name]
  if type(v) == "table" then return v[1] end
  return v
end

-- Header tables as lists of values, so the plugin side always sees string[] (Kong's fix_mmap).
local function multi_map(headers)
  local out = {}
  for k, v in pairs(headers) do out[k] = type(v) == "table" and v or { v } end
  return out
end

local log_levels = { debug = ngx.DEBUG, info = ngx.INFO, notice = ngx.NOTICE, warn = ngx.WARN, err = ngx.ERR }

local api = {
  ["kong.nginx.get_ctx"] = function(k) return saved().ngx_ctx[k] end,
  ["kong.nginx.get_var"] = function(v) return ngx.var[v] end,
  ["kong.nginx.req_start_time"] = function() return saved().req_start_time end,
  ["kong.log.serialize"] = function() return cjson.encode(saved().serialize_data) end,
  ["kong.router.get_service"] = function() return ngx.ctx.service end,
  ["kong.router.get_route"] = function() return ngx.ctx.route end,
  ["kong.plugin.get_id"] = function() return ngx.ctx.plugin_id end,
  ["kong.response.get_status"] = function() return saved().response_status end,
  ["kong.request.get_header"] = function(name) return first(saved().request_headers, name) end,
  ["kong.response.get_header"] = function(name) return first(saved().response_headers, name) end,
  ["kong.request.get_headers"] = function() return multi_map(saved().request_headers) end,
  ["kong.response.get_headers"] = function() return multi_map(saved().response_headers) end,
  ["kong.ctx.shared.get"] = function(k) return saved().ctx_shared[k] end,
}
for level, ngx_level in pairs(log_levels) do
  api["kong.log." .. level] = function(...) ngx.log(ngx_level, ...) end
end

local step_methods = {
  ["kong.router.get_service"] = "plugin.StepService",
  ["kong.router.get_route"] = "plugin.StepRoute",
  ["kong.request.get_headers"] = "plugin.StepMultiMap",
  ["kong.response.get_headers"] = "plugin.StepMultiMap",
}

--- Runs one PDK call; returns the step method to answer with and its Data. A function that raises is not
--- caught, as in Kong: the timer dies and the event never ends.
function _M.answer(method, args)
  local fn = api[method]
  if not fn then
    ngx.log(ngx.ERR, "could not find pdk method: ", method)
    return "plugin.Step", nil
  end
  local res, err
  if type(args) == "table" then
    res, err = fn(unpack(args))
  else
    res, err = fn(args)
  end
  if res == nil and err ~= nil then return "plugin.StepError", err end
  return step_methods[method] or "plugin.Step", res
end

return _M
