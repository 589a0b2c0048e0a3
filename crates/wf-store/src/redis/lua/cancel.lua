-- cancel: ARGV now, id, failure (opaque), order. An operator's cancel of one invocation.
-- Returns {'ok'}, {'notfound'} or {'transition', from, to}.
local now = tonumber(ARGV[1])
ORD = ARGV[4]
local id = ARGV[2]
local old = load(id)
if not old then return { 'notfound' } end
if not allowed(old.st, 'cancelled') then return { 'transition', old.st, 'cancelled' } end
cancel_member(id, old, ARGV[3], now)
return { 'ok' }
