-- One msgpack-rpc call to a plugin server, as Kong makes it: a connection from the worker's cosocket pool
-- (lua_socket_pool_size), one request in flight on it, then back to the pool with setkeepalive().
local cjson = require "cjson.safe"
local mp = require "MessagePack"

local ngx = ngx
local connect = ngx.socket.connect

-- Kong packs cjson.null as nil; without this lua-MessagePack refuses the userdata.
local pack_nil = mp.packers["nil"]
mp.packers.userdata = function(buffer, u)
  if u ~= cjson.null then error("cannot pack userdata " .. tostring(u)) end
  pack_nil(buffer)
end

local _M = {}

local msg_id = 0

--- Calls `method` with one argument; returns the result, or nil and the error (the server's or the socket's).
function _M.call(socket_path, method, arg)
  msg_id = msg_id + 1
  local id = msg_id
  local sock, err = connect("unix:" .. socket_path)
  if not sock then
    ngx.log(ngx.ERR, "trying to connect: ", err)
    return nil, err
  end
  local ok
  ok, err = sock:send(mp.pack({ 0, id, method, { arg } }))
  if not ok then
    sock:setkeepalive()
    return nil, err
  end
  local read = mp.unpacker(function() return sock:receiveany(4096) end)
  while true do
    local got, msg = read()
    if not got then
      sock:setkeepalive()
      return nil, "no data"
    end
    -- [2, label, args] is a notification, which kong-js-pluginserver never sends; anything else is the reply.
    if msg[1] ~= 2 then
      if msg[1] ~= 1 or msg[2] ~= id then error("unexpected reply to " .. method .. " #" .. id) end
      sock:setkeepalive()
      if msg[3] ~= nil then return nil, msg[3] end
      return msg[4]
    end
  end
end

return _M
