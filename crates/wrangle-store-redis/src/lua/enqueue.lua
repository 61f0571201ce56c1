-- Inserts a batch of tasks, all or nothing, in order.
-- ARGV: now, then 10 values per task: queue, kind, payload (JSON), priority, state,
-- run_at, max_attempts, timeout ('' for none), unique key and job ('-' for none, else
-- '+' and the value).
-- Returns per task: its id, and 1 if its unique key named an existing task (0 if new).

local now = ARGV[1]
local results = {}
local inserted = false

for i = 2, #ARGV, 10 do
  local queue, kind, payload, priority, state, run_at, max_attempts, timeout, unique, job =
    unpack(ARGV, i, i + 9)
  local existing = false
  if unique ~= '-' then
    unique = string.sub(unique, 2)
    existing = redis.call('GET', unique_key(unique))
    -- A key whose task expired or was pruned is free again.
    if existing and redis.call('EXISTS', task_key(existing)) == 0 then
      existing = false
    end
  else
    unique = nil
  end
  if existing then
    results[#results + 1] = {existing, 1}
  else
    local id = fmt_int(redis.call('INCR', key('ids')))
    local tk = task_key(id)
    redis.call('HSET', tk, 'id', id, 'queue', queue, 'kind', kind, 'payload', payload,
      'priority', priority, 'state', state, 'run_at', run_at, 'attempt', '0',
      'max_attempts', max_attempts, 'created_at', now, 'attempts', '[]')
    if timeout ~= '' then
      redis.call('HSET', tk, 'timeout', timeout)
    end
    if unique then
      redis.call('HSET', tk, 'unique_key', unique)
      redis.call('SET', unique_key(unique), id)
    end
    if job ~= '-' then
      redis.call('HSET', tk, 'job', string.sub(job, 2))
    end
    redis.call('ZADD', key('tasks'), id, id)
    add_waiting(id, {queue = queue, priority = priority}, run_at, now)
    results[#results + 1] = {id, 0}
    inserted = true
  end
end

if inserted then
  publish('tasks')
end
return results
