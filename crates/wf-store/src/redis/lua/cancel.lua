-- cancel: ARGV now, id, failure (opaque), order. Returns {'ok'}, {'notfound'} or {'transition', from, to}.
local now = tonumber(ARGV[1])
ORD = ARGV[4]
local id = ARGV[2]
local old = load(id)
if not old then return { 'notfound' } end
if not allowed(old.st, 'cancelled') then return { 'transition', old.st, 'cancelled' } end
local new = copy(old)
new.st = 'cancelled'
new.lw = false
new.lx = false
new.nb = false
new.upd = now
save(id, old, new)
redis.call('DEL', P .. 'w:' .. id)
blobs(id, redis.call('HGET', ik(id), 'res'), ARGV[3], false)
wake_parent(id, new, now)
return { 'ok' }
