UPDATE tasks
SET state = 'running', attempt = attempt + 1, worker = ?1, lease_until = ?2, started_at = ?3
WHERE id IN (
    SELECT id FROM tasks INDEXED BY tasks_due
    WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= ?3
      AND queue NOT IN (SELECT queue FROM paused_queues)
    ORDER BY priority DESC, run_at, id
    LIMIT ?4)
RETURNING id, queue, kind, payload, attempt, max_attempts, timeout_ms, job, priority, run_at
