-- retry: ARGV now, id, order. An operator's retry of a failed invocation: pending at once, a new
-- attempt that replays its journal; retry and recovery counts from zero, result cleared, the last
-- error kept until the next attempt ends.
-- Returns {'ok'}, {'notfound'}, {'notretryable', reason} or {'transition', from, to}.
local now = tonumber(ARGV[1])
local id = ARGV[2]
ORD = ARGV[3]
local old = load(id)
if not old then return { 'notfound' } end
if old.st ~= 'failed' then
  return { 'notretryable', 'it is ' .. old.st .. ', not failed; only a failed invocation can be retried' }
end
if old.parent then
  local c = load(old.parent)
  if c and FINAL[c.st] then
    return { 'notretryable', 'its caller ' .. old.parent .. ' (' .. c.task .. ') is ' .. c.st ..
      ' and took this failure, so nothing would read a new result; retry the caller, or start ' ..
      'the work again' }
  end
end
if not allowed('failed', 'pending') then return { 'transition', 'failed', 'pending' } end
local new = copy(old)
new.st = 'pending'
new.ret = 0
new.rec = 0
new.lw = false
new.lx = false
new.nb = false
new.upd = now
redis.call('DEL', P .. 'w:' .. id)
save(id, old, new)
blobs(id, false, redis.call('HGET', ik(id), 'err'), redis.call('HGET', ik(id), 'errl'))
return { 'ok' }
