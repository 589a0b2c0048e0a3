-- purgeable: ARGV finished_before. Read-only: the workflows purge would remove with the same
-- finished_before, as {id, created, creation order, seq}... for each.
local before = tonumber(ARGV[1])
local out = {}
for _, top in ipairs(redis.call('ZRANGEBYSCORE', P .. 'fin', '-inf', '(' .. num(before))) do
  if tonumber(redis.call('HGET', P .. 'tr:' .. top, 'open') or '0') <= 0 then
    for _, wf in ipairs(redis.call('LRANGE', P .. 't:' .. top, 0, -1)) do
      local v = redis.call('HMGET', ik(wf), 'created', 'cord', 'seq')
      if v[1] then
        out[#out + 1] = { wf, v[1], v[2] or '0', v[3] }
      end
    end
  end
end
return out
