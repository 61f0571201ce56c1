-- Removes the workers not seen since `before`.
-- ARGV: before. Returns their names.

local gone = redis.call('ZRANGEBYSCORE', key('workers:seen'), '-inf', '(' .. ARGV[1])
for _, name in ipairs(gone) do
  redis.call('HDEL', key('workers'), name)
  redis.call('ZREM', key('workers:seen'), name)
end
return gone
