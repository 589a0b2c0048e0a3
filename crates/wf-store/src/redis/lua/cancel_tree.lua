-- cancel_tree: ARGV now, id, reason, failure (opaque), order. Cancels the invocation and
-- everything it started, recursively, walked parents before children (children by c:<id>):
-- pending, waiting and retrying members at once; running ones get a cancellation request (they
-- end cancelled at their next commit or recovery); a member asked to stop before is left alone
-- with its subtree (its compensating steps run there); final members are left alone.
-- Returns {'notfound'} or {'ok', status before, cancelled ids, stopping ids, already stopping ids}.
local now = tonumber(ARGV[1])
local id = ARGV[2]
local reason, failure = ARGV[3], ARGV[4]
ORD = ARGV[5]
local first = load(id)
if not first then return { 'notfound' } end
local cancelled, stopping, already = {}, {}, {}
if FINAL[first.st] then return { 'ok', first.st, cancelled, stopping, already } end
local tree, head = { id }, 1
while head <= #tree do
  local m = tree[head]
  head = head + 1
  local s = load(m)
  if s then
    if not FINAL[s.st] and redis.call('HEXISTS', ik(m), 'cxf') == 1 then
      already[#already + 1] = m
    else
      for _, k in ipairs(redis.call('LRANGE', P .. 'c:' .. m, 0, -1)) do tree[#tree + 1] = k end
      if not FINAL[s.st] then
        if s.st == 'running' then
          redis.call('HSET', ik(m), 'cx', reason, 'cxf', failure)
          redis.call('HDEL', ik(m), 'cxa')
          stopping[#stopping + 1] = m
        else
          if not allowed(s.st, 'cancelled') then error('WF transition ' .. s.st .. ' cancelled') end
          cancel_member(m, s, failure, now)
          cancelled[#cancelled + 1] = m
        end
      end
    end
  end
end
return { 'ok', first.st, cancelled, stopping, already }
