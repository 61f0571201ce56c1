-- Deletes up to `limit` tasks in final state `state` that finished before `before`,
-- oldest first, with their unique keys and log rings; a job's tasks are kept (its progress
-- is counted from them). Walks `B:finished` in finished_at order, looking at no more than
-- SCAN_BUDGET entries per call, so a call stays short however many entries of other states
-- or of jobs come first (the next call goes on past the ones it pruned).
-- ARGV: before, limit, state. Returns how many were deleted (already expired ones not
-- counted).

local SCAN_BUDGET = 10000
local before, limit, wanted = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local pruned, offset, scanned = 0, 0, 0
while pruned < limit and scanned < SCAN_BUDGET do
  local members = redis.call('ZRANGEBYSCORE', key('finished'), '-inf', '(' .. before,
    'LIMIT', offset, math.min(limit - pruned, SCAN_BUDGET - scanned))
  if #members == 0 then
    break
  end
  for _, member in ipairs(members) do
    scanned = scanned + 1
    local id, state, queue = parse_finished(member)
    local tk = task_key(id)
    local f = redis.call('HMGET', tk, 'state', 'unique_key', 'job')
    if f[1] and not FINAL_LETTER[f[1]] then
      -- A stale entry (a bare id an older worker left on a task since retried): the task
      -- lives on.
      redis.call('ZREM', key('finished'), member)
    elseif not f[1] then
      -- Expired (result_ttl): only its index entries are left.
      unindex_finished(member, id, state, queue)
    elseif f[1] ~= wanted or f[3] then
      -- Another state, or a job's task: kept, and skipped by this walk.
      offset = offset + 1
    else
      local unique = f[2]
      if unique and redis.call('GET', unique_key(unique)) == id then
        redis.call('DEL', unique_key(unique))
      end
      redis.call('DEL', tk)
      drop_log('task:' .. id)
      pruned = pruned + 1
      unindex_finished(member, id, state, queue)
    end
  end
end
save_changes()
return pruned
