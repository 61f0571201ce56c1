-- Marks a job cancelled: it leaves its queue's open jobs, so claims make no more of its
-- blocks. Its tasks are left alone.
-- ARGV: name. Returns the job's fields, or nil for an unknown job.

local name = ARGV[1]
local jk = job_key(name)
local f = redis.call('HMGET', jk, 'queue', 'created_at')
if not f[1] then
  return false
end
redis.call('HSET', jk, 'cancelled', '1')
close_job(f[1], open_member(f[2], name))
return redis.call('HGETALL', jk)
