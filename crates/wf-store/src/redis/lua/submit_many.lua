-- submit_many: ARGV now, order, check only ('1'/'0'), count, (id, task, wf, parent, spec,
-- max_recoveries, not_before)... Validates the whole batch, then (unless check only) creates
-- the new ones: all or nothing. Each is idempotent by id, within the batch too.
-- Returns {'ok', {'created' | 'exists'}...}, {'conflict', id} or {'transition', from, to}.
local now = tonumber(ARGV[1])
ORD = ARGV[2]
local only = ARGV[3] == '1'
local n = tonumber(ARGV[4])
local fresh, seen, answers = {}, {}, {}
for i = 0, n - 1 do
  local c = new_arg(5 + 7 * i)
  local answer
  if seen[c.id] then
    if seen[c.id] ~= c.spec then return { 'conflict', c.id } end
    answer = 'exists'
  else
    local st = check_new(c)
    if st == 'conflict' then return { 'conflict', c.id } end
    seen[c.id] = c.spec
    if st then
      answer = 'exists'
    else
      answer = 'created'
      fresh[#fresh + 1] = c
    end
  end
  answers[i + 1] = answer
end
if #fresh > 0 and not allowed('registered', 'pending') then
  return { 'transition', 'registered', 'pending' }
end
if not only then
  for _, c in ipairs(fresh) do create(c, now) end
end
return { 'ok', answers }
