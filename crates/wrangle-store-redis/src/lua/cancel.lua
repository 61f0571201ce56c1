-- Cancels a task that is not final; a running task's worker learns it at its next
-- heartbeat.
-- ARGV: id, now, result TTL in ms (0: keep).
-- Returns {'ok', the task's fields}, {'not_found'} or {'invalid', its state}.

local id, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local task = load_task(id)
if not task then
  return {'not_found'}
end
if not CANCELLABLE[task.state] then
  return {'invalid', task.state}
end
cancel(id, task, now, ttl)
save_changes()
publish('outcomes')
return {'ok', redis.call('HGETALL', task_key(id))}
