-- Acknowledges a command with the worker's reply; the command then expires after the
-- result TTL.
-- ARGV: id, reply JSON, now, result TTL in ms (0: keep). Returns 1, or 0 if unknown.

local id, reply, now, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ck = key('command:' .. id)
local worker = redis.call('HGET', ck, 'worker')
if not worker then
  return 0
end
redis.call('HSET', ck, 'acked_at', now, 'reply', reply)
redis.call('ZREM', key('mailbox:' .. worker), id)
if tonumber(ttl) > 0 then
  redis.call('PEXPIRE', ck, ttl)
end
publish('commands')
return 1
