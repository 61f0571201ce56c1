-- Brings a store's keys to the current layout, once (every connect runs it; it is one GET
-- when there is nothing to do). `B:layout` holds the version; a store without it is
-- either new (no `B:ids`) or written by a version before the layout was numbered (1).
-- Version 2 added the per-queue counts and `B:finished` members that name their state
-- and queue (see save_counts): building them walks every task once, blocking the server
-- meanwhile (about a second per million tasks), and needs every worker upgraded at once.
-- Version 3 added the per-job counts (the same goes).
-- ARGV: LOST_AFTER_LEASES (see prune_workers.lua), the layout this code writes (LAYOUT
-- in lib.rs). Returns the version the store was at.

local found = tonumber(redis.call('GET', key('layout')) or nil)
if found and found >= tonumber(ARGV[2]) then
  return found
end
local version = found or 0
if not found and redis.call('EXISTS', key('ids')) == 1 then
  version = 1
  -- Counts are rebuilt from scratch (an operator may rerun this by deleting B:layout).
  for _, queue in ipairs(redis.call('SMEMBERS', key('stats-queues'))) do
    redis.call('DEL', counts_key(queue))
  end
  redis.call('DEL', key('stats-queues'))
  for _, id in ipairs(redis.call('ZRANGE', key('tasks'), 0, -1)) do
    local f = redis.call('HMGET', task_key(id), 'queue', 'state')
    if f[1] then
      count(f[1], f[2], 1)
    end
  end
  local old = redis.call('ZRANGE', key('finished'), 0, -1, 'WITHSCORES')
  -- Every member is written again as its record says now (bare ids get their state and
  -- queue; a member of a task no longer final is dropped), or dropped with the task's
  -- other index entries when the record is gone (the counts above did not count it).
  for i = 1, #old, 2 do
    local id = parse_finished(old[i])
    redis.call('ZREM', key('finished'), old[i])
    local f = redis.call('HMGET', task_key(id), 'queue', 'state')
    if not f[1] then
      redis.call('ZREM', key('tasks'), id)
      redis.call('ZREM', key('dead'), id)
    elseif FINAL_LETTER[f[2]] then
      redis.call('ZADD', key('finished'), old[i + 1], finished_member(id, f[2], f[1]))
    end
  end
  save_changes()
end
-- Version 3 counts each job's tasks (see count_job in common.lua), walking each job's
-- task index once. A job that has counters keeps them (a rerun by hand must not forget
-- the tasks pruning deleted since).
if version >= 1 then
  for _, name in ipairs(redis.call('ZRANGE', key('jobs'), 0, -1)) do
    if redis.call('EXISTS', job_counts_key(name)) == 0 then
      for _, id in ipairs(redis.call('SMEMBERS', job_tasks_key(name))) do
        local f = redis.call('HMGET', task_key(id), 'state', 'worker', 'ids')
        if f[1] then
          count_job(name, f[1], f[2] or nil, f[3] or nil, 1)
        end
      end
    end
  end
  save_changes()
end
if found then
  redis.call('SET', key('layout'), ARGV[2])
  return version
end
-- Version 2 also scores workers by when they count as lost (prune_workers.lua).
local seen = redis.call('ZRANGE', key('workers:seen'), 0, -1, 'WITHSCORES')
for i = 1, #seen, 2 do
  local info = redis.call('HGET', key('workers'), seen[i])
  local lease_ms = info and tonumber(cjson.decode(info).lease_ms or 0) or 0
  if lease_ms > 0 then
    local lost_at = tonumber(seen[i + 1]) + lease_ms * tonumber(ARGV[1])
    redis.call('ZADD', key('workers:lost-at'), fmt_int(lost_at), seen[i])
  end
end
redis.call('SET', key('layout'), ARGV[2])
return version
