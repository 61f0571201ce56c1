-- Inserts a batch of tasks, all or nothing, in order.
-- ARGV: now, then 11 values per task: queue, kind, payload (JSON), priority, state,
-- run_at, max_attempts, timeout ('' for none), unique key and job ('-' for none, else
-- '+' and the value), and the ids the task stands for in its job's tallies ('' without
-- a job).
-- Returns per task: its id, and 1 if its unique key named an existing task (0 if new).
--
-- Cost: one HSET per new task; ids, the task index, the ready sets and the job task
-- indexes are written once per batch (the script is atomic, so reading the last id and
-- writing it back is safe).

local now = ARGV[1]
local results = {}
local last_id = tonumber(redis.call('GET', key('ids')) or '0')
local first_id = last_id
local all = {}       -- (id, id) pairs for the task index
local ready = {}     -- queue -> (score, member) pairs for its ready set
local queues = {}    -- queues that got a waiting task
local jobs = {}      -- job -> ids of its new tasks

for i = 2, #ARGV, 11 do
  local queue, kind, payload, priority, state, run_at, max_attempts, timeout, unique, job,
    ids = unpack(ARGV, i, i + 10)
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
    last_id = last_id + 1
    local id = fmt_int(last_id)
    local tk = task_key(id)
    if timeout == '' and not unique and job == '-' then
      redis.call('HSET', tk, 'id', id, 'queue', queue, 'kind', kind, 'payload', payload,
        'priority', priority, 'state', state, 'run_at', run_at, 'attempt', '0',
        'max_attempts', max_attempts, 'created_at', now)
    else
      local fields = {'id', id, 'queue', queue, 'kind', kind, 'payload', payload,
        'priority', priority, 'state', state, 'run_at', run_at, 'attempt', '0',
        'max_attempts', max_attempts, 'created_at', now}
      if timeout ~= '' then
        fields[#fields + 1] = 'timeout'
        fields[#fields + 1] = timeout
      end
      if unique then
        fields[#fields + 1] = 'unique_key'
        fields[#fields + 1] = unique
        -- Set now, so that a repeat of the key later in this batch finds it.
        redis.call('SET', unique_key(unique), id)
      end
      if job ~= '-' then
        job = string.sub(job, 2)
        fields[#fields + 1] = 'job'
        fields[#fields + 1] = job
        fields[#fields + 1] = 'ids'
        fields[#fields + 1] = ids
        count_job(job, state, nil, ids, 1)
        local of_job = jobs[job]
        if not of_job then
          of_job = {}
          jobs[job] = of_job
        end
        of_job[#of_job + 1] = id
      end
      redis.call('HSET', tk, unpack(fields))
    end
    all[#all + 1] = id
    all[#all + 1] = id
    if tonumber(run_at) <= tonumber(now) then
      local pairs_of_queue = ready[queue]
      if not pairs_of_queue then
        pairs_of_queue = {}
        ready[queue] = pairs_of_queue
      end
      pairs_of_queue[#pairs_of_queue + 1] = -tonumber(priority)
      pairs_of_queue[#pairs_of_queue + 1] = ready_member(run_at, id)
    else
      redis.call('ZADD', scheduled_key(queue), run_at, id)
    end
    queues[queue] = true
    count(queue, state, 1)
    results[#results + 1] = {id, 0}
  end
end

if last_id > first_id then
  redis.call('SET', key('ids'), fmt_int(last_id))
  zadd_many(key('tasks'), all)
  for queue, flat in pairs(ready) do
    zadd_many(ready_key(queue), flat)
  end
  for queue in pairs(queues) do
    redis.call('SADD', key('queues'), queue)
  end
  for job, ids_of_job in pairs(jobs) do
    sadd_many(job_tasks_key(job), ids_of_job)
  end
  save_changes()
  publish('tasks')
end
return results
