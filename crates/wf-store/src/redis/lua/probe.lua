-- probe: ARGV now, task count (-1: all), tasks... Read-only.
-- Returns {claimable since (or -1), next due (or -1)}: when the invocation a claim at now would
-- take became runnable (an expired lease counts, since its expiry), and the earliest time
-- something becomes claimable by the clock alone (a not-before time, or a lease expiry + 1).
local now = tonumber(ARGV[1])
local tasks = tasks_arg(2)
local _, since = pick(now, tasks)
local due = -1
for _, t in ipairs(tasks) do
  local r = redis.call('ZRANGE', P .. 'dl:' .. t, 0, 0, 'WITHSCORES')
  if r[1] and (due < 0 or tonumber(r[2]) < due) then due = tonumber(r[2]) end
end
local l = redis.call('ZRANGE', P .. 'lx', 0, 0, 'WITHSCORES')
if l[1] then
  local expiry = tonumber(l[2])
  if due < 0 or expiry + 1 < due then due = expiry + 1 end
  if expiry < now and (not since or expiry < since) then since = expiry end
end
return { since and num(since) or '-1', num(due) }
