-- Records how attempts ended, in request order: a completion applies only while the task
-- is running under the same worker and attempt, else it is stale.
-- ARGV: now, result TTL in ms (0: keep), then 6 values per completion: id, attempt,
-- worker, outcome (succeeded, failed or released), text (the result JSON, the error or
-- the reason), retry_at ('' for none).
-- Returns per completion the task's new state, or 'stale'.
--
-- Cost of a success (the common case): three calls per task (HMGET, HSET, PEXPIRE); the
-- running and finished indexes get one call each for the whole batch (save_changes).

local now, ttl = ARGV[1], ARGV[2]
local statuses = {}
local applied, released = false, false
-- Succeeded tasks' ids, to leave the running index in one call.
local succeeded = {}

-- A success: returns 'completed', or 'stale'. Its attempt record is not appended to the
-- history: readers imply it from attempt, worker, started_at and finished_at (completed is
-- final), which keeps this to three short fields (and the record a compact listpack).
local function succeed(id, attempt, worker, result)
  local tk = task_key(id)
  local f = redis.call('HMGET', tk, 'state', 'attempt', 'worker', 'unique_key', 'error',
    'queue', 'job', 'ids')
  if f[1] ~= 'running' or f[2] ~= attempt or f[3] ~= worker then
    return 'stale'
  end
  -- lease_until stays in the record: it means nothing once the task is not running and
  -- readers ignore it then (one HDEL less per task).
  redis.call('HSET', tk, 'state', 'completed', 'result', result, 'finished_at', now)
  if f[5] then
    redis.call('HDEL', tk, 'error')
  end
  finish(id, 'completed', f[6], f[4], now, ttl)
  succeeded[#succeeded + 1] = id
  move_count(f[6], 'running', 'completed')
  count_recent(f[6], 'c', now)
  move_job_count({job = f[7], ids = f[8], state = 'running', worker = worker}, 'completed',
    worker, now)
  return 'completed'
end

-- A failure or a release: returns the new state, or 'stale'.
local function fail_or_release(id, attempt, worker, outcome, text, retry_at)
  local task = load_task(id)
  if not task or task.state ~= 'running' or task.attempt ~= attempt or task.worker ~= worker then
    return 'stale'
  end
  local tk = task_key(id)
  redis.call('ZREM', key('running'), id)
  redis.call('HDEL', tk, 'lease_until')
  if outcome == 'failed' then
    count_recent(task.queue, 'f', now)
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
      move_count(task.queue, 'running', 'retryable')
      move_job_count(task, 'retryable', worker, now)
      add_waiting(id, task, run_at, now)
      return 'retryable'
    end
    push_attempt(id, record)
    redis.call('HSET', tk, 'state', 'dead')
    redis.call('ZADD', key('dead'), id, id)
    move_count(task.queue, 'running', 'dead')
    move_job_count(task, 'dead', worker, now)
    finish(id, 'dead', task.queue, task.unique_key, now, ttl)
    return 'dead'
  end
  -- Released: handed back unfinished, so the attempt does not count.
  local record = attempt_record(task, now, 'released')
  record.error = text
  push_attempt(id, record)
  redis.call('HINCRBY', tk, 'attempt', -1)
  redis.call('HSET', tk, 'state', 'available', 'run_at', now)
  move_count(task.queue, 'running', 'available')
  move_job_count(task, 'available', worker, now)
  task.run_at = now
  add_waiting(id, task, now, now)
  released = true
  return 'available'
end

for i = 3, #ARGV, 6 do
  local id, attempt, worker, outcome, text, retry_at = unpack(ARGV, i, i + 5)
  local state
  if outcome == 'succeeded' then
    state = succeed(id, attempt, worker, text)
  else
    state = fail_or_release(id, attempt, worker, outcome, text, retry_at)
  end
  if state ~= 'stale' then
    applied = true
  end
  statuses[#statuses + 1] = state
end

if #succeeded > 0 then
  zrem_many(key('running'), succeeded)
end

save_changes()
if applied then
  publish('outcomes')
end
if released then
  publish('tasks')
end
return statuses
