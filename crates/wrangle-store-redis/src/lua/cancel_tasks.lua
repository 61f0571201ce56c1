-- Cancels every task of the given ids that is not final (cancel.lua for many); unknown
-- and final ones are skipped.
-- ARGV: now, result TTL in ms (0: keep), then the ids. Returns how many were cancelled.

local now, ttl = ARGV[1], ARGV[2]
local cancelled = 0
for i = 3, #ARGV do
  local task = load_task(ARGV[i])
  if task and CANCELLABLE[task.state] then
    cancel(ARGV[i], task, now, ttl)
    cancelled = cancelled + 1
  end
end
save_changes()
if cancelled > 0 then
  publish('outcomes')
end
return cancelled
