-- Completes a batch in one statement. $1 = now; one array element per completion:
-- $2 id, $3 attempt, $4 worker, $5 outcome (ok|fail|release), $6 result (JSON text),
-- $7 error, $8 retry_at. The caller sends each (id, attempt, worker) once (a repeat is
-- stale: once the first applied the task is no longer running), so at most one element
-- matches a task's running attempt. Returns the position (1-based) and new state of each
-- applied completion. The UPDATE checks running/attempt/worker on the row it locks, so a
-- concurrent rescue or cancel makes the completion stale instead of overwriting it.
-- A success's attempt record is not appended: the reader implies it (completed is final).
-- One primary-key probe per completion: `coalesce(state, '')` matches no index, so the
-- planner cannot prefer walking the running tasks' index ranges, which hold a dead entry
-- for every task that ran since the last vacuum.
UPDATE {schema}.tasks AS t SET
    state = CASE c.outcome
        WHEN 'ok' THEN 'completed'
        WHEN 'release' THEN 'available'
        ELSE CASE WHEN c.retry_at IS NOT NULL AND t.attempt < t.max_attempts
                  THEN 'retryable' ELSE 'dead' END
    END,
    result = CASE c.outcome WHEN 'ok' THEN c.result::jsonb ELSE t.result END,
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
    attempts = CASE c.outcome WHEN 'ok' THEN t.attempts
        ELSE t.attempts || jsonb_build_array(jsonb_build_object(
            'attempt', t.attempt, 'worker', t.worker, 'started_at', t.started_at,
            'finished_at', $1,
            'outcome', CASE c.outcome WHEN 'release' THEN 'released' ELSE 'failed' END,
            'error', c.error,
            'retry_at', CASE WHEN c.outcome = 'fail' AND t.attempt < t.max_attempts
                             THEN c.retry_at END))
    END
FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::bigint[]) WITH ORDINALITY
     AS c(id, attempt, worker, outcome, result, error, retry_at, ord)
WHERE t.id = c.id AND coalesce(t.state, '') = 'running' AND t.attempt = c.attempt
  AND t.worker = c.worker
RETURNING c.ord, t.state
