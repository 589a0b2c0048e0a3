-- send_event: ARGV now, id, name, payload, has key ('1'/'0'), key, order. Stores the event as
-- the next of the invocation's events and wakes it if it waits for one of this name;
-- idempotent by key (checked before finality, so a retried send is answered even once final).
-- Returns {'stored', seq}, {'already', seq}, {'conflict'}, {'notfound'}, {'final', status} or
-- {'transition', from, to}.
local now = tonumber(ARGV[1])
local id = ARGV[2]
local name, payload = ARGV[3], ARGV[4]
local key = ARGV[5] == '1' and ARGV[6]
ORD = ARGV[7]
local s = load(id)
if not s then return { 'notfound' } end
local ek = P .. 'e:' .. id
if key then
  local before = redis.call('HGET', ek, 'K:' .. key)
  if before then
    local e = redis.call('HMGET', ek, 'n:' .. before, 'p:' .. before)
    if e[1] == name and e[2] == payload then return { 'already', before } end
    return { 'conflict' }
  end
end
if FINAL[s.st] then return { 'final', s.st } end
local wakes = s.st == 'waiting' and redis.call('HGET', ik(id), 'aw') == name
if wakes and not allowed('waiting', 'pending') then return { 'transition', 'waiting', 'pending' } end
local seq = num(tonumber(redis.call('HGET', ek, 'len') or '0'))
local fields = { 'len', num(tonumber(seq) + 1), 'n:' .. seq, name, 'p:' .. seq, payload,
  't:' .. seq, num(now) }
if key then
  fields[#fields + 1] = 'k:' .. seq
  fields[#fields + 1] = key
  fields[#fields + 1] = 'K:' .. key
  fields[#fields + 1] = seq
end
redis.call('HSET', ek, unpack(fields))
redis.call('HINCRBY', ek, 'U:' .. name, 1)
if wakes then
  local new = copy(s)
  new.st = 'pending'
  new.nb = false
  new.upd = now
  redis.call('DEL', P .. 'w:' .. id)
  save(id, s, new)
end
return { 'stored', seq }
