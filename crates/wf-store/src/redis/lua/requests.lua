-- requests: ARGV ids... Read-only. Of the ids, the invocations not final with a cancellation
-- request, as {id, reason}...
local out = {}
for _, id in ipairs(ARGV) do
  local v = redis.call('HMGET', ik(id), 'st', 'cx')
  if v[1] and v[2] and not FINAL[v[1]] then out[#out + 1] = { id, v[2] } end
end
return out
