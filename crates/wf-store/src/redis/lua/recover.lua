-- recover: ARGV now, limit. Returns the recovered ids.
return recover(tonumber(ARGV[1]), tonumber(ARGV[2]))
