-- Numbers for every queue with tasks or a pause setting, read from the per-queue counts
-- that every move keeps (see save_changes): O(queues), not O(tasks). Entries of records
-- that expired are swept first (a bounded amount per call) so they leave the counts.
-- ARGV: now. Returns a JSON object: queue -> {paused, counts, oldest_due_at,
-- completed_last_minute, failed_last_minute}.

local now = tonumber(ARGV[1])
sweep_expired(10000)
save_changes()

local stats = {}
local function entry(queue)
  local e = stats[queue]
  if not e then
    e = {paused = false, counts = {}, completed_last_minute = 0, failed_last_minute = 0}
    stats[queue] = e
  end
  return e
end

-- The oldest run_at that is due at `now` among a queue's waiting tasks: the head of each
-- priority level of its ready set (members start with the zero-padded run_at), and the
-- head of its scheduled set (due tasks a claim has not promoted yet).
local function oldest_due(queue)
  local oldest
  local function consider(run_at)
    if run_at <= now and (not oldest or run_at < oldest) then
      oldest = run_at
    end
  end
  local rk = ready_key(queue)
  local head = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
  while #head > 0 do
    consider(tonumber(string.sub(head[1], 1, 15)))
    head = redis.call('ZRANGEBYSCORE', rk, '(' .. head[2], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  end
  local scheduled = redis.call('ZRANGE', scheduled_key(queue), 0, 0, 'WITHSCORES')
  if #scheduled > 0 then
    consider(tonumber(scheduled[2]))
  end
  return oldest
end

-- Attempts completed ('c') and failed ('f') in the minute before now, from the per-second
-- buckets (exact when now falls on a whole second).
local function recent(queue, e)
  local newest = recent_second(now)
  local buckets = redis.call('HGETALL', recent_key(queue))
  for i = 1, #buckets, 2 do
    local second = tonumber(string.sub(buckets[i], 3))
    if second > newest - 60 and second <= newest then
      local n = tonumber(buckets[i + 1])
      if string.sub(buckets[i], 1, 1) == 'c' then
        e.completed_last_minute = e.completed_last_minute + n
      else
        e.failed_last_minute = e.failed_last_minute + n
      end
    end
  end
end

for _, queue in ipairs(redis.call('SMEMBERS', key('paused'))) do
  entry(queue).paused = true
end

for _, queue in ipairs(redis.call('SMEMBERS', key('stats-queues'))) do
  local counts = redis.call('HGETALL', counts_key(queue))
  if #counts == 0 then
    -- No task left: the queue is listed again once one comes.
    redis.call('SREM', key('stats-queues'), queue)
  else
    local e = entry(queue)
    for i = 1, #counts, 2 do
      -- Below zero only if moves went uncounted (a worker of an older layout still
      -- running): shown as none rather than failing every reader.
      local n = tonumber(counts[i + 1])
      if n > 0 then
        e.counts[counts[i]] = n
      end
    end
    e.oldest_due_at = oldest_due(queue)
    recent(queue, e)
  end
end
return cjson.encode(stats)
