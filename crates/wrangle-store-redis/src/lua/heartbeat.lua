-- A worker's heartbeat: refreshes its registration, extends the leases it still holds.
-- ARGV: now, lease_until, worker name, worker info JSON, then (id, attempt) pairs.
-- Returns {unacknowledged commands in its mailbox, {ids of the tasks it lost}}.

local now, lease_until, worker, info = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('HSET', key('workers'), worker, info)
redis.call('ZADD', key('workers:seen'), now, worker)

local lost = {}
for i = 5, #ARGV, 2 do
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
