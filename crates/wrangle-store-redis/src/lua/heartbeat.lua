-- A worker's heartbeat: refreshes its registration, extends the leases it still holds.
-- ARGV: now, lease_until, worker name, worker info JSON, when it counts as lost if it
-- stays silent ('' for never: it did not say its lease), then (id, attempt) pairs.
-- Returns {unacknowledged commands in its mailbox, {ids of the tasks it lost}}.

local now, lease_until, worker, info, lost_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', key('workers'), worker, info)
redis.call('ZADD', key('workers:seen'), now, worker)
if lost_at == '' then
  redis.call('ZREM', key('workers:lost-at'), worker)
else
  redis.call('ZADD', key('workers:lost-at'), lost_at, worker)
end

local lost = {}
for i = 6, #ARGV, 2 do
  local id, attempt = ARGV[i], ARGV[i + 1]
  local task = load_task(id)
  if task and task.state == 'running' and task.worker == worker and task.attempt == attempt then
    redis.call('HSET', task_key(id), 'lease_until', lease_until)
    redis.call('ZADD', key('running'), lease_until, id)
  else
    lost[#lost + 1] = id
  end
end
return {redis.call('ZCARD', key('mailbox:' .. worker)), lost}
