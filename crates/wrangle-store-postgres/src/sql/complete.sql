-- Completes a batch in one statement. $1 = now, $2 = JSON array of {ord, id, attempt,
-- worker, outcome: ok|fail|release, result, error, retry_at}.
-- Completions apply in request order: per task, the first completion (lowest ord) naming
-- the running attempt and its worker applies; every other one is stale, since once one
-- applied the task is no longer running. Returns the `ord` and new state of each applied
-- completion. The UPDATE re-checks running/attempt/worker on the row it locks, so a
-- concurrent rescue or cancel makes the completion stale instead of overwriting it.
WITH input AS (
    SELECT * FROM jsonb_to_recordset($2::jsonb) AS c(
        ord bigint, id bigint, attempt bigint, worker text, outcome text, result jsonb,
        error text, retry_at bigint)
),
chosen AS (
    -- One primary-key probe per completion. The planner would rather scan every running
    -- task (tasks_lease, or tasks_state on 'running') and join, but those index ranges
    -- hold a dead entry for every task that ran since the last vacuum, so that plan got
    -- slower with every task completed. OFFSET 0 keeps the subquery from being pulled up
    -- into a join, and `coalesce(state, '')` matches no index, which leaves the key.
    SELECT DISTINCT ON (c.id) c.*
    FROM input AS c
    CROSS JOIN LATERAL (
        SELECT 1 FROM {schema}.tasks AS t
        WHERE t.id = c.id AND coalesce(t.state, '') = 'running' AND t.attempt = c.attempt
          AND t.worker = c.worker
        OFFSET 0
    ) AS running
    ORDER BY c.id, c.ord
)
UPDATE {schema}.tasks AS t SET
    state = CASE c.outcome
        WHEN 'ok' THEN 'completed'
        WHEN 'release' THEN 'available'
        ELSE CASE WHEN c.retry_at IS NOT NULL AND t.attempt < t.max_attempts
                  THEN 'retryable' ELSE 'dead' END
    END,
    result = CASE c.outcome WHEN 'ok' THEN c.result ELSE t.result END,
    error = CASE c.outcome WHEN 'fail' THEN c.error WHEN 'ok' THEN NULL ELSE t.error END,
    run_at = CASE
        WHEN c.outcome = 'release' THEN $1
        WHEN c.outcome = 'fail' AND c.retry_at IS NOT NULL AND t.attempt < t.max_attempts
            THEN greatest(c.retry_at, $1)
        ELSE t.run_at
    END,
    -- A released attempt does not count against max_attempts.
    attempt = CASE c.outcome WHEN 'release' THEN t.attempt - 1 ELSE t.attempt END,
    finished_at = CASE c.outcome WHEN 'release' THEN t.finished_at ELSE $1 END,
    lease_until = NULL,
    attempts = t.attempts || jsonb_build_array(jsonb_build_object(
        'attempt', t.attempt, 'worker', t.worker, 'started_at', t.started_at,
        'finished_at', $1,
        'outcome', CASE c.outcome WHEN 'ok' THEN 'completed' WHEN 'release' THEN 'released'
                   ELSE 'failed' END,
        'error', c.error,
        'retry_at', CASE WHEN c.outcome = 'fail' AND t.attempt < t.max_attempts
                         THEN c.retry_at END))
FROM chosen AS c
WHERE t.id = c.id AND coalesce(t.state, '') = 'running' AND t.attempt = c.attempt
  AND t.worker = c.worker
RETURNING c.ord, t.state
