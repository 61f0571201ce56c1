-- Retries every dead task, of one queue or of all.
-- ARGV: now, then the queue name if only one queue's. Returns how many were retried.

local now, queue = ARGV[1], ARGV[2]
local retried = 0
for _, id in ipairs(redis.call('ZRANGE', key('dead'), 0, -1)) do
  local task = load_task(id)
  if not task then
    redis.call('ZREM', key('dead'), id)
  elseif task.state == 'dead' and (not queue or task.queue == queue) then
    revive(id, task, now)
    retried = retried + 1
  end
end
save_changes()
if retried > 0 then
  publish('tasks')
end
return retried
