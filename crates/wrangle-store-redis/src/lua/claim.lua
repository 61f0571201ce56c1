-- Claims up to `limit` due tasks from unpaused queues in claim order: each becomes
-- running under `worker`, its attempt goes up by one and it is leased until lease_until.
-- ARGV: now, worker, lease_until, limit, then 'all' (every queue) or 'only' and the
-- queue names.
-- Returns per claimed task, in claim order: id, queue, kind, payload, attempt,
-- max_attempts, timeout (nil for none), job (nil for none).
--
-- Cost: two calls per task (HMGET, HSET) and a few per batch: the claimed members are a
-- prefix of each queue's ready set, removed with one ZREMRANGEBYRANK, and the running
-- index gets one ZADD for the whole batch.

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
    'timeout', 'job')
  -- A member whose record is gone (it cannot be claimed) is only dropped from the set.
  if fields[1] then
    local attempt = tonumber(fields[1]) + 1
    redis.call('HSET', tk, 'state', 'running', 'attempt', fmt_int(attempt), 'worker', worker,
      'lease_until', lease_until, 'started_at', now)
    running[#running + 1] = lease_until
    running[#running + 1] = id
    claimed[#claimed + 1] = {id, candidate.queue, fields[2], fields[3], attempt, fields[4],
      fields[5], fields[6]}
  end
end
for queue, count in pairs(taken) do
  redis.call('ZREMRANGEBYRANK', ready_key(queue), 0, count - 1)
end
zadd_many(key('running'), running)
return claimed
