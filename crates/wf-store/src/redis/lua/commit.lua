-- commit: persists one execution atomically, validating everything before writing anything.
-- ARGV: now, id, worker, attempt, token, outcome, payload, not_before ('' for none), order,
--   journal count, (seq, entry)..., data count, (key, value)...,
--   child count, (id, task, wf, parent, spec, max_recoveries, not_before)...,
--   waited-on count, ids...
-- outcome: success (payload = result), failed (payload = failure), retry and deferred
-- (payload = failure, not_before), released, waiting.
-- Returns {'ok'}, {'notfound'}, {'lost', reason}, {'invalid', reason}, {'access', workflow},
-- {'conflict', child} or {'transition', from, to}.
local now = tonumber(ARGV[1])
local id = ARGV[2]
local token = ARGV[5]
ORD = ARGV[9]
local s, refusal = fence(id, ARGV[3], tonumber(ARGV[4]), now)
if not s then
  -- The same commit sent again after a lost reply: it was applied.
  if token ~= '' and redis.call('HGET', ik(id), 'ct') == token then return { 'ok' } end
  return refusal
end
local kind, payload = ARGV[6], ARGV[7]
local nb = ARGV[8] ~= '' and tonumber(ARGV[8])

local at = 10
local nj = tonumber(ARGV[at])
local stored = redis.call('LLEN', P .. 'j:' .. id)
for i = 0, nj - 1 do
  local seq = tonumber(ARGV[at + 1 + 2 * i])
  if seq ~= stored + i then
    return { 'invalid', 'journal entry has sequence ' .. num(seq) .. ', expected ' .. num(stored + i) }
  end
end
local journal_at = at + 1
at = at + 1 + 2 * nj

local nd = tonumber(ARGV[at])
local data_at = at + 1
if nd > 0 and s.wf ~= id then return { 'access', s.wf } end
at = at + 1 + 2 * nd

local nc = tonumber(ARGV[at])
local fresh, fresh_set = {}, {}
for i = 0, nc - 1 do
  local b = at + 1 + 7 * i
  local c = { id = ARGV[b], task = ARGV[b + 1], wf = ARGV[b + 2],
    parent = ARGV[b + 3] ~= '' and ARGV[b + 3], spec = ARGV[b + 4], maxr = tonumber(ARGV[b + 5]),
    nb = ARGV[b + 6] ~= '' and tonumber(ARGV[b + 6]) }
  if c.parent ~= id then
    return { 'invalid', 'child ' .. c.id .. ' does not name ' .. id .. ' as its parent' }
  end
  -- A repeat within this commit is the same child when it is the same call, else a conflict.
  local seen = fresh_set[c.id]
  if seen then
    if seen.spec ~= c.spec then return { 'conflict', c.id } end
  else
    seen = check_new(c)
    if seen == 'conflict' then return { 'conflict', c.id } end
    if not seen then
      fresh[#fresh + 1] = c
      fresh_set[c.id] = c
    end
  end
end
at = at + 1 + 7 * nc

local new = copy(s)
new.lw = false
new.lx = false
new.rec = 0
new.upd = now
local res, err, errl = redis.call('HGET', ik(id), 'res'), redis.call('HGET', ik(id), 'err'),
  redis.call('HGET', ik(id), 'errl')
local unfinished = {}
if kind == 'success' then
  new.st = 'success'; res = payload; err = false; errl = false
elseif kind == 'failed' then
  new.st = 'failed'; err = payload; errl = false
elseif kind == 'retry' then
  new.st = 'retry'; new.ret = s.ret + 1; new.nb = nb; err = payload; errl = false
elseif kind == 'released' then
  new.st = 'pending'
elseif kind == 'deferred' then
  new.st = 'pending'; new.nb = nb; err = payload; errl = false
elseif kind == 'waiting' then
  local nw = tonumber(ARGV[at])
  for i = 1, nw do
    local child = ARGV[at + i]
    if fresh_set[child] then
      unfinished[#unfinished + 1] = child
    else
      local cs = load(child)
      if cs and cs.parent == id then
        if not FINAL[cs.st] then unfinished[#unfinished + 1] = child end
      else
        return { 'invalid', 'waits on ' .. child .. ', which is not its child' }
      end
    end
  end
  if not allowed('running', 'waiting') then return { 'transition', 'running', 'waiting' } end
  if #unfinished == 0 then
    -- Every child finished before the commit: runnable again at once.
    if not allowed('waiting', 'pending') then return { 'transition', 'waiting', 'pending' } end
    new.st = 'pending'
  else
    new.st = 'waiting'
  end
else
  return redis.error_reply('WF unknown outcome ' .. kind)
end
if kind ~= 'waiting' and not allowed('running', new.st) then
  return { 'transition', 'running', new.st }
end

-- Everything is valid: write.
for i = 0, nj - 1 do redis.call('RPUSH', P .. 'j:' .. id, ARGV[journal_at + 1 + 2 * i]) end
if nd > 0 then
  local d = P .. 'd:' .. s.wf
  for i = 0, nd - 1 do redis.call('HSET', d, ARGV[data_at + 2 * i], ARGV[data_at + 1 + 2 * i]) end
end
for _, c in ipairs(fresh) do create(c, now) end
if new.st == 'waiting' then
  local wk = P .. 'w:' .. id
  redis.call('DEL', wk)
  for i, child in ipairs(unfinished) do redis.call('ZADD', wk, i, child) end
end
save(id, s, new)
blobs(id, res, err, errl)
if token ~= '' then redis.call('HSET', ik(id), 'ct', token) end
if FINAL[new.st] then wake_parent(id, new, now) end
return { 'ok' }
