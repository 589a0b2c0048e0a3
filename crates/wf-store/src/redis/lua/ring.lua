-- ring: ARGV tasks... Rings their doorbells (a listener that took a token nobody here needed
-- gives it back).
for _, t in ipairs(ARGV) do ring(t) end
return 1
