-- A job's tasks aggregated per (state, worker): how many, the ids they stand for, and the
-- ids of those that finished in the minute before `now`. Walks the job's task index
-- (O(tasks of the job)), dropping the entries of tasks whose records expired.
-- ARGV: name, now.
-- Returns nil for an unknown job, else per group: state, worker (nil for none), tasks,
-- ids and ids finished in the last minute (the sums as decimal text, exact: int64.lua).

local name, now = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', job_key(name)) == 0 then
  return false
end
local minute_ago = now - 60000
local ONE = i64('1')
local groups, order, gone = {}, {}, {}

for _, id in ipairs(redis.call('SMEMBERS', job_tasks_key(name))) do
  local f = redis.call('HMGET', task_key(id), 'state', 'worker', 'finished_at', 'ids')
  if not f[1] then
    gone[#gone + 1] = id
  else
    local worker = f[2]
    local group_key = f[1] .. (worker and ('+' .. worker) or '-')
    local group = groups[group_key]
    if not group then
      group = {state = f[1], worker = worker, tasks = 0, ids = {0, 0}, recent = {0, 0}}
      groups[group_key] = group
      order[#order + 1] = group
    end
    -- The ids it stands for, written when it was made (a block's length, else what
    -- `ids_of_payload` gave when it was enqueued); 1 if missing.
    local ids = f[4] and i64(f[4]) or ONE
    group.tasks = group.tasks + 1
    group.ids = i64_add(group.ids, ids)
    local finished_at = tonumber(f[3] or nil)
    if finished_at and finished_at > minute_ago and finished_at <= now then
      group.recent = i64_add(group.recent, ids)
    end
  end
end
for i = 1, #gone, 1000 do
  redis.call('SREM', job_tasks_key(name), unpack(gone, i, math.min(i + 999, #gone)))
end

local rows = {}
for _, group in ipairs(order) do
  rows[#rows + 1] = {group.state, group.worker or false, group.tasks, i64_text(group.ids),
    i64_text(group.recent)}
end
return rows
