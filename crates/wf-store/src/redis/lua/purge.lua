-- purge: ARGV finished_before, limit. Removes finished trees (a workflow and its sub-workflows)
-- whose last invocation finished before finished_before, at most limit trees per call.
-- Returns {workflows removed, trees looked at}.
local before = tonumber(ARGV[1])
local tops = redis.call('ZRANGEBYSCORE', P .. 'fin', '-inf', '(' .. num(before), 'LIMIT', 0,
  tonumber(ARGV[2]))
local removed = 0
for _, top in ipairs(tops) do
  local tr = P .. 'tr:' .. top
  if tonumber(redis.call('HGET', tr, 'open') or '0') <= 0 then
    for _, wf in ipairs(redis.call('LRANGE', P .. 't:' .. top, 0, -1)) do
      for _, id in ipairs(redis.call('LRANGE', P .. 'm:' .. wf, 0, -1)) do
        local s = load(id)
        if s then unindex(id, s) end
        redis.call('DEL', ik(id), P .. 'j:' .. id, P .. 'w:' .. id, P .. 'c:' .. id, P .. 'e:' .. id)
        -- A wait_final caller that saw it unfinished must learn it is gone.
        notify_final(id)
      end
      redis.call('DEL', P .. 'm:' .. wf, P .. 'd:' .. wf)
      redis.call('ZREM', P .. 'roots', wf)
      removed = removed + 1
    end
    redis.call('DEL', P .. 't:' .. top, tr)
  end
  redis.call('ZREM', P .. 'fin', top)
end
return { removed, #tops }
