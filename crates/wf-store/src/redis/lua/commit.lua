-- commit: persists one execution atomically, validating everything before writing anything.
-- commit_main() does it; the commit script returns its reply, commit_claim goes on to claim.
-- ARGV: now, id, worker, attempt, token, outcome, payload, not_before ('' for none), order,
--   journal count, (seq, entry)..., data count, (key, value)...,
--   child count, (id, task, wf, parent, spec, max_recoveries, not_before)...,
--   waited-on count, ids..., wake_at ('' for none), has event ('1'/'0'), event name,
--   cancel acknowledged ('1'/'0'), consumed count, seqs...
-- outcome: success (payload = result), failed (payload = failure), retry and deferred
-- (payload = failure, not_before), released, waiting (on the children), suspended (on the
-- children, wake_at and the event, whichever first).
-- Returns {'ok'}, {'notfound'}, {'lost', reason}, {'invalid', reason}, {'access', workflow},
-- {'conflict', child} or {'transition', from, to}; with {'ok'}, the index of the first argument
-- after the commit's own, and true when this was a repeat of an applied commit.
local function commit_main()
  local now = tonumber(ARGV[1])
  local id = ARGV[2]
  local token = ARGV[5]
  ORD = ARGV[9]
  local s, refusal, row = fence(id, ARGV[3], tonumber(ARGV[4]), now, COMMIT_FIELDS)
  local kind, payload = ARGV[6], ARGV[7]
  local nb = ARGV[8] ~= '' and tonumber(ARGV[8])

  -- Where each part of the arguments starts.
  local at = 10
  local nj = tonumber(ARGV[at])
  local journal_at = at + 1
  at = at + 1 + 2 * nj
  local nd = tonumber(ARGV[at])
  local data_at = at + 1
  at = at + 1 + 2 * nd
  local nc = tonumber(ARGV[at])
  local children_at = at + 1
  at = at + 1 + 7 * nc
  local nw = tonumber(ARGV[at])
  local waited_at = at + 1
  at = at + 1 + nw
  local wake = ARGV[at] ~= '' and tonumber(ARGV[at])
  local event = ARGV[at + 1] == '1' and ARGV[at + 2]
  local acknowledged = ARGV[at + 3] == '1'
  local ncons = tonumber(ARGV[at + 4])
  local consumed_at = at + 5
  local after = consumed_at + ncons
  if not s then
    -- The same commit sent again after a lost reply: it was applied.
    if token ~= '' and redis.call('HGET', ik(id), 'ct') == token then return { 'ok' }, after, true end
    return refusal
  end
  -- The fields the commit decides on or replaces, read with the state by fence.
  local held = { row[15], row[16], row[17], row[18], row[19] }

  -- Cancelled while it ran, and the body was not told: the request wins over whatever the
  -- execution did, and nothing of it is written.
  local cancel_failure = held[1]
  if cancel_failure and not acknowledged then
    if not allowed('running', 'cancelled') then return { 'transition', 'running', 'cancelled' } end
    cancel_member(id, s, cancel_failure, now)
    if token ~= '' then redis.call('HSET', ik(id), 'ct', token) end
    return { 'ok' }, after
  end

  -- The events it consumed: each sent to it, not consumed yet, named once.
  local ek = P .. 'e:' .. id
  local sent = ncons > 0 and tonumber(redis.call('HGET', ek, 'len') or '0') or 0
  local consumed, consuming = {}, {}
  for i = 0, ncons - 1 do
    local seq = tonumber(ARGV[consumed_at + i])
    if seq and consumed[seq] then return { 'invalid', 'consumes event #' .. num(seq) .. ' twice' } end
    if not seq or seq < 0 or seq >= sent then
      return { 'invalid', 'consumes event #' .. ARGV[consumed_at + i] .. ', which was never sent to it' }
    end
    local e = redis.call('HMGET', ek, 'n:' .. num(seq), 'c:' .. num(seq))
    if e[2] then
      return { 'invalid', 'consumes event #' .. num(seq) .. ' ("' .. e[1] ..
        '"), which an earlier commit consumed' }
    end
    consumed[seq] = e[1]
    consuming[e[1]] = (consuming[e[1]] or 0) + 1
  end

  local stored = nj > 0 and redis.call('LLEN', P .. 'j:' .. id) or 0
  for i = 0, nj - 1 do
    local seq = tonumber(ARGV[journal_at + 2 * i])
    if seq ~= stored + i then
      return { 'invalid', 'journal entry has sequence ' .. num(seq) .. ', expected ' .. num(stored + i) }
    end
  end

  if nd > 0 and s.wf ~= id then return { 'access', s.wf } end

  local fresh, fresh_set = {}, {}
  for i = 0, nc - 1 do
    local b = children_at + 7 * i
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

  local new = copy(s)
  new.lw = false
  new.lx = false
  new.rec = 0
  new.upd = now
  local res, err, errl = held[2], held[3], held[4]
  local unfinished = {}
  local awaiting = false
  local suspends = kind == 'waiting' or kind == 'suspended'
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
  elseif suspends then
    if kind == 'suspended' and nw == 0 and not wake and not event then
      return { 'invalid', 'suspends on nothing: no child, no timer and no event' }
    end
    for i = 0, nw - 1 do
      local child = ARGV[waited_at + i]
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
    -- An awaited event already here (and not consumed by this very commit).
    local event_here = event and
      tonumber(redis.call('HGET', ek, 'U:' .. event) or '0') - (consuming[event] or 0) > 0
    if (nw > 0 and #unfinished == 0) or event_here then
      -- What it waits for already happened: runnable again at once.
      if not allowed('waiting', 'pending') then return { 'transition', 'waiting', 'pending' } end
      new.st = 'pending'
      unfinished = {}
    else
      new.st = 'waiting'
      if kind == 'suspended' then
        new.nb = wake
        awaiting = event
      end
    end
  else
    return redis.error_reply('WF unknown outcome ' .. kind)
  end
  -- A cancellation the body was told of: it may suspend and wake to run compensating steps, but
  -- when it ends (or would retry), it ends cancelled.
  if cancel_failure and (FINAL[new.st] or new.st == 'retry') then
    new.st = 'cancelled'; new.nb = false; res = false; err = cancel_failure; errl = false
  end
  if (not suspends or new.st == 'cancelled') and not allowed('running', new.st) then
    return { 'transition', 'running', new.st }
  end

  -- Everything is valid: write.
  append_journal(id, journal_at + 1, nj)
  for seq, name in pairs(consumed) do
    redis.call('HSET', ek, 'c:' .. num(seq), '1')
    redis.call('HINCRBY', ek, 'U:' .. name, '-1')
  end
  if nd > 0 then
    local d = P .. 'd:' .. s.wf
    for i = 0, nd - 1 do redis.call('HSET', d, ARGV[data_at + 2 * i], ARGV[data_at + 1 + 2 * i]) end
  end
  for _, c in ipairs(fresh) do create(c, now) end
  -- A running invocation waits on no children (its claim or its last commit cleared w:).
  if new.st == 'waiting' then
    local wk = P .. 'w:' .. id
    for i, child in ipairs(unfinished) do redis.call('ZADD', wk, i, child) end
  end
  -- The result, error, awaited event, acknowledgement and token go in save's one HSET and HDEL,
  -- so the hash is complete when a final record is handed to wait_final callers.
  local more = { set = {}, del = {}, publish = true }
  local function put(f, v, had)
    if v then
      more.set[#more.set + 1] = f
      more.set[#more.set + 1] = v
    elseif had then
      more.del[#more.del + 1] = f
    end
  end
  put('res', res, held[2])
  put('err', err, held[3])
  put('errl', errl, held[4])
  put('aw', awaiting, held[5])
  if cancel_failure then put('cxa', '1') end
  if token ~= '' then put('ct', token) end
  save(id, s, new, more)
  if FINAL[new.st] then wake_parent(id, new, now) end
  return { 'ok' }, after
end
