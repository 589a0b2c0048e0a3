-- claim: ARGV now, worker, lease expiry, recovery limit, order, task count (-1: all), tasks...
-- Recovers expired leases first, then claims the oldest runnable invocation of the tasks.
-- Returns {'none'}, {'transition', from, to, id} or {'claimed', id, record, journal}.
local now = tonumber(ARGV[1])
ORD = ARGV[5]
recover(now, tonumber(ARGV[4]))
return claim_one(now, ARGV[2], tonumber(ARGV[3]), tasks_arg(6))
