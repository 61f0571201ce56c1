-- Every job's fields (a flat HGETALL list each), sorted by name.
-- ARGV: none.

local jobs = {}
for _, name in ipairs(redis.call('ZRANGE', key('jobs'), 0, -1)) do
  local fields = redis.call('HGETALL', job_key(name))
  if #fields > 0 then
    jobs[#jobs + 1] = fields
  end
end
return jobs
