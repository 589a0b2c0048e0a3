-- submit: ARGV now, id, task, wf, parent ('' for none), spec, max_recoveries, not_before (''),
-- order.
-- Returns {'created'}, {'exists'}, {'conflict'} or {'transition', from, to}.
local now = tonumber(ARGV[1])
ORD = ARGV[9]
local c = { id = ARGV[2], task = ARGV[3], wf = ARGV[4], parent = ARGV[5] ~= '' and ARGV[5],
  spec = ARGV[6], maxr = tonumber(ARGV[7]), nb = ARGV[8] ~= '' and tonumber(ARGV[8]) }
local seen = check_new(c)
if seen then return { seen } end
if not allowed('registered', 'pending') then return { 'transition', 'registered', 'pending' } end
create(c, now)
return { 'created' }
