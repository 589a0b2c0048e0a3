-- claim: ARGV now, worker, lease expiry, recovery limit, order, task count (-1: all), tasks...
-- Recovers expired leases first, then claims the oldest runnable invocation of the tasks.
-- Returns {'none'}, {'transition', from, to, id} or {'claimed', id, record, journal}.
local now = tonumber(ARGV[1])
ORD = ARGV[5]
recover(now, tonumber(ARGV[4]))
local tasks = tasks_arg(6)
local id = pick(now, tasks)
if not id then return { 'none' } end
local old = load(id)
if not allowed(old.st, 'running') then return { 'transition', old.st, 'running', id } end
local new = copy(old)
new.st = 'running'
new.att = old.att + 1
new.lw = ARGV[2]
new.lx = tonumber(ARGV[3])
new.nb = false
new.upd = now
save(id, old, new)
-- Claimed once its timer fired: it no longer waits on its children.
if old.st == 'waiting' then redis.call('DEL', P .. 'w:' .. id) end
-- The doorbell keeps ringing while the task has queued work, so the next idle worker wakes;
-- with nothing queued it falls silent.
if redis.call('ZCARD', P .. 'q:' .. old.task) > 0 then
  ring(old.task)
elseif redis.call('ZCARD', P .. 'dl:' .. old.task) == 0 then
  redis.call('DEL', P .. 'b:' .. old.task)
end
return { 'claimed', id, record(id), redis.call('LRANGE', P .. 'j:' .. id, 0, -1) }
