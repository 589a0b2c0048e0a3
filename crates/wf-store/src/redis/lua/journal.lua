-- journal: ARGV id. Returns {'notfound'} or {'ok', entries}.
if redis.call('EXISTS', ik(ARGV[1])) == 0 then return { 'notfound' } end
return { 'ok', redis.call('LRANGE', P .. 'j:' .. ARGV[1], 0, -1) }
