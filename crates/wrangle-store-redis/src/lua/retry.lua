-- An operator's retry of one task: a scheduled, retryable, dead or cancelled task becomes
-- available now (with one more attempt if it had none left).
-- ARGV: id, now.
-- Returns {'ok', the task's fields}, {'not_found'} or {'invalid', its state}.

local id, now = ARGV[1], ARGV[2]
local task = load_task(id)
if not task then
  return {'not_found'}
end
if not RETRYABLE[task.state] then
  return {'invalid', task.state}
end
revive(id, task, now)
save_changes()
publish('tasks')
return {'ok', redis.call('HGETALL', task_key(id))}
