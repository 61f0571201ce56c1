-- Deletes up to `limit` completed, dead or cancelled tasks that finished before `before`,
-- with their unique keys, their log rings and their entries in their job's task index.
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
    local f = redis.call('HMGET', tk, 'state', 'unique_key', 'job')
    if f[1] and not FINAL_LETTER[f[1]] then
      -- A stale entry (a bare id an older worker left on a task since retried): the task
      -- lives on.
      redis.call('ZREM', key('finished'), member)
    else
      if f[1] then
        local unique = f[2]
        if unique and redis.call('GET', unique_key(unique)) == id then
          redis.call('DEL', unique_key(unique))
        end
        if f[3] then
          redis.call('SREM', job_tasks_key(f[3]), id)
        end
        redis.call('DEL', tk)
        drop_log('task:' .. id)
        pruned = pruned + 1
      end
      unindex_finished(member, id, state, queue)
    end
  end
end
save_changes()
return pruned
