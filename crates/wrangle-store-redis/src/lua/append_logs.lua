-- Appends lines to log rings, keeping each owner's newest `keep`, and wakes followers. A
-- task's ring expires with its task: it takes the task's remaining time to live, if the
-- task has one (the ring of a task that finished before its lines arrived).
-- ARGV: keep, then for each owner: its key (`task:ID` or `worker:NAME`), the task id (or
-- ''), its line count n, then n times: at (epoch ms), source, text. Each owner's lines are
-- already cut to `keep`.

local keep = tonumber(ARGV[1])
local i = 2
while i <= #ARGV do
  local owner, task, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local last = redis.call('INCRBY', log_seq_key(owner), n)
  local lines = {}
  for seq = last - n + 1, last do
    lines[#lines + 1] = fmt_int(seq) .. '\t' .. ARGV[i] .. '\t' .. ARGV[i + 1] .. '\t' .. ARGV[i + 2]
    i = i + 3
  end
  -- RPUSH in slices: Lua's unpack is limited to a few thousand values.
  for from = 1, #lines, 1000 do
    redis.call('RPUSH', log_key(owner), unpack(lines, from, math.min(from + 999, #lines)))
  end
  redis.call('LTRIM', log_key(owner), -keep, -1)
  if task ~= '' then
    local ttl = redis.call('PTTL', task_key(task))
    if ttl > 0 then
      redis.call('PEXPIRE', log_key(owner), ttl)
      redis.call('PEXPIRE', log_seq_key(owner), ttl)
    end
  end
end
publish('logs')
return 0
