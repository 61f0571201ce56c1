-- Deletes up to `limit` completed, dead or cancelled tasks that finished before `before`,
-- with their unique keys.
-- ARGV: before, limit. Returns how many were deleted (already expired ones not counted).

local before, limit = ARGV[1], tonumber(ARGV[2])
local pruned = 0
while pruned < limit do
  local ids = redis.call('ZRANGEBYSCORE', key('finished'), '-inf', '(' .. before,
    'LIMIT', 0, limit - pruned)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local tk = task_key(id)
    if redis.call('EXISTS', tk) == 1 then
      local unique = redis.call('HGET', tk, 'unique_key')
      if unique and redis.call('GET', unique_key(unique)) == id then
        redis.call('DEL', unique_key(unique))
      end
      redis.call('DEL', tk)
      pruned = pruned + 1
    end
    redis.call('ZREM', key('finished'), id)
    redis.call('ZREM', key('tasks'), id)
    redis.call('ZREM', key('dead'), id)
  end
end
return pruned
