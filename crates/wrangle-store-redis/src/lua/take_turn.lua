-- Takes or renews a maintenance duty's turn (`B:turn:DUTY`, a hash of holder and until)
-- for `holder` until `until`, unless another holder has it after `now`; the caller's
-- clock decides, as everywhere in the store.
-- ARGV: duty, holder, until, now. Returns 1 when `holder` holds it, else 0.

local tk = key('turn:' .. ARGV[1])
local current = redis.call('HMGET', tk, 'holder', 'until')
if current[1] and current[1] ~= ARGV[2] and tonumber(current[2]) > tonumber(ARGV[4]) then
  return 0
end
redis.call('HSET', tk, 'holder', ARGV[2], 'until', ARGV[3])
return 1
