-- events: ARGV id. Read-only. Returns {'notfound'} or {'ok', status, awaited name (or false),
-- {name, payload, key (or false), sent at, consumed ('1' or false)}...}.
local id = ARGV[1]
local v = redis.call('HMGET', ik(id), 'st', 'aw')
if not v[1] then return { 'notfound' } end
local ek = P .. 'e:' .. id
local n = tonumber(redis.call('HGET', ek, 'len') or '0')
local out = { 'ok', v[1], v[2] }
for seq = 0, n - 1 do
  local q = num(seq)
  out[#out + 1] = redis.call('HMGET', ek, 'n:' .. q, 'p:' .. q, 'k:' .. q, 't:' .. q, 'c:' .. q)
end
return out
