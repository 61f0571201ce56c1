-- Cancels a task that is not final; a running task's worker learns it at its next
-- heartbeat.
-- ARGV: id, now, result TTL in ms (0: keep).
-- Returns {'ok', the task's fields}, {'not_found'} or {'invalid', its state}.

local id, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local task = load_task(id)
if not task then
  return {'not_found'}
end
local state = task.state
if state == 'completed' or state == 'dead' or state == 'cancelled' then
  return {'invalid', state}
end
unlist(id, task)
local tk = task_key(id)
if state == 'running' then
  push_attempt(id, attempt_record(task, now, 'cancelled'))
end
redis.call('HSET', tk, 'state', 'cancelled', 'finished_at', now)
redis.call('HDEL', tk, 'lease_until')
move_count(task.queue, state, 'cancelled')
finish(id, task, 'cancelled', now, ttl)
save_counts()
publish('outcomes')
return {'ok', redis.call('HGETALL', tk)}
