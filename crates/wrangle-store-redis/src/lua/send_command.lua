-- Puts a command in a worker's mailbox.
-- ARGV: worker, command JSON, now. Returns the command's id.

local worker, command, now = ARGV[1], ARGV[2], ARGV[3]
local id = fmt_int(redis.call('INCR', key('command-ids')))
redis.call('HSET', key('command:' .. id), 'id', id, 'worker', worker, 'command', command,
  'sent_at', now)
redis.call('ZADD', key('mailbox:' .. worker), id, id)
publish('commands')
return id
