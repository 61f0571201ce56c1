-- Numbers for every queue with tasks or a pause setting, computed in one pass over the
-- tasks (an operator's call: it costs O(tasks)).
-- ARGV: now. Returns a JSON object: queue -> {paused, counts, oldest_due_at,
-- completed_last_minute, failed_last_minute}.

local now = tonumber(ARGV[1])
local minute_ago = now - 60000
local stats = {}

local function entry(queue)
  local e = stats[queue]
  if not e then
    e = {paused = false, counts = {}, completed_last_minute = 0, failed_last_minute = 0}
    stats[queue] = e
  end
  return e
end

for _, queue in ipairs(redis.call('SMEMBERS', key('paused'))) do
  entry(queue).paused = true
end

for _, id in ipairs(redis.call('ZRANGE', key('tasks'), 0, -1)) do
  local f = redis.call('HMGET', task_key(id), 'queue', 'state', 'run_at', 'finished_at')
  if f[1] then
    local e = entry(f[1])
    local state = f[2]
    e.counts[state] = (e.counts[state] or 0) + 1
    local run_at = tonumber(f[3])
    local waiting = state == 'scheduled' or state == 'available' or state == 'retryable'
    if waiting and run_at <= now and (not e.oldest_due_at or run_at < e.oldest_due_at) then
      e.oldest_due_at = run_at
    end
    local finished_at = tonumber(f[4] or nil)
    if finished_at and finished_at > minute_ago and finished_at <= now then
      if state == 'completed' then
        e.completed_last_minute = e.completed_last_minute + 1
      elseif state == 'retryable' or state == 'dead' then
        e.failed_last_minute = e.failed_last_minute + 1
      end
    end
  end
end
return cjson.encode(stats)
