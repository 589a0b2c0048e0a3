-- commit_claim: a commit (ARGV as the commit script's), then, when it succeeded, a claim for
-- the same worker; the claim's arguments follow the commit's: lease expiry, recovery limit,
-- task count (-1: all), tasks... (now, worker and order are the commit's).
-- Returns the commit's refusal, or {'ok', claim reply} with the claim's reply as the claim
-- script returns it. A repeat of an applied commit (its reply was lost) claims nothing: what the
-- first call claimed is recovered when its lease expires, as if its worker had died.
local reply, after, repeated = commit_main()
if reply[1] ~= 'ok' then return reply end
if repeated then return { 'ok', { 'none' } } end
local now = tonumber(ARGV[1])
recover(now, tonumber(ARGV[after + 1]))
return { 'ok', claim_one(now, ARGV[3], tonumber(ARGV[after]), tasks_arg(after + 2)) }
