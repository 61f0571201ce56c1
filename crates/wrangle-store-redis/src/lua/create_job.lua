-- Creates a job's record, unless a job of that name exists.
-- ARGV: name, kind, queue, task_kind, priority, max_attempts, timeout ('' for none),
-- start, end, block, cursor, created_at, and '1' if claims may make blocks of it (a range
-- job with ids left) else '0'.
-- Returns 'ok', or 'exists'.
--
-- A job that may make blocks joins its queue's open jobs, and idle workers are woken:
-- its blocks are claimable although no task was enqueued.

local name, kind, queue, task_kind, priority, max_attempts, timeout, start_id, end_id, block,
  cursor, created_at, open = unpack(ARGV, 1, 13)
local jk = job_key(name)
if redis.call('EXISTS', jk) == 1 then
  return 'exists'
end
local fields = {'name', name, 'kind', kind, 'queue', queue, 'task_kind', task_kind,
  'priority', priority, 'max_attempts', max_attempts, 'start', start_id, 'end', end_id,
  'block', block, 'cursor', cursor, 'cancelled', '0', 'created_at', created_at}
if timeout ~= '' then
  fields[#fields + 1] = 'timeout'
  fields[#fields + 1] = timeout
end
redis.call('HSET', jk, unpack(fields))
redis.call('ZADD', key('jobs'), 0, name)
if open == '1' then
  redis.call('ZADD', open_jobs_key(queue), -tonumber(priority), open_member(created_at, name))
  redis.call('SADD', key('job-queues'), queue)
  publish('tasks')
end
return 'ok'
