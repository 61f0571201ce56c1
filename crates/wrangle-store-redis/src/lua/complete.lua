-- Records how attempts ended, in request order: a completion applies only while the task
-- is running under the same worker and attempt, else it is stale.
-- ARGV: now, result TTL in ms (0: keep), then 6 values per completion: id, attempt,
-- worker, outcome (succeeded, failed or released), text (the result JSON, the error or
-- the reason), retry_at ('' for none).
-- Returns per completion the task's new state, or 'stale'.

local now, ttl = ARGV[1], ARGV[2]
local statuses = {}
local applied, released = false, false

for i = 3, #ARGV, 6 do
  local id, attempt, worker, outcome, text, retry_at = unpack(ARGV, i, i + 5)
  local task = load_task(id)
  if not task or task.state ~= 'running' or task.attempt ~= attempt or task.worker ~= worker then
    statuses[#statuses + 1] = 'stale'
  else
    local tk = task_key(id)
    local state
    redis.call('ZREM', key('running'), id)
    redis.call('HDEL', tk, 'lease_until')
    if outcome == 'succeeded' then
      push_attempt(id, attempt_record(task, now, 'completed'))
      redis.call('HSET', tk, 'state', 'completed', 'result', text, 'finished_at', now)
      redis.call('HDEL', tk, 'error')
      finish(id, task, now, ttl)
      state = 'completed'
    elseif outcome == 'failed' then
      local record = attempt_record(task, now, 'failed')
      record.error = text
      redis.call('HSET', tk, 'error', text, 'finished_at', now)
      if retry_at ~= '' and tonumber(task.attempt) < tonumber(task.max_attempts) then
        record.retry_at = tonumber(retry_at)
        push_attempt(id, record)
        local run_at = retry_at
        if tonumber(run_at) < tonumber(now) then
          run_at = now
        end
        redis.call('HSET', tk, 'state', 'retryable', 'run_at', run_at)
        add_waiting(id, task, run_at, now)
        state = 'retryable'
      else
        push_attempt(id, record)
        redis.call('HSET', tk, 'state', 'dead')
        redis.call('ZADD', key('dead'), id, id)
        finish(id, task, now, ttl)
        state = 'dead'
      end
    else
      -- Released: handed back unfinished, so the attempt does not count.
      local record = attempt_record(task, now, 'released')
      record.error = text
      push_attempt(id, record)
      redis.call('HINCRBY', tk, 'attempt', -1)
      redis.call('HSET', tk, 'state', 'available', 'run_at', now)
      task.run_at = now
      add_waiting(id, task, now, now)
      released = true
      state = 'available'
    end
    applied = true
    statuses[#statuses + 1] = state
  end
end

if applied then
  publish('outcomes')
end
if released then
  publish('tasks')
end
return statuses
