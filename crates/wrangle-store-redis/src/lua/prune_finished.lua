-- Deletes up to `limit` tasks in final state `state` that finished before `before`,
-- oldest first, with their unique keys and log rings (a job's counters keep its tasks).
-- Walks `B:finished` in finished_at order from where the last walk for this state stopped
-- (`B:prune-from:STATE` names the last entry it kept: every entry before it is of another
-- state, and stays so, since a finished task leaves the index when it is retried), looking
-- at no more than SCAN_BUDGET entries per call. So a call stays short, and the tasks to
-- prune are reached however many entries of other states come first (dead tasks kept for
-- 30 days). If that entry is gone (expired, or its job deleted), the walk starts over from
-- the oldest.
-- ARGV: before, limit, state. Returns how many were deleted (already expired ones not
-- counted).

local SCAN_BUDGET = 10000
local before, limit, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local from_key = key('prune-from:' .. wanted)
local mark = redis.call('GET', from_key)
local start = mark and redis.call('ZRANK', key('finished'), mark)
start = start and start + 1 or 0
-- Entries kept since `start` (pruned and unindexed ones leave the index, so the next page
-- begins after the kept ones), and the last of them.
local pruned, kept, scanned, last_kept = 0, 0, 0, nil
local done = false
while not done and pruned < limit and scanned < SCAN_BUDGET do
  local first = start + kept
  local count = math.min(limit - pruned, SCAN_BUDGET - scanned)
  local members = redis.call('ZRANGE', key('finished'), first, first + count - 1, 'WITHSCORES')
  if #members == 0 then
    break
  end
  for i = 1, #members, 2 do
    local member = members[i]
    if tonumber(members[i + 1]) >= before then
      done = true
      break
    end
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
    elseif f[1] ~= wanted then
      -- Another state: kept, and skipped by this walk and the next.
      kept = kept + 1
      last_kept = member
    else
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
      unindex_finished(member, id, state, queue)
    end
  end
end
if last_kept then
  redis.call('SET', from_key, last_kept)
end
save_changes()
return pruned
