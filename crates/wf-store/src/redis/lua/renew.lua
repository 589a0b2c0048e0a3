-- renew: ARGV now, id, worker, attempt, new expiry.
-- Returns {'ok'}, {'notfound'} or {'lost', reason}.
local now = tonumber(ARGV[1])
local id = ARGV[2]
local s, refusal = fence(id, ARGV[3], tonumber(ARGV[4]), now)
if not s then return refusal end
local new = copy(s)
new.lx = tonumber(ARGV[5])
save(id, s, new)
return { 'ok' }
