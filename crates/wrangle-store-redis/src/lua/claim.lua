-- Claims up to `limit` due tasks from unpaused queues in claim order: each becomes
-- running under `worker`, its attempt goes up by one and it is leased until lease_until.
-- When fewer are due than `limit`, the rest are new blocks of range jobs (see below).
-- ARGV: now, worker, lease_until, limit, then 'all' (every queue) or 'only' and the
-- queue names.
-- Returns per claimed task, in claim order: id, queue, kind, payload, attempt,
-- max_attempts, timeout (nil for none), job (nil for none).
--
-- Cost: two calls per task (HMGET, HSET) and a few per batch: the claimed members are a
-- prefix of each queue's ready set, removed with one ZREMRANGEBYRANK, and the running
-- index gets one ZADD for the whole batch. A claim that comes up short checks for range
-- jobs with one SMEMBERS (of an empty key when there is none); a new block costs one HSET.

local now, worker, lease_until, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local queues
if ARGV[5] == 'all' then
  queues = redis.call('SMEMBERS', key('queues'))
else
  queues = {unpack(ARGV, 6)}
end

-- Moves a queue's scheduled tasks that are due at `now` into its ready set.
local function promote_due(queue)
  local due = redis.call('ZRANGEBYSCORE', scheduled_key(queue), '-inf', now)
  for _, id in ipairs(due) do
    local fields = redis.call('HMGET', task_key(id), 'priority', 'run_at')
    if fields[1] then
      redis.call('ZADD', ready_key(queue), -tonumber(fields[1]), ready_member(fields[2], id))
    end
  end
  if #due > 0 then
    redis.call('ZREMRANGEBYSCORE', scheduled_key(queue), '-inf', now)
  end
end

-- The first `limit` of every queue are the only candidates; merge them.
local candidates = {}
local sources = 0
for _, queue in ipairs(queues) do
  if redis.call('SISMEMBER', key('paused'), queue) == 0 then
    promote_due(queue)
    local ready = redis.call('ZRANGE', ready_key(queue), 0, limit - 1, 'WITHSCORES')
    if #ready == 0 and redis.call('ZCARD', scheduled_key(queue)) == 0 then
      -- Nothing waits here: leave the registry until a task waits again.
      redis.call('SREM', key('queues'), queue)
    end
    if #ready > 0 then
      sources = sources + 1
    end
    for i = 1, #ready, 2 do
      candidates[#candidates + 1] = {queue = queue, member = ready[i], score = tonumber(ready[i + 1])}
    end
  end
end
if sources > 1 then
  -- One queue's ZRANGE is already in claim order.
  table.sort(candidates, function(a, b)
    if a.score ~= b.score then
      return a.score < b.score
    end
    return a.member < b.member
  end)
end

local claimed = {}
local taken = {}
local running = {}
for i = 1, math.min(limit, #candidates) do
  local candidate = candidates[i]
  -- What is taken from a queue is a prefix of its ready set (the merge keeps each queue's
  -- order), so counting per queue is enough to remove them.
  taken[candidate.queue] = (taken[candidate.queue] or 0) + 1
  local id = member_id(candidate.member)
  local tk = task_key(id)
  local fields = redis.call('HMGET', tk, 'attempt', 'kind', 'payload', 'max_attempts',
    'timeout', 'job', 'state', 'worker', 'ids')
  -- A member whose record is gone (it cannot be claimed) is only dropped from the set.
  if fields[1] then
    local attempt = tonumber(fields[1]) + 1
    redis.call('HSET', tk, 'state', 'running', 'attempt', fmt_int(attempt), 'worker', worker,
      'lease_until', lease_until, 'started_at', now)
    running[#running + 1] = lease_until
    running[#running + 1] = id
    move_count(candidate.queue, fields[7], 'running')
    move_job_count({job = fields[6], ids = fields[9], state = fields[7], worker = fields[8]},
      'running', worker, now)
    claimed[#claimed + 1] = {id, candidate.queue, fields[2], fields[3], attempt, fields[4],
      fields[5], fields[6]}
  end
end
for queue, count in pairs(taken) do
  redis.call('ZREMRANGEBYRANK', ready_key(queue), 0, count - 1)
end

-- Range jobs fill the rest of the limit with new blocks, created already running under
-- `worker` (attempt 1). The jobs that may still make blocks are in their queue's
-- open-jobs set, in the order claims take them; `job-queues` lists those queues. The
-- best job over the queues this claim may take from (and that are not paused) gives
-- blocks from its cursor until the limit is reached or its cursor reaches its end (it
-- then leaves the open set and the next job gives blocks). Cursor arithmetic is exact
-- (int64.lua), so ids beyond 2^53 stay exact.

-- Orders two members of different open-jobs sets with equal scores as Redis orders
-- members of one set (bytewise; Lua's `<` on strings follows the locale).
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- The best open job of `queue`: {score, member}, or nil (and the queue leaves
-- `job-queues`) when it has none.
local function job_head(queue)
  local head = redis.call('ZRANGE', open_jobs_key(queue), 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('SREM', key('job-queues'), queue)
    return nil
  end
  return {tonumber(head[2]), head[1]}
end

local function make_blocks(room, job_queues)
  local allowed
  if ARGV[5] ~= 'all' then
    allowed = {}
    for _, queue in ipairs(queues) do
      allowed[queue] = true
    end
  end
  local heads = {}
  for _, queue in ipairs(job_queues) do
    if (not allowed or allowed[queue]) and redis.call('SISMEMBER', key('paused'), queue) == 0 then
      heads[queue] = job_head(queue)
    end
  end
  local last_id   -- the id counter, read when the first block is made
  local all = {}  -- (id, id) pairs for the task index
  while room > 0 do
    local best_queue, best
    for queue, head in pairs(heads) do
      if not best or head[1] < best[1] or (head[1] == best[1] and bytes_less(head[2], best[2])) then
        best_queue, best = queue, head
      end
    end
    if not best then
      break
    end
    local member = best[2]
    local name = string.sub(member, 17)
    local jk = job_key(name)
    local f = redis.call('HMGET', jk, 'queue', 'task_kind', 'priority', 'max_attempts',
      'timeout', 'end', 'block', 'cursor', 'cancelled')
    local job_end, cursor
    if f[1] and f[9] ~= '1' then
      job_end, cursor = i64(f[6]), i64(f[8])
    end
    if job_end and i64_lt(cursor, job_end) then
      local block = i64(f[7])
      local queue, kind, priority, max_attempts, timeout = f[1], f[2], f[3], f[4], f[5]
      last_id = last_id or tonumber(redis.call('GET', key('ids')) or '0')
      local members = {}
      while room > 0 and i64_lt(cursor, job_end) do
        local block_end = i64_add(cursor, block)
        if i64_lt(job_end, block_end) then
          block_end = job_end
        end
        last_id = last_id + 1
        local id = fmt_int(last_id)
        local payload = '{"start":' .. i64_text(cursor) .. ',"end":' .. i64_text(block_end) .. '}'
        local fields = {'id', id, 'queue', queue, 'kind', kind, 'payload', payload,
          'priority', priority, 'state', 'running', 'run_at', now, 'attempt', '1',
          'max_attempts', max_attempts, 'created_at', now,
          'worker', worker, 'lease_until', lease_until, 'started_at', now,
          'job', name, 'ids', i64_text(i64_sub(block_end, cursor))}
        count_job(name, 'running', worker, fields[#fields], 1)
        if timeout then
          fields[#fields + 1] = 'timeout'
          fields[#fields + 1] = timeout
        end
        redis.call('HSET', task_key(id), unpack(fields))
        all[#all + 1] = id
        all[#all + 1] = id
        members[#members + 1] = id
        running[#running + 1] = lease_until
        running[#running + 1] = id
        count(queue, 'running', 1)
        claimed[#claimed + 1] = {id, queue, kind, payload, 1, max_attempts, timeout, name}
        cursor = block_end
        room = room - 1
      end
      redis.call('HSET', jk, 'cursor', i64_text(cursor))
      sadd_many(job_tasks_key(name), members)
      if i64_lt(cursor, job_end) then
        break
      end
    end
    -- Cancelled, gone, or every block made: the job leaves the open set (job_head takes
    -- the queue out of `job-queues` when that was its last open job).
    redis.call('ZREM', open_jobs_key(best_queue), member)
    heads[best_queue] = job_head(best_queue)
  end
  if last_id then
    redis.call('SET', key('ids'), fmt_int(last_id))
    zadd_many(key('tasks'), all)
  end
end

if #claimed < limit then
  local job_queues = redis.call('SMEMBERS', key('job-queues'))
  if #job_queues > 0 then
    make_blocks(limit - #claimed, job_queues)
  end
end

zadd_many(key('running'), running)
save_changes()
return claimed
