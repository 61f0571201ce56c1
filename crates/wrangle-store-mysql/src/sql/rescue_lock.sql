-- Locks up to `limit` running tasks whose lease ended, oldest lease first (the index
-- order, so the walk stops at `limit`). A task locked by its worker's completion at this
-- moment is skipped: that completion decides it. Binds: now, limit.
SELECT id, state, attempt, max_attempts, worker, started_at, run_at
FROM wrangle_tasks FORCE INDEX (wrangle_tasks_lease)
WHERE state = 'running' AND lease_until < ?
ORDER BY lease_until
LIMIT ?
FOR UPDATE SKIP LOCKED
