-- recover: ARGV now, limit, order. Returns the recovered ids.
ORD = ARGV[3]
return recover(tonumber(ARGV[1]), tonumber(ARGV[2]))
