-- The resolved configuration lives in a shared dict so that a change reaches every worker; its version is every
-- plugin conf's __seq__, as Kong gives all plugins a new one when it rebuilds its plugins iterator.
local cjson = require "cjson.safe"

local shared = ngx.shared.kong_like
local type = type

local _M = {}

local current

local function fail(what)
  return nil, "invalid gateway configuration: " .. what
end

local function check(c)
  if type(c) ~= "table" then return fail("not a JSON object") end
  for _, list in ipairs({ "services", "routes", "plugins" }) do
    if type(c[list]) ~= "table" then return fail(list .. " must be a list") end
  end
  for i, s in ipairs(c.services) do
    if type(s.entity) ~= "table" or type(s.entity.id) ~= "string" then return fail("services[" .. i .. "].entity.id") end
    if type(s.target) ~= "table" or type(s.target.host) ~= "string" or type(s.target.port) ~= "number" then
      return fail("services[" .. i .. "].target must be { host, port }")
    end
  end
  for i, r in ipairs(c.routes) do
    if type(r.id) ~= "string" or type(r.paths) ~= "table" or #r.paths == 0 then
      return fail("routes[" .. i .. "] needs an id and paths")
    end
    if type(r.service) ~= "table" or type(r.service.id) ~= "string" then return fail("routes[" .. i .. "].service.id") end
  end
  for i, p in ipairs(c.plugins) do
    if type(p.id) ~= "string" or type(p.name) ~= "string" or type(p.conf) ~= "table" then
      return fail("plugins[" .. i .. "] needs id, name and conf")
    end
  end
  return c
end

--- Validates and stores a new configuration; the workers pick it up on their next request.
function _M.store(json)
  local c, err = cjson.decode(json)
  if not c then return fail("not JSON (" .. err .. ")") end
  c, err = check(c)
  if not c then return nil, err end
  local version = (shared:get("config_version") or 0) + 1
  shared:set("config_json", json)
  shared:set("config_version", version)
  return version
end

local function most_specific(plugins, name, route_id, service_id)
  local by_route, by_service, global
  for _, p in ipairs(plugins) do
    if p.name == name then
      local r, s = p.conf.route_id, p.conf.service_id
      if r == route_id then by_route = p
      elseif r == cjson.null and s == service_id then by_service = by_service or p
      elseif r == cjson.null and s == cjson.null then global = global or p end
    end
  end
  return by_route or by_service or global
end

local function build(version, json)
  local c = cjson.decode(json)
  local services, names = {}, {}
  for _, s in ipairs(c.services) do services[s.entity.id] = s end
  for _, p in ipairs(c.plugins) do
    p.conf.__seq__ = version
    names[p.name] = true
  end
  local routes = {}
  for _, r in ipairs(c.routes) do
    local service = services[r.service.id]
    local plugins = {}
    for name in pairs(names) do
      plugins[#plugins + 1] = most_specific(c.plugins, name, r.id, r.service.id)
    end
    for _, prefix in ipairs(r.paths) do
      routes[#routes + 1] = { prefix = prefix, route = r, service = service, plugins = plugins }
    end
  end
  table.sort(routes, function(a, b) return #a.prefix > #b.prefix end)
  local plugin_server = c.plugin_server
  if plugin_server == cjson.null then plugin_server = nil end
  return { version = version, routes = routes, plugin_server = plugin_server }
end

--- This worker's view of the current configuration.
function _M.get()
  local version = shared:get("config_version")
  if not current or current.version ~= version then
    current = build(version, shared:get("config_json"))
  end
  return current
end

return _M
