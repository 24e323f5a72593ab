-- Kong's prefix routing for the paths the declarative files use: the longest matching prefix wins, and
-- strip_path removes it before the Service's path is prepended.
local find, sub = string.find, string.sub

local _M = {}

local function join(base, rest)
  if rest == "" then return base end
  if sub(base, -1) == "/" and sub(rest, 1, 1) == "/" then return base .. sub(rest, 2) end
  if sub(base, -1) ~= "/" and sub(rest, 1, 1) ~= "/" then return base .. "/" .. rest end
  return base .. rest
end

--- The matching entry of `routes` (sorted longest prefix first) and the upstream path, or nil.
function _M.match(routes, uri)
  for i = 1, #routes do
    local r = routes[i]
    if find(uri, r.prefix, 1, true) == 1 then
      local rest = r.route.strip_path and sub(uri, #r.prefix + 1) or uri
      local base = r.service.entity.path
      if type(base) ~= "string" then base = "/" end
      return r, join(base, rest)
    end
  end
end

return _M
