-- A job's counters (see common.lua): its tasks per (state, worker) and the ids it
-- completed in seconds first+1..last. Reads one hash and 120 fields of another, whatever
-- the size of the job.
-- ARGV: name, first, last.
-- Returns false for an unknown job, else {the counts hash as field, value, ..., the
-- completed ids per second as high, low pairs (false for none)}.

local name, first, last = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', job_key(name)) == 0 then
  return false
end
local fields = {}
for second = first + 1, last do
  fields[#fields + 1] = 'h:' .. fmt_int(second)
  fields[#fields + 1] = 'l:' .. fmt_int(second)
end
return {redis.call('HGETALL', job_counts_key(name)),
  redis.call('HMGET', job_recent_key(name), unpack(fields))}
