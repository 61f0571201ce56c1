-- Deletes up to `limit` completed, dead or cancelled tasks that finished before `before`,
-- with their unique keys and their entries in their job's task index.
-- ARGV: before, limit. Returns how many were deleted (already expired ones not counted).

local before, limit = ARGV[1], tonumber(ARGV[2])
local pruned = 0
while pruned < limit do
  local members = redis.call('ZRANGEBYSCORE', key('finished'), '-inf', '(' .. before,
    'LIMIT', 0, limit - pruned)
  if #members == 0 then
    break
  end
  for _, member in ipairs(members) do
    local id, state, queue = parse_finished(member)
    local tk = task_key(id)
    if redis.call('EXISTS', tk) == 1 then
      local f = redis.call('HMGET', tk, 'unique_key', 'job')
      local unique = f[1]
      if unique and redis.call('GET', unique_key(unique)) == id then
        redis.call('DEL', unique_key(unique))
      end
      if f[2] then
        redis.call('SREM', job_tasks_key(f[2]), id)
      end
      redis.call('DEL', tk)
      pruned = pruned + 1
    end
    unindex_finished(member, id, state, queue)
  end
end
save_counts()
return pruned
