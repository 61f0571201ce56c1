-- Shared helpers, prepended to every script (see scripts.rs): key names, the indexes a
-- task moves between, and its attempt history.
--
-- KEYS[1] is the store's base name `{prefix}`. Every key starts with it, so all of one
-- store's keys share a hash slot and a script never touches two slots.
--
-- Numbers that must stay exact (ids, epoch milliseconds) arrive as strings and are
-- written back as strings or through `fmt_int`: Redis turns Lua numbers into strings
-- with 14 significant digits.

local base = KEYS[1]

local function key(name)
  return base .. ':' .. name
end

local function task_key(id)
  return base .. ':task:' .. id
end

local function ready_key(queue)
  return base .. ':queue:' .. queue .. ':ready'
end

local function scheduled_key(queue)
  return base .. ':queue:' .. queue .. ':scheduled'
end

local function unique_key(name)
  return base .. ':unique:' .. name
end

-- A job's record (hash), and the ids of its tasks (set), for job tallies.
local function job_key(name)
  return base .. ':job:' .. name
end

local function job_tasks_key(name)
  return base .. ':job-tasks:' .. name
end

-- Range jobs of `queue` that may still make blocks: scored by -priority, members are the
-- zero-padded created_at then the name, so ZRANGE gives the order claims take jobs in
-- (priority desc, created_at asc, name asc), as the ready sets do for tasks.
local function open_jobs_key(queue)
  return base .. ':queue:' .. queue .. ':open-jobs'
end

local function open_member(created_at, name)
  return string.format('%015d:', math.max(tonumber(created_at), 0)) .. name
end

-- Takes a job out of its queue's open jobs (cancelled, or its cursor reached its end),
-- and the queue out of `job-queues` once it has no open job left.
local function close_job(queue, member)
  redis.call('ZREM', open_jobs_key(queue), member)
  if redis.call('ZCARD', open_jobs_key(queue)) == 0 then
    redis.call('SREM', key('job-queues'), queue)
  end
end

-- Marks job `name` cancelled and takes it out of its queue's open jobs, so claims make no
-- more of its blocks; false for an unknown job.
local function cancel_job_record(name)
  local f = redis.call('HMGET', job_key(name), 'queue', 'created_at')
  if not f[1] then
    return false
  end
  redis.call('HSET', job_key(name), 'cancelled', '1')
  close_job(f[1], open_member(f[2], name))
  return true
end

local function fmt_int(n)
  return string.format('%d', n)
end

-- Wakes the listeners of `topic` (tasks, outcomes or commands) in every process; being
-- part of the script, the message goes out exactly when the change is made.
local function publish(topic)
  redis.call('PUBLISH', base .. ':wake:' .. topic, '1')
end

-- The ready set is scored by -priority; within one score Redis orders members
-- lexicographically, so a member of zero-padded run_at then id makes ZRANGE order the
-- claim order (priority desc, run_at asc, id asc) with no float precision involved.
local function ready_member(run_at, id)
  return string.format('%015d:%016d', math.max(tonumber(run_at), 0), tonumber(id))
end

local function member_id(member)
  return fmt_int(tonumber(string.sub(member, 17)))
end

-- The task fields the state machine reads, or nil for an unknown (or expired) task.
local FIELDS = {'queue', 'priority', 'state', 'run_at', 'attempt', 'max_attempts',
  'worker', 'started_at', 'unique_key', 'job', 'ids'}

local function load_task(id)
  local values = redis.call('HMGET', task_key(id), unpack(FIELDS))
  if not values[3] then
    return nil
  end
  local task = {}
  for i, field in ipairs(FIELDS) do
    task[field] = values[i]
  end
  return task
end

-- Puts a waiting task in its queue's ready set when due at `now`, else in the scheduled
-- set (scored by run_at) from which claims promote it once due.
local function add_waiting(id, task, run_at, now)
  if tonumber(run_at) <= tonumber(now) then
    redis.call('ZADD', ready_key(task.queue), -tonumber(task.priority), ready_member(run_at, id))
  else
    redis.call('ZADD', scheduled_key(task.queue), run_at, id)
  end
  redis.call('SADD', key('queues'), task.queue)
end

-- Takes a task out of the waiting and running indexes (its record stays).
local function unlist(id, task)
  redis.call('ZREM', ready_key(task.queue), ready_member(task.run_at, id))
  redis.call('ZREM', scheduled_key(task.queue), id)
  redis.call('ZREM', key('running'), id)
end

-- Per-queue numbers, kept by every move of a task so that queue_stats reads them instead of
-- walking the tasks: `B:queue:Q:counts` (hash: state -> tasks, no field at 0) and
-- `B:queue:Q:recent` (hash: 'c:S' / 'f:S' -> attempts completed / failed in second S, i.e.
-- finished_at in (S-1, S] seconds). `B:stats-queues` lists the queues that have counts.
-- A script adds its changes with `count`, `move_count` and `count_recent`, then writes
-- them once with `save_changes` (one HINCRBY per queue and state, not one per task).
local function counts_key(queue)
  return base .. ':queue:' .. queue .. ':counts'
end

local function recent_key(queue)
  return base .. ':queue:' .. queue .. ':recent'
end

-- The second whose bucket holds an attempt that ended at `at` ms.
local function recent_second(at)
  return math.floor((tonumber(at) + 999) / 1000)
end

local count_changes = {}   -- queue -> state -> change
local recent_changes = {}  -- queue -> bucket field -> attempts

-- Per-job numbers, kept by every move of a job's task (deleting one leaves them, so a
-- pruned block stays counted as it ended): `B:job-counts:NAME` (hash: 'n:GROUP' -> tasks,
-- 'l:GROUP' and 'h:GROUP' -> the ids they stand for, below and above 10^9, where GROUP is
-- the state, then ':' and the worker if any; a group at 0 has no fields) and
-- `B:job-recent:NAME` (hash: 'l:S' and 'h:S' -> ids completed in second S). Splitting ids
-- keeps every HINCRBY far inside i64 whatever the payloads, and a batch's sums exact in Lua
-- numbers. They go with the job's record (delete_job.lua).
local function job_counts_key(name)
  return base .. ':job-counts:' .. name
end

local function job_recent_key(name)
  return base .. ':job-recent:' .. name
end

local job_changes = {}  -- job -> field -> change
local job_recent_changes = {}  -- job -> field -> ids

-- The ids of a task of a job (decimal text, its `ids` field; 1 when missing) as (high,
-- low) parts: ids = high * 10^9 + low.
local function split_ids(text)
  text = text or '1'
  if #text > 9 then
    return tonumber(string.sub(text, 1, -10)), tonumber(string.sub(text, -9))
  end
  return 0, tonumber(text)
end

local function add_change(changes, of, field, n)
  local fields = changes[of]
  if not fields then
    fields = {}
    changes[of] = fields
  end
  fields[field] = (fields[field] or 0) + n
end

-- Adds (sign 1) or takes (sign -1) a task of `job` standing for `ids` to or from its
-- group (`state`, `worker` or nil).
local function count_job(job, state, worker, ids, sign)
  local group = worker and (state .. ':' .. worker) or state
  local high, low = split_ids(ids)
  add_change(job_changes, job, 'n:' .. group, sign)
  add_change(job_changes, job, 'l:' .. group, sign * low)
  if high > 0 then
    add_change(job_changes, job, 'h:' .. group, sign * high)
  end
end

-- `task` (as load_task reads it: job, ids, state, worker), if it is a job's, moves to
-- state `to` under worker `to_worker` (nil: none); completing, at `now`.
local function move_job_count(task, to, to_worker, now)
  if not task.job then
    return
  end
  count_job(task.job, task.state, task.worker, task.ids, -1)
  count_job(task.job, to, to_worker, task.ids, 1)
  if to == 'completed' then
    local high, low = split_ids(task.ids)
    local second = fmt_int(recent_second(now))
    add_change(job_recent_changes, task.job, 'l:' .. second, low)
    if high > 0 then
      add_change(job_recent_changes, task.job, 'h:' .. second, high)
    end
  end
end

-- Adds `fields` ('X:S' -> n, S a second) to the per-second hash `rk`. Buckets older than
-- a minute are dropped once the hash holds more than `cap` fields (every minute or so of
-- buckets, one HKEYS of at most a few hundred fields); it grows only when a bucket is
-- created, about once a second.
local function save_recent(rk, fields, cap)
  local newest, created = 0, false
  for field, n in pairs(fields) do
    if redis.call('HINCRBY', rk, field, n) == n then
      created = true
    end
    newest = math.max(newest, tonumber(string.sub(field, 3)))
  end
  if created and redis.call('HLEN', rk) > cap then
    local stale = {}
    for _, field in ipairs(redis.call('HKEYS', rk)) do
      if tonumber(string.sub(field, 3)) <= newest - 60 then
        stale[#stale + 1] = field
      end
    end
    if #stale > 0 then
      redis.call('HDEL', rk, unpack(stale))
    end
  end
end

local function save_job_counts()
  for job, fields in pairs(job_changes) do
    local ck = job_counts_key(job)
    local emptied = {}
    for field, change in pairs(fields) do
      if change ~= 0 and redis.call('HINCRBY', ck, field, change) == 0
          and string.sub(field, 1, 2) == 'n:' then
        emptied[#emptied + 1] = string.sub(field, 3)
      end
    end
    for _, group in ipairs(emptied) do
      redis.call('HDEL', ck, 'n:' .. group, 'l:' .. group, 'h:' .. group)
    end
  end
  for job, fields in pairs(job_recent_changes) do
    -- Two fields (low and high ids) per second.
    save_recent(job_recent_key(job), fields, 360)
  end
  job_changes, job_recent_changes = {}, {}
end

local function count(queue, state, change)
  add_change(count_changes, queue, state, change)
end

local function move_count(queue, from, to)
  count(queue, from, -1)
  count(queue, to, 1)
end

-- An attempt of a `queue` task ended at `at`: 'c' completed, 'f' failed.
local function count_recent(queue, outcome, at)
  add_change(recent_changes, queue, outcome .. ':' .. fmt_int(recent_second(at)), 1)
end

local function save_counts()
  for queue, states in pairs(count_changes) do
    local ck = counts_key(queue)
    local created = false
    for state, change in pairs(states) do
      if change ~= 0 then
        local count_now = redis.call('HINCRBY', ck, state, change)
        if count_now == 0 then
          redis.call('HDEL', ck, state)
        elseif count_now == change then
          created = true
        end
      end
    end
    -- queue_stats drops a queue from the list only once its hash is empty, so it can be
    -- missing only when this batch created a field.
    if created then
      redis.call('SADD', key('stats-queues'), queue)
    end
  end
  for queue, fields in pairs(recent_changes) do
    -- Completed and failed fields per second.
    save_recent(recent_key(queue), fields, 180)
  end
  count_changes, recent_changes = {}, {}
  save_job_counts()
end

-- `B:finished` holds final tasks scored by finished_at; a member is 'ID:S:QUEUE' with S
-- the state's letter, so that removing the entry of a record that expired (which Redis
-- deletes without telling anyone) can still take it off its queue's counts.
local FINAL_LETTER = {completed = 'c', dead = 'd', cancelled = 'x'}
local FINAL_STATE = {c = 'completed', d = 'dead', x = 'cancelled'}

local function finished_member(id, state, queue)
  return id .. ':' .. FINAL_LETTER[state] .. ':' .. queue
end

-- id, state and queue of a `B:finished` member; a bare id (a member written before layout
-- 2 by a worker not yet upgraded) gives only the id.
local function parse_finished(member)
  local id, letter, queue = string.match(member, '^(%d+):(%a):(.*)$')
  if not id then
    return member
  end
  return id, FINAL_STATE[letter], queue
end

-- Removes a final task from every index and its count (its record is gone or going).
local function unindex_finished(member, id, state, queue)
  redis.call('ZREM', key('finished'), member)
  redis.call('ZREM', key('tasks'), id)
  redis.call('ZREM', key('dead'), id)
  if queue then
    count(queue, state, -1)
  end
end

-- Drops the index entries of finished tasks whose records expired (the result TTL),
-- oldest first and at most `budget` (default 8) per call, so the indexes and the per-queue
-- counts do not keep what is gone. Stops at the first record that still exists.
local function sweep_expired(budget)
  budget = budget or 8
  while budget > 0 do
    local oldest = redis.call('ZRANGE', key('finished'), 0, math.min(budget, 32) - 1)
    if #oldest == 0 then
      return
    end
    for _, member in ipairs(oldest) do
      local id, state, queue = parse_finished(member)
      if redis.call('EXISTS', task_key(id)) == 1 then
        return
      end
      unindex_finished(member, id, state, queue)
    end
    budget = budget - #oldest
  end
end

-- ZADD of many (score, member) pairs in `flat` (score, member, score, ...), a few calls instead of
-- one per member; chunked because unpack is limited to a few thousand values.
local function zadd_many(zset, flat)
  for i = 1, #flat, 1000 do
    redis.call('ZADD', zset, unpack(flat, i, math.min(i + 999, #flat)))
  end
end

-- SADD of many members, chunked like zadd_many.
local function sadd_many(set, members)
  for i = 1, #members, 1000 do
    redis.call('SADD', set, unpack(members, i, math.min(i + 999, #members)))
  end
end

-- ZREM of many members, chunked like zadd_many.
local function zrem_many(zset, members)
  for i = 1, #members, 1000 do
    redis.call('ZREM', zset, unpack(members, i, math.min(i + 999, #members)))
  end
end

-- A log ring (see wrangle_core::log) of `owner` (`worker:NAME` or `task:ID`): its lines, a
-- list of "seq TAB at TAB source TAB text", and the seq of the last line ever appended.
local function log_key(owner)
  return base .. ':log:' .. owner
end

local function log_seq_key(owner)
  return base .. ':log-seq:' .. owner
end

local function drop_log(owner)
  redis.call('DEL', log_key(owner), log_seq_key(owner))
end

-- Lets a final task (and its unique key, if any, which must name it exactly as long as it
-- exists, and its log ring) expire after `ttl` ms (0: never).
local function expire_final(id, unique, ttl)
  if tonumber(ttl) > 0 then
    redis.call('PEXPIRE', task_key(id), ttl)
    redis.call('PEXPIRE', log_key('task:' .. id), ttl)
    redis.call('PEXPIRE', log_seq_key('task:' .. id), ttl)
    if unique then
      redis.call('PEXPIRE', unique_key(unique), ttl)
    end
  end
end

-- (finished_at, member) pairs for `B:finished`, written by save_changes.
local finished_changes = {}

-- A task of `queue` (holding unique key `unique`, or nil) reached final `state` at `now`:
-- let it expire, and index it for pruning when the script saves its changes.
local function finish(id, state, queue, unique, now, ttl)
  finished_changes[#finished_changes + 1] = now
  finished_changes[#finished_changes + 1] = finished_member(id, state, queue)
  expire_final(id, unique, ttl)
end

-- Writes what the script gathered, once per batch: the finished tasks' index entries
-- (then a sweep of expired ones, a few per finished task), and the per-queue counts.
-- Every script that moves a task ends with it.
local function save_changes()
  local finished = #finished_changes / 2
  if finished > 0 then
    zadd_many(key('finished'), finished_changes)
    finished_changes = {}
    sweep_expired(math.min(math.max(8, 4 * finished), 1000))
  end
  save_counts()
end

-- The reverse of `finish`, for an operator's retry of a dead or cancelled task.
local function unfinish(id, task)
  if FINAL_LETTER[task.state] then
    -- Also the bare id an older layout's worker may have written.
    redis.call('ZREM', key('finished'), finished_member(id, task.state, task.queue), id)
  end
  redis.call('ZREM', key('dead'), id)
  redis.call('PERSIST', task_key(id))
  if task.unique_key then
    redis.call('PERSIST', unique_key(task.unique_key))
  end
end

-- The record of the attempt `task` is running, ended at `now` with `outcome`.
local function attempt_record(task, now, outcome)
  return {
    attempt = tonumber(task.attempt),
    worker = task.worker or nil,
    started_at = tonumber(task.started_at or nil),
    finished_at = tonumber(now),
    outcome = outcome,
  }
end

-- Appends `record` to the task's history (a JSON array kept as text; no field until the
-- first record).
local function push_attempt(id, record)
  local history = redis.call('HGET', task_key(id), 'attempts')
  local entry = cjson.encode(record)
  if not history or history == '[]' then
    history = '[' .. entry .. ']'
  else
    history = string.sub(history, 1, -2) .. ',' .. entry .. ']'
  end
  redis.call('HSET', task_key(id), 'attempts', history)
end

-- An operator's cancel of a task that is not final (its state is checked by the caller).
-- A running task's worker learns it at its next heartbeat.
local function cancel(id, task, now, ttl)
  unlist(id, task)
  local tk = task_key(id)
  if task.state == 'running' then
    push_attempt(id, attempt_record(task, now, 'cancelled'))
  end
  redis.call('HSET', tk, 'state', 'cancelled', 'finished_at', now)
  redis.call('HDEL', tk, 'lease_until')
  move_count(task.queue, task.state, 'cancelled')
  move_job_count(task, 'cancelled', task.worker, now)
  finish(id, 'cancelled', task.queue, task.unique_key, now, ttl)
end

-- Whether an operator may cancel / retry a task in `state`.
local CANCELLABLE = {scheduled = true, available = true, retryable = true, running = true}
local RETRYABLE = {scheduled = true, retryable = true, dead = true, cancelled = true}

-- An operator's "run it again now": available at `now`, with one more attempt when it
-- has none left.
local function revive(id, task, now)
  unlist(id, task)
  unfinish(id, task)
  local tk = task_key(id)
  if tonumber(task.attempt) >= tonumber(task.max_attempts) then
    redis.call('HSET', tk, 'max_attempts', fmt_int(tonumber(task.attempt) + 1))
  end
  redis.call('HSET', tk, 'state', 'available', 'run_at', now)
  redis.call('HDEL', tk, 'lease_until')
  move_count(task.queue, task.state, 'available')
  move_job_count(task, 'available', task.worker, now)
  add_waiting(id, task, now, now)
end

