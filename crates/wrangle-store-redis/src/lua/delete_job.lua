-- Deletes up to `limit` tasks of a job (any state) with their unique keys, log rings,
-- index entries and queue counts (the job's counters keep them), after stopping claims
-- making its blocks; once none is left, the job's record goes too, with its counters. A running task's worker finds its completion stale.
-- ARGV: name, limit. Returns {tasks deleted, 1 when the job is gone}, or false for an
-- unknown job.

local name, limit = ARGV[1], tonumber(ARGV[2])
if not cancel_job_record(name) then
  return false
end
local ids = redis.call('SPOP', job_tasks_key(name), limit)
local deleted = 0
for _, id in ipairs(ids) do
  local task = load_task(id)
  if task then
    if FINAL_LETTER[task.state] then
      -- Also the bare id an older layout's worker may have written.
      unindex_finished(finished_member(id, task.state, task.queue), id, task.state, task.queue)
      redis.call('ZREM', key('finished'), id)
    else
      unlist(id, task)
      count(task.queue, task.state, -1)
      redis.call('ZREM', key('tasks'), id)
    end
    if task.unique_key and redis.call('GET', unique_key(task.unique_key)) == id then
      redis.call('DEL', unique_key(task.unique_key))
    end
    redis.call('DEL', task_key(id))
    drop_log('task:' .. id)
    deleted = deleted + 1
  end
end
local done = 0
if #ids < limit then
  redis.call('DEL', job_key(name), job_tasks_key(name), job_counts_key(name),
    job_recent_key(name))
  redis.call('ZREM', key('jobs'), name)
  done = 1
end
save_changes()
publish('outcomes')
return {deleted, done}
