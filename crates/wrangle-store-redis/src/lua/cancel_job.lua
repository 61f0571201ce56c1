-- Marks a job cancelled: it leaves its queue's open jobs, so claims make no more of its
-- blocks. Its tasks are left alone.
-- ARGV: name. Returns the job's fields, or nil for an unknown job.

local name = ARGV[1]
if not cancel_job_record(name) then
  return false
end
return redis.call('HGETALL', job_key(name))
