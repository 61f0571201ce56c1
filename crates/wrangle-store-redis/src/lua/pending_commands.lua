-- A worker's unacknowledged commands, oldest first.
-- ARGV: worker. Returns each command's fields (a flat HGETALL list).

local commands = {}
for _, id in ipairs(redis.call('ZRANGE', key('mailbox:' .. ARGV[1]), 0, -1)) do
  local fields = redis.call('HGETALL', key('command:' .. id))
  if #fields > 0 then
    commands[#commands + 1] = fields
  end
end
return commands
