-- Returns up to `limit` running tasks whose lease ended before `now` to available, or to
-- dead on their last attempt, oldest lease first.
-- ARGV: now, limit, result TTL in ms (0: keep). Returns the ids moved.

local now, limit, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local rescued = {}

while #rescued < limit do
  local expired = redis.call('ZRANGEBYSCORE', key('running'), '-inf', '(' .. now,
    'LIMIT', 0, limit - #rescued)
  if #expired == 0 then
    break
  end
  for _, id in ipairs(expired) do
    redis.call('ZREM', key('running'), id)
    local task = load_task(id)
    if task and task.state == 'running' then
      local tk = task_key(id)
      local message = 'lease expired: worker ' .. (task.worker or '?') ..
        ' stopped heartbeating during attempt ' .. task.attempt
      local record = attempt_record(task, now, 'lease expired')
      record.error = message
      push_attempt(id, record)
      redis.call('HSET', tk, 'error', message, 'finished_at', now)
      redis.call('HDEL', tk, 'lease_until')
      if tonumber(task.attempt) < tonumber(task.max_attempts) then
        redis.call('HSET', tk, 'state', 'available', 'run_at', now)
        move_count(task.queue, 'running', 'available')
        move_job_count(task, 'available', task.worker, now)
        add_waiting(id, task, now, now)
      else
        redis.call('HSET', tk, 'state', 'dead')
        redis.call('ZADD', key('dead'), id, id)
        move_count(task.queue, 'running', 'dead')
        move_job_count(task, 'dead', task.worker, now)
        count_recent(task.queue, 'f', now)
        finish(id, 'dead', task.queue, task.unique_key, now, ttl)
      end
      rescued[#rescued + 1] = id
    end
  end
end

save_changes()
if #rescued > 0 then
  publish('tasks')
  publish('outcomes')
end
return rescued
