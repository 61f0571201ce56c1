-- Picks and locks up to `limit` due tasks in claim order. Rows locked by another claimer
-- are skipped, not waited for, so claimers never queue behind each other. The index walk
-- stops after `limit` matches (READ COMMITTED releases the rows the WHERE rejects).
-- Binds: now, paused queues (JSON array), all queues (bool), wanted queues (JSON array),
-- limit.
SELECT id, queue, kind, payload, attempt, max_attempts, timeout_ms, job
FROM wrangle_tasks FORCE INDEX (wrangle_tasks_waiting)
WHERE waiting_rank IS NOT NULL
  AND run_at <= ?
  AND NOT JSON_CONTAINS(?, JSON_QUOTE(queue))
  AND (? OR JSON_CONTAINS(?, JSON_QUOTE(queue)))
ORDER BY waiting_rank, run_at, id
LIMIT ?
FOR UPDATE SKIP LOCKED
