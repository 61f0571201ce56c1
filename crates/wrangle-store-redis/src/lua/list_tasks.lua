-- Tasks matching a filter, newest first, walking the id index from `upper` down.
-- ARGV: upper bound ('+inf' or '(' and an id), limit, then state, queue and job
-- ('' for no filter on that field).
-- Returns each task's fields (a flat HGETALL list).

local upper, limit, state, queue, job = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local filtered = state ~= '' or queue ~= '' or job ~= ''
local found = {}

while #found < limit do
  local want = limit - #found
  if filtered then
    want = math.max(want, 256)
  end
  local ids = redis.call('ZREVRANGEBYSCORE', key('tasks'), upper, '-inf', 'LIMIT', 0, want)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local tk = task_key(id)
    local fields = redis.call('HMGET', tk, 'state', 'queue', 'job')
    if not fields[1] then
      -- Expired (result TTL): drop the stale index entry.
      redis.call('ZREM', key('tasks'), id)
    elseif (state == '' or fields[1] == state) and (queue == '' or fields[2] == queue)
        and (job == '' or fields[3] == job) and #found < limit then
      found[#found + 1] = redis.call('HGETALL', tk)
    end
  end
  upper = '(' .. ids[#ids]
end
return found
