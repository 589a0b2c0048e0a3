-- read: ARGV ids... Returns one record (or false) per id.
local out = {}
for i, id in ipairs(ARGV) do out[i] = record(id) end
return out
