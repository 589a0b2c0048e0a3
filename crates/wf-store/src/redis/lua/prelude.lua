-- wf Redis store: the shared part of every script.
--
-- KEYS[1] is the shard's counts hash '{<ns>:<shard>}:n'; every other key this script touches
-- starts with the same '{<ns>:<shard>}:' prefix, so all of them hash to one slot and the script
-- runs unchanged on a single Redis and on Redis Cluster.
--
-- Per shard (P = '{<ns>:<shard>}:'):
--   i:<id>      hash   an invocation: spec (opaque bytes), plain control fields, res/err blobs;
--                      aw = the event its suspension awaits; cx/cxf/cxa = its cancellation
--                      request's reason, failure (opaque) and acknowledgement
--   c:<id>      list   its children in submission order (the walk of cancel_tree)
--   e:<id>      hash   its events: len; per seq n:/p:/k:/t:/c: (name, payload, key, sent at,
--                      consumed); K:<key> = seq; U:<name> = how many of that name are unconsumed
--   j:<id>      list   its journal entries (opaque bytes), in sequence order
--   w:<id>      zset   the children it waits on, scored by position
--   f:<id>      list   a token pushed when it became final (or was purged), for wait_final
--   m:<wf>      list   a workflow's invocations in submission order
--   d:<wf>      hash   a workflow's data
--   t:<top>     list   the workflows of the tree whose top workflow is <top>
--   tr:<top>    hash   open = non-final invocations in that tree, fin = when the last finished
--   q:<task>    zset   ready invocations of a task, scored by queue ticket
--   dl:<task>   zset   delayed (retry / not-before / timer) invocations of a task, scored by
--                      not-before
--   b:<task>    list   the task's doorbell: one token while it may have claimable work
--   lx          zset   running invocations by lease expiry
--   fin         zset   finished trees by finish time (retention)
--   roots       zset   workflow roots by creation sequence
--   n           hash   invocation counts by status
--   tasks       set    every task name seen
--   seq, tick   string creation sequence, queue ticket counters
--
-- Times are integer milliseconds since the Unix epoch, passed in by the caller (never Redis's
-- clock). Numbers go back to Redis through num(), never through Lua's default formatting.

-- The call's keys and arguments and its shard's key prefix: set by begin() at the start of every
-- call (a function library loads this prelude once and serves many calls; an EVALSHA script runs it
-- on every call).
local KEYS, ARGV, P
-- Generated from wf_core::status::TRANSITIONS (the one table that decides everywhere).
local TRANSITIONS = { --[[TRANSITIONS]] }
local FINAL = { --[[FINAL]] }
local CLAIMABLE = { --[[CLAIMABLE]] }
local NOTIFY_TTL_MS = '60000'
-- The caller's order of this call among its own calls (set by each script from its ARGV):
-- recorded on what it queues, it orders invocations that became ready in the same millisecond
-- in different shards (inside a shard, the queue ticket orders them).
local ORD = '0'

local function num(v) return string.format('%d', v) end
local function allowed(from, to) return TRANSITIONS[from .. '>' .. to] == true end
local function ik(id) return P .. 'i:' .. id end
-- A state table (as load() makes it) copied; one constructor with every key, so the copy is
-- sized once instead of growing key by key.
local function copy(t)
  return { st = t.st, att = t.att, ret = t.ret, rec = t.rec, lw = t.lw, lx = t.lx, nb = t.nb,
    upd = t.upd, tk = t.tk, task = t.task, wf = t.wf, parent = t.parent, top = t.top,
    maxr = t.maxr }
end

-- The control fields of an invocation, or nil when it does not exist. with (optional): a list of
-- field names to read in the same HMGET, the 14 of LOAD_FIELDS first, then more; the raw values
-- are then the second result (the extra fields from index 15 on). (Written out, not built: a
-- function library's code runs at load time without ipairs and the like.)
local LOAD_FIELDS = { 'st', 'att', 'ret', 'rec', 'lw', 'lx', 'nb', 'upd', 'tk', 'task', 'wf',
  'parent', 'top', 'maxr' }
local function load(id, with)
  local v = redis.call('HMGET', ik(id), unpack(with or LOAD_FIELDS))
  if not v[1] then return nil end
  return { st = v[1], att = tonumber(v[2]), ret = tonumber(v[3]), rec = tonumber(v[4]),
    lw = v[5], lx = v[6] and tonumber(v[6]), nb = v[7] and tonumber(v[7]),
    upd = tonumber(v[8]), tk = v[9], task = v[10], wf = v[11], parent = v[12], top = v[13],
    maxr = tonumber(v[14]) }, v
end

-- Appends n journal entries to id's journal, the i-th (from 0) at ARGV[first + 2 * i]: one RPUSH
-- per JOURNAL_CHUNK of them.
local JOURNAL_CHUNK = 512
local function append_journal(id, first, n)
  local batch = {}
  for i = 0, n - 1 do
    batch[#batch + 1] = ARGV[first + 2 * i]
    if #batch == JOURNAL_CHUNK or i == n - 1 then
      redis.call('RPUSH', P .. 'j:' .. id, unpack(batch))
      batch = {}
    end
  end
end

-- A task's doorbell b:<task> holds at most one token: 'q' while it has queued work (a woken
-- worker claims at once), 'd' while it has only delayed work (a woken worker looks when it is
-- due). RUNG: what this script rang already, so a second ring of a task costs nothing.
local RUNG = {}
local function ring(task, kind)
  if RUNG[task] == 'q' or RUNG[task] == kind then return end
  RUNG[task] = kind
  local b = P .. 'b:' .. task
  local t = redis.call('LRANGE', b, '0', '0')[1]
  if not t then
    redis.call('RPUSH', b, kind)
  elseif kind == 'q' and t ~= 'q' then
    redis.call('DEL', b)
    redis.call('RPUSH', b, 'q')
  end
end
-- After a claim: with no queued work left the doorbell falls silent, or says 'd' while delayed
-- work is left.
local function quiet(task, delayed_left)
  RUNG[task] = nil
  local b = P .. 'b:' .. task
  if not delayed_left then
    redis.call('DEL', b)
  elseif redis.call('LRANGE', b, '0', '0')[1] == 'q' then
    redis.call('DEL', b)
    redis.call('RPUSH', b, 'd')
  end
end

-- Wakes wait_final callers of id: one token, '1', or the final record (see record_token), so a
-- woken caller need not read it. A record token is pushed when id becomes final, when the list
-- is empty (a reopened invocation's was deleted) or holds a purge's '1' (which sends a woken
-- caller to read): no DEL first.
local function notify_final(id, token)
  local f = P .. 'f:' .. id
  if not token then redis.call('DEL', f) end
  redis.call('RPUSH', f, token or '1')
  redis.call('PEXPIRE', f, NOTIFY_TTL_MS)
end

-- Removes an invocation in state s from the indexes (the reverse of index); with new, the state
-- that index() adds next, what index() would put back as it was is left (the count of an
-- unchanged status, the lease index entry of one that stays running, which ZADD updates).
local function unindex(id, s, new)
  if not (new and new.st == s.st) then redis.call('HINCRBY', P .. 'n', s.st, '-1') end
  if s.tk then redis.call('ZREM', P .. 'q:' .. s.task, id) end
  if s.nb then redis.call('ZREM', P .. 'dl:' .. s.task, id) end
  if s.lx and not (new and new.st == 'running' and new.lx) then
    redis.call('ZREM', P .. 'lx', id)
  end
end

-- Adds an invocation in state s to the indexes: a claimable one joins its task's queue (at the
-- back, with a new ticket) or delayed set and rings the task's doorbell (a waiting one with a
-- timer joins the delayed set, claimable when it fires); a running one is indexed by lease
-- expiry.
-- Returns whether it queued the invocation (its 'ord' field is then the caller's order). old:
-- the state unindex() removed, if any (an unchanged status keeps its count).
local function index(id, s, old)
  if not (old and old.st == s.st) then redis.call('HINCRBY', P .. 'n', s.st, '1') end
  s.tk = false
  local queued = false
  if CLAIMABLE[s.st] or (s.st == 'waiting' and s.nb) then
    if s.nb then
      redis.call('ZADD', P .. 'dl:' .. s.task, num(s.nb), id)
    else
      local t = redis.call('INCR', P .. 'tick')
      redis.call('ZADD', P .. 'q:' .. s.task, num(t), id)
      queued = true
      s.tk = t
    end
    ring(s.task, queued and 'q' or 'd')
  end
  if s.st == 'running' and s.lx then redis.call('ZADD', P .. 'lx', num(s.lx), id) end
  return queued
end

-- Tree bookkeeping for retention, and the wake-up of wait_final callers.
local function finished(id, s, token)
  local tr = P .. 'tr:' .. s.top
  local open = redis.call('HINCRBY', tr, 'open', '-1')
  local fin = tonumber(redis.call('HGET', tr, 'fin') or '0')
  if s.upd > fin then
    fin = s.upd
    redis.call('HSET', tr, 'fin', num(fin))
  end
  if open <= 0 then redis.call('ZADD', P .. 'fin', num(fin), s.top) end
  notify_final(id, token)
end

-- A final invocation that is not final any more (an operator's retry): its tree is unfinished
-- again, and a stale notification token must not wake wait_final callers.
local function reopened(id, s)
  if redis.call('HINCRBY', P .. 'tr:' .. s.top, 'open', '1') == 1 then
    redis.call('ZREM', P .. 'fin', s.top)
  end
  redis.call('DEL', P .. 'f:' .. id)
end

-- The one mutation path of an invocation's state: old (nil for a new one) becomes new.
-- more (optional): { set = {field, value, ...} written in the same HSET, del = {field, ...}
-- removed in the same HDEL, publish = true when the hash is then complete, so a final record is
-- handed to wait_final callers in their wake-up token }. A field is deleted only when old had
-- it (old is what load read).
local STATE_FIELDS = { 'st', 'att', 'ret', 'rec', 'lw', 'lx', 'nb', 'upd', 'tk' }
local NUMERIC = { att = true, ret = true, rec = true, lx = true, nb = true, upd = true, tk = true }
local record_token
local function save(id, old, new, more)
  if old then unindex(id, old, new) end
  local set, del = {}, {}
  if index(id, new, old) then set[1] = 'ord'; set[2] = ORD end
  for _, f in ipairs(STATE_FIELDS) do
    local v = new[f]
    if v == false or v == nil then
      if old and old[f] then del[#del + 1] = f end
    elseif not (old and old[f] == v) then
      -- Only what changed: old is what load() read from the hash.
      set[#set + 1] = f
      set[#set + 1] = NUMERIC[f] and num(v) or v
    end
  end
  if more then
    for _, v in ipairs(more.set or {}) do set[#set + 1] = v end
    for _, f in ipairs(more.del or {}) do del[#del + 1] = f end
  end
  if #set > 0 then redis.call('HSET', ik(id), unpack(set)) end
  if #del > 0 then redis.call('HDEL', ik(id), unpack(del)) end
  if old and not FINAL[old.st] and FINAL[new.st] then
    finished(id, new, more and more.publish and record_token(id))
  end
  if old and FINAL[old.st] and not FINAL[new.st] then reopened(id, new) end
end

-- Sets (value) or clears (false) the opaque result and error fields.
local function blobs(id, res, err, errl)
  local set, del = {}, {}
  for f, v in pairs({ res = res, err = err, errl = errl }) do
    if v then set[#set + 1] = f; set[#set + 1] = v else del[#del + 1] = f end
  end
  if #set > 0 then redis.call('HSET', ik(id), unpack(set)) end
  if #del > 0 then redis.call('HDEL', ik(id), unpack(del)) end
end

-- The tasks this script added to the set of every task seen.
local TASKS_ADDED = {}

-- c = { id, task, wf, parent (or false), spec, maxr, nb (or false) }. With lease = { worker,
-- expiry }, it is created running as attempt 1 under that lease (a checkpoint's inline child),
-- never queued; without, pending.
local function create(c, now, lease)
  local seq = redis.call('INCR', P .. 'seq')
  local top
  if c.id == c.wf then
    top = (c.parent and redis.call('HGET', ik(c.parent), 'top')) or c.id
  else
    top = redis.call('HGET', ik(c.wf), 'top')
      or (c.parent and redis.call('HGET', ik(c.parent), 'top')) or c.wf
  end
  local fields = { 'spec', c.spec, 'task', c.task, 'wf', c.wf, 'top', top, 'created', num(now),
    'maxr', num(c.maxr), 'seq', num(seq), 'cord', ORD }
  if c.parent then fields[#fields + 1] = 'parent'; fields[#fields + 1] = c.parent end
  -- An id purged and created again: the purge's wait_final token (it lives NOTIFY_TTL_MS)
  -- would send every wait_final caller round a read and a BLMOVE until it expires.
  redis.call('DEL', P .. 'f:' .. c.id)
  redis.call('RPUSH', P .. 'm:' .. c.wf, c.id)
  if c.parent then redis.call('RPUSH', P .. 'c:' .. c.parent, c.id) end
  if c.id == c.wf then
    redis.call('ZADD', P .. 'roots', num(seq), c.id)
    redis.call('RPUSH', P .. 't:' .. top, c.id)
  end
  -- A tree that had finished is unfinished again (a new tree cannot have finished: purge
  -- deletes a tree's counts with its fin entry).
  if redis.call('HINCRBY', P .. 'tr:' .. top, 'open', '1') == 1 and c.id ~= top then
    redis.call('ZREM', P .. 'fin', top)
  end
  if not TASKS_ADDED[c.task] then
    TASKS_ADDED[c.task] = true
    redis.call('SADD', P .. 'tasks', c.task)
  end
  local s = { st = 'pending', att = 0, ret = 0, rec = 0, lw = false, lx = false,
    nb = c.nb, upd = now, tk = false, task = c.task, wf = c.wf, parent = c.parent, top = top,
    maxr = c.maxr }
  if lease then
    s.st = 'running'; s.att = 1; s.lw = lease.worker; s.lx = lease.expiry; s.nb = false
  end
  save(c.id, nil, s, { set = fields })
end

-- The new invocation whose 7 arguments start at ARGV[b]: id, task, wf, parent (or ''), spec,
-- max recoveries, not-before (or '').
local function new_arg(b)
  return { id = ARGV[b], task = ARGV[b + 1], wf = ARGV[b + 2],
    parent = ARGV[b + 3] ~= '' and ARGV[b + 3], spec = ARGV[b + 4], maxr = tonumber(ARGV[b + 5]),
    nb = ARGV[b + 6] ~= '' and tonumber(ARGV[b + 6]) }
end

-- Is a new invocation c new (nil), an identical resubmission ('exists') or a conflict?
local function check_new(c)
  local spec = redis.call('HGET', ik(c.id), 'spec')
  if not spec then return nil end
  if spec == c.spec then return 'exists' end
  return 'conflict'
end

-- A final child may make its waiting parent runnable.
local function wake_parent(id, s, now)
  if not s.parent then return end
  local p = load(s.parent)
  if not p or p.st ~= 'waiting' then return end
  local wk = P .. 'w:' .. s.parent
  if not redis.call('ZSCORE', wk, id) then return end
  redis.call('ZREM', wk, id)
  if redis.call('ZCARD', wk) > 0 or not allowed('waiting', 'pending') then return end
  local new = copy(p)
  new.st = 'pending'
  -- It no longer waits for its timer either.
  new.nb = false
  new.upd = now
  save(s.parent, p, new)
end

-- Ends invocation id, in state old, cancelled with failure (opaque bytes): lease, timer and
-- waited-on children cleared, result dropped, a waiting parent woken. The caller checked the
-- transition.
local function cancel_member(id, old, failure, now)
  local new = copy(old)
  new.st = 'cancelled'
  new.lw = false
  new.lx = false
  new.nb = false
  new.upd = now
  save(id, old, new)
  redis.call('DEL', P .. 'w:' .. id)
  blobs(id, false, failure, false)
  wake_parent(id, new, now)
end

-- Makes invocations whose lease expired before now runnable again (or failed once they were
-- lost more times in a row than they allow); at most limit of them. Returns their ids.
local function recover(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'lx', '-inf', '(' .. num(now), 'LIMIT', '0', num(limit))
  for _, id in ipairs(ids) do
    local old = load(id)
    if not old then
      redis.call('ZREM', P .. 'lx', id)
    else
      local new = copy(old)
      new.lw = false
      new.lx = false
      new.upd = now
      local cx = redis.call('HMGET', ik(id), 'cxf', 'cxa')
      if cx[1] and (not cx[2] or old.rec >= old.maxr) then
        -- Cancelled while it ran and its worker is gone: a body never told ends here; one told
        -- keeps compensating (recovered below) unless it crash-loops.
        if not allowed(old.st, 'cancelled') then error('WF transition ' .. old.st .. ' cancelled') end
        cancel_member(id, old, cx[1], now)
      elseif old.rec >= old.maxr then
        if not allowed(old.st, 'failed') then error('WF transition ' .. old.st .. ' failed') end
        new.st = 'failed'
        save(id, old, new)
        blobs(id, false, false, num(old.rec) .. ':' .. num(old.att))
        wake_parent(id, new, now)
      else
        if not allowed(old.st, 'pending') then error('WF transition ' .. old.st .. ' pending') end
        new.st = 'pending'
        new.rec = old.rec + 1
        save(id, old, new)
      end
    end
  end
  return ids
end

-- An invocation's record as the client decodes it (the last field is the caller's order of its
-- creation, which orders roots created in the same millisecond in different shards), or false.
-- Only a waiting invocation waits on children (w: is empty otherwise).
local RECORD_FIELDS = { 'spec', 'created', 'maxr', 'st', 'att', 'ret', 'rec', 'lw', 'lx', 'nb',
  'upd', 'res', 'err', 'errl', 'cord' }
local function record(id)
  local v = redis.call('HMGET', ik(id), unpack(RECORD_FIELDS))
  if not v[4] then return false end
  local order = v[15] or '0'
  v[15] = v[4] == 'waiting' and redis.call('ZRANGE', P .. 'w:' .. id, '0', '-1') or {}
  v[16] = order
  return v
end

-- A final record as one string for wait_final's wake-up token: 'R', then per field of
-- RECORD_FIELDS '-' (none) or '<length>:<bytes>' (fields.rs decodes it).
record_token = function(id)
  local v = redis.call('HMGET', ik(id), unpack(RECORD_FIELDS))
  local parts = { 'R' }
  for i = 1, #RECORD_FIELDS do
    local x = v[i]
    if x then parts[#parts + 1] = num(#x) .. ':' .. x else parts[#parts + 1] = '-' end
  end
  return table.concat(parts)
end

-- The task names of a request: ARGV[at] is their count, -1 for every task seen.
local function tasks_arg(at)
  local n = tonumber(ARGV[at])
  if n < 0 then return redis.call('SMEMBERS', P .. 'tasks') end
  local t = {}
  for i = 1, n do t[i] = ARGV[at + i] end
  return t
end

-- The invocation a claim at now takes among tasks: the one runnable longest. A queued one is
-- runnable since it became ready (upd), a delayed one since its not-before time; the queue wins
-- ties; queued ones are ordered by ticket, delayed ones by (not-before, id). Returns its id, when
-- it became runnable (only with need_since, else nil when it is queued), per task how many it
-- saw queued and delayed (at most 2 each: whether any are left once one is taken), and the
-- earliest not-before time among the tasks' delayed ones (nil for none).
local function pick(now, tasks, need_since)
  local q, qtk, d, dnb, dnext
  local seen = {}
  for _, t in ipairs(tasks) do
    local r = redis.call('ZRANGE', P .. 'q:' .. t, '0', '1', 'WITHSCORES')
    local rd = redis.call('ZRANGE', P .. 'dl:' .. t, '0', '1', 'WITHSCORES')
    seen[t] = { q = #r / 2, d = #rd / 2 }
    if r[1] and (not q or tonumber(r[2]) < qtk) then q = r[1]; qtk = tonumber(r[2]) end
    if rd[1] then
      local nb = tonumber(rd[2])
      if not dnext or nb < dnext then dnext = nb end
      if nb <= now and (not d or nb < dnb or (nb == dnb and rd[1] < d)) then d = rd[1]; dnb = nb end
    end
  end
  if q and d then
    local since = tonumber(redis.call('HGET', ik(q), 'upd'))
    if dnb < since then return d, dnb, seen, dnext end
    return q, since, seen, dnext
  end
  if q then
    return q, need_since and tonumber(redis.call('HGET', ik(q), 'upd')) or nil, seen, dnext
  end
  return d, dnb, seen, dnext
end

-- What a claim reads in one HMGET: the state, then the rest of the record (see record()).
local CLAIM_FIELDS = { 'st', 'att', 'ret', 'rec', 'lw', 'lx', 'nb', 'upd', 'tk', 'task', 'wf',
  'parent', 'top', 'maxr', 'spec', 'created', 'res', 'err', 'errl', 'cord' }
-- What a commit reads in one HMGET: the state, then what it decides on or replaces.
local COMMIT_FIELDS = { 'st', 'att', 'ret', 'rec', 'lw', 'lx', 'nb', 'upd', 'tk', 'task', 'wf',
  'parent', 'top', 'maxr', 'cxf', 'res', 'err', 'errl', 'aw' }

-- The lease check of renew and commit: the invocation runs under this worker's lease for this
-- attempt, unexpired at now. Returns its state, or nil and the refusal to return.
-- with: as load()'s; the raw values are then the third result.
local function fence(id, worker, attempt, now, with)
  local s, row = load(id, with)
  if not s then return nil, { 'notfound' } end
  if s.st ~= 'running' then return nil, { 'lost', 'the invocation is ' .. s.st .. ' now' } end
  if s.att ~= attempt then
    return nil, { 'lost', 'attempt ' .. num(s.att) .. ' holds it now, this lease was for attempt '
      .. num(attempt) }
  end
  if s.lw == worker and s.lx and s.lx >= now then return s, nil, row end
  if s.lw and s.lw ~= worker then return nil, { 'lost', 'worker ' .. s.lw .. ' holds it now' } end
  return nil, { 'lost', 'the lease expired' }
end

-- Claims for worker, until expiry, the invocation a claim at now takes among tasks (see pick):
-- running, its attempt one more. Returns {'none', next due}, {'transition', from, to, id} or
-- {'claimed', id, record, journal}.
local function claim_one(now, worker, expiry, tasks)
  local id, _, seen, dnext = pick(now, tasks)
  if not id then
    -- When a claim could find something by the clock alone, as probe reports it (-1: never),
    -- so an idle worker can sleep without probing first.
    local due = dnext or -1
    local l = redis.call('ZRANGE', P .. 'lx', '0', '0', 'WITHSCORES')
    if l[1] and (due < 0 or tonumber(l[2]) + 1 < due) then due = tonumber(l[2]) + 1 end
    return { 'none', num(due) }
  end
  local old, row = load(id, CLAIM_FIELDS)
  if not allowed(old.st, 'running') then return { 'transition', old.st, 'running', id } end
  local new = copy(old)
  new.st = 'running'
  new.att = old.att + 1
  new.lw = worker
  new.lx = expiry
  new.nb = false
  new.upd = now
  save(id, old, new)
  -- Claimed once its timer fired: it no longer waits on its children.
  if old.st == 'waiting' then redis.call('DEL', P .. 'w:' .. id) end
  -- The doorbell keeps ringing while the task has queued work, so the next idle worker wakes;
  -- with nothing queued it falls silent. (pick saw up to two of each kind: what is left.)
  local left = seen[old.task]
  if left.q - (old.tk and 1 or 0) > 0 then
    ring(old.task, 'q')
  else
    quiet(old.task, left.d - (old.nb and 1 or 0) > 0)
  end
  -- The token that woke this claim may have been another task's (a waiter on several tasks
  -- takes whichever rings): every other task with queued work rings again, so a waiter on it
  -- alone is not left asleep. (ring() writes nothing where 'q' is there already.)
  for _, t in ipairs(tasks) do
    if t ~= old.task and seen[t].q > 0 then ring(t, 'q') end
  end
  -- Never claimed before: nothing was ever committed, so no journal.
  local journal = old.att > 0 and redis.call('LRANGE', P .. 'j:' .. id, '0', '-1') or {}
  -- Its record as record() would read it now, from what load read and save wrote (a running
  -- invocation waits on nothing; its not-before is cleared).
  local rec = { row[15], row[16], row[14], 'running', num(new.att), row[3], row[4], worker,
    num(expiry), false, num(now), row[17], row[18], row[19], {}, row[20] or '0' }
  return { 'claimed', id, rec, journal }
end

-- Starts a call: its keys and arguments, and this call's own state (what it rang, the tasks it
-- added, its order).
local function begin(keys, args)
  KEYS, ARGV = keys, args
  P = string.sub(keys[1], 1, -2)
  ORD = '0'
  if next(RUNG) then RUNG = {} end
  if next(TASKS_ADDED) then TASKS_ADDED = {} end
end
