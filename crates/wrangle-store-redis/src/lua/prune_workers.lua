-- Removes the workers silent at `now` for more than LOST_AFTER_LEASES of their own leases:
-- `workers:lost-at` scores each worker by when that happens (last heartbeat plus that many
-- leases; a worker that did not say its lease is not in it), so this reads only them.
-- ARGV: now. Returns their names. Their log rings go with them.

local gone = redis.call('ZRANGEBYSCORE', key('workers:lost-at'), '-inf', '(' .. ARGV[1])
for _, name in ipairs(gone) do
  redis.call('HDEL', key('workers'), name)
  redis.call('ZREM', key('workers:seen'), name)
  redis.call('ZREM', key('workers:lost-at'), name)
  drop_log('worker:' .. name)
end
return gone
