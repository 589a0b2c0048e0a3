-- probe: ARGV now, task count (-1: all), tasks... Read-only.
-- Returns {since, kind, tie, next due}: the invocation a claim at now would take became
-- runnable at since (-1: none), as kind 0 (queued; tie = the order of the call that queued it),
-- 1 (delayed; tie = its id) or 2 (an expired lease to recover first; tie = its id); next due is
-- the earliest time something becomes claimable by the clock alone (a not-before time, or a
-- lease expiry + 1), -1 for none.
local now = tonumber(ARGV[1])
local tasks = tasks_arg(2)
local id, since = pick(now, tasks, true)
local kind, tie = 0, ''
if id then
  if redis.call('HGET', ik(id), 'st') and redis.call('HEXISTS', ik(id), 'tk') == 1 then
    tie = redis.call('HGET', ik(id), 'ord') or '0'
  else
    kind, tie = 1, id
  end
end
local due = -1
for _, t in ipairs(tasks) do
  local r = redis.call('ZRANGE', P .. 'dl:' .. t, '0', '0', 'WITHSCORES')
  if r[1] and (due < 0 or tonumber(r[2]) < due) then due = tonumber(r[2]) end
end
local l = redis.call('ZRANGE', P .. 'lx', '0', '0', 'WITHSCORES')
if l[1] then
  local expiry = tonumber(l[2])
  if due < 0 or expiry + 1 < due then due = expiry + 1 end
  if expiry < now and (not since or expiry < since) then since, kind, tie = expiry, 2, l[1] end
end
return { since and num(since) or '-1', kind, tie, num(due) }
