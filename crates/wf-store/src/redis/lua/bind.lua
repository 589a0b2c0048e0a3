-- bind: KEYS[1] = '{<ns>}:meta'. ARGV app ('' to only read), shards for a new namespace ('' for
-- the default), format version, create ('1' to record a missing namespace, '0' to only read).
-- Returns {'ok', shards or false, app or false, format or false} or {'format', found}.
local m = KEYS[1]
local fmt = redis.call('HGET', m, 'format')
if fmt and fmt ~= ARGV[3] then return { 'format', fmt } end
local create = ARGV[4] == '1'
if not fmt and create then
  fmt = ARGV[3]
  redis.call('HSET', m, 'format', fmt)
end
local shards = redis.call('HGET', m, 'shards')
if not shards and create then
  shards = ARGV[2] ~= '' and ARGV[2] or '1'
  redis.call('HSET', m, 'shards', shards)
end
local app = redis.call('HGET', m, 'app')
if ARGV[1] ~= '' and not app then
  redis.call('HSET', m, 'app', ARGV[1])
  app = ARGV[1]
end
return { 'ok', shards, app, fmt }
