-- Retries every task of the given ids that retry.lua would; the others are skipped.
-- ARGV: now, then the ids. Returns how many were retried.

local now = ARGV[1]
local retried = 0
for i = 2, #ARGV do
  local task = load_task(ARGV[i])
  if task and RETRYABLE[task.state] then
    revive(ARGV[i], task, now)
    retried = retried + 1
  end
end
save_changes()
if retried > 0 then
  publish('tasks')
end
return retried
