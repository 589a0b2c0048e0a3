-- ring: ARGV tasks... Rings their doorbells again for the work they have (a listener that took
-- a token nobody here needed gives it back; a token for work claimed meanwhile is not).
for _, t in ipairs(ARGV) do
  if redis.call('ZCARD', P .. 'q:' .. t) > 0 then
    ring(t, 'q')
  elseif redis.call('ZCARD', P .. 'dl:' .. t) > 0 then
    ring(t, 'd')
  end
end
return 1
