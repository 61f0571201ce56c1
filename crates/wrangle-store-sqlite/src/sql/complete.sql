-- One statement completes a whole batch. ?1 = now, ?2 = JSON array of
-- {id, attempt, worker, outcome: ok|fail|release, result, error, retry_at}.
-- Only rows still running under the same worker and attempt are touched, so of several
-- entries for one task at most one (the one naming its running attempt) matches. Returns
-- the attempt and worker each touched row ran (a release gives the attempt back, so its
-- row reads one less).
UPDATE tasks SET
    state = CASE c.outcome
        WHEN 'ok' THEN 'completed'
        WHEN 'release' THEN 'available'
        ELSE CASE WHEN c.retry_at IS NOT NULL AND tasks.attempt < tasks.max_attempts
                  THEN 'retryable' ELSE 'dead' END
    END,
    result = CASE c.outcome WHEN 'ok' THEN c.result ELSE tasks.result END,
    error = CASE c.outcome WHEN 'fail' THEN c.error WHEN 'ok' THEN NULL ELSE tasks.error END,
    run_at = CASE
        WHEN c.outcome = 'release' THEN ?1
        WHEN c.outcome = 'fail' AND c.retry_at IS NOT NULL AND tasks.attempt < tasks.max_attempts
            THEN max(c.retry_at, ?1)
        ELSE tasks.run_at
    END,
    attempt = CASE c.outcome WHEN 'release' THEN tasks.attempt - 1 ELSE tasks.attempt END,
    finished_at = CASE c.outcome WHEN 'release' THEN tasks.finished_at ELSE ?1 END,
    lease_until = NULL,
    attempts = json_insert(tasks.attempts, '$[#]', json_object(
        'attempt', tasks.attempt, 'worker', tasks.worker, 'started_at', tasks.started_at,
        'finished_at', ?1,
        'outcome', CASE c.outcome WHEN 'ok' THEN 'completed' WHEN 'release' THEN 'released'
                   ELSE 'failed' END,
        'error', c.error,
        'retry_at', CASE WHEN c.outcome = 'fail' AND tasks.attempt < tasks.max_attempts
                         THEN c.retry_at END))
FROM (SELECT value ->> '$.id' AS id, value ->> '$.attempt' AS attempt,
             value ->> '$.worker' AS worker, value ->> '$.outcome' AS outcome,
             value ->> '$.result' AS result, value ->> '$.error' AS error,
             value ->> '$.retry_at' AS retry_at
      FROM jsonb_each(?2)) AS c
WHERE tasks.id = c.id AND +tasks.state = 'running' AND tasks.attempt = c.attempt
  AND tasks.worker = c.worker
RETURNING tasks.id, tasks.state, tasks.attempt, tasks.worker
