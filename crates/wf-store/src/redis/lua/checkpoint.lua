-- checkpoint: persists a running execution's progress and claims one of its new children for
-- the same worker, in one step; the invocation stays running under its lease, extended.
-- ARGV: now, id, worker, attempt, new expiry, run (the child to claim), order, token,
--   journal count, (seq, entry)..., data count, (key, value)...,
--   child count, (id, task, wf, parent, spec, max_recoveries, not_before)...
-- Returns {'ok', record of run}, {'notfound'}, {'lost', reason}, {'invalid', reason},
-- {'access', workflow}, {'conflict', child} or {'transition', from, to}.
local now = tonumber(ARGV[1])
local id = ARGV[2]
local worker = ARGV[3]
local expiry = tonumber(ARGV[5])
local run = ARGV[6]
ORD = ARGV[7]
local token = ARGV[8]
local s, refusal = fence(id, worker, tonumber(ARGV[4]), now)
if not s then return refusal end
-- The same checkpoint sent again after a lost reply (a restart, a failover): it was applied.
local held = redis.call('HMGET', ik(id), 'kt', 'cxf')
if held[1] == token then return { 'ok', record(run) } end
if held[2] then
  -- The cancellation decides what this execution commits: no child runs meanwhile.
  return { 'invalid', 'a cancellation was requested: it commits instead of running a child' }
end

local at = 9
local nj = tonumber(ARGV[at])
local journal_at = at + 1
local stored = redis.call('LLEN', P .. 'j:' .. id)
for i = 0, nj - 1 do
  local seq = tonumber(ARGV[journal_at + 2 * i])
  if seq ~= stored + i then
    return { 'invalid', 'journal entry has sequence ' .. num(seq) .. ', expected ' .. num(stored + i) }
  end
end
at = at + 1 + 2 * nj
local nd = tonumber(ARGV[at])
local data_at = at + 1
if nd > 0 and s.wf ~= id then return { 'access', s.wf } end
at = at + 1 + 2 * nd
local nc = tonumber(ARGV[at])
local fresh, fresh_set, inline = {}, {}, nil
for i = 0, nc - 1 do
  local c = new_arg(at + 1 + 7 * i)
  if c.parent ~= id then
    return { 'invalid', 'child ' .. c.id .. ' does not name ' .. id .. ' as its parent' }
  end
  -- A repeat within this checkpoint is the same child when it is the same call, else a conflict.
  local seen = fresh_set[c.id]
  if seen then
    if seen.spec ~= c.spec then return { 'conflict', c.id } end
  else
    seen = check_new(c)
    if seen == 'conflict' then return { 'conflict', c.id } end
    if not seen then
      fresh[#fresh + 1] = c
      fresh_set[c.id] = c
      if c.id == run then inline = c end
    end
  end
end
if not inline then
  return { 'invalid', 'runs ' .. run .. ' inline, which is not a child new in this checkpoint' }
end
if inline.nb then
  return { 'invalid', 'runs ' .. run .. ' inline, which is delayed by a not-before time' }
end
if not allowed('pending', 'running') then return { 'transition', 'pending', 'running' } end

-- Everything is valid: write.
append_journal(id, journal_at + 1, nj)
if nd > 0 then
  local d = P .. 'd:' .. s.wf
  for i = 0, nd - 1 do redis.call('HSET', d, ARGV[data_at + 2 * i], ARGV[data_at + 1 + 2 * i]) end
end
local lease = { worker = worker, expiry = expiry }
for _, c in ipairs(fresh) do
  if c.id == run then create(c, now, lease) else create(c, now) end
end
local new = copy(s)
new.lx = expiry
new.rec = 0
save(id, s, new, { set = { 'kt', token } })
return { 'ok', record(run) }
