-- Claims up to $4 due tasks for worker $1 at now $3, leased until $2, from the queues in
-- $5 (NULL = every queue), skipping paused queues.
-- The CTE picks the tasks in claim order through the partial index `tasks_due`; FOR UPDATE
-- SKIP LOCKED makes concurrent claimers pass over each other's rows instead of waiting. It
-- is a CTE so the planner cannot turn the LIMIT into a nested loop that updates more rows
-- than asked (Oban's "optimization fence").
WITH due AS (
    SELECT id FROM {schema}.tasks
    WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= $3
      AND ($5::text[] IS NULL OR queue = ANY($5::text[]))
      AND queue NOT IN (SELECT queue FROM {schema}.paused_queues)
    ORDER BY priority DESC, run_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.tasks AS t
SET state = 'running', attempt = t.attempt + 1, worker = $1, lease_until = $2, started_at = $3
FROM due
WHERE t.id = due.id
RETURNING t.id, t.queue, t.kind, t.payload, t.attempt, t.max_attempts, t.timeout_ms, t.job,
          t.priority, t.run_at
