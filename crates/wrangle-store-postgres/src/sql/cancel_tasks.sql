-- Cancels every task of the ids $1 that is not final, at now $2 (cancel_task.sql for many;
-- the state test is made on each row as it is locked, so a task that finished meanwhile
-- is skipped). Running attempts end with a `cancelled` record.
UPDATE {schema}.tasks SET
    attempts = CASE WHEN state = 'running'
        THEN attempts || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'worker', worker, 'started_at', started_at,
            'finished_at', $2, 'outcome', 'cancelled'))
        ELSE attempts END,
    state = 'cancelled', finished_at = $2, lease_until = NULL
WHERE id = ANY($1) AND state IN ('scheduled', 'available', 'retryable', 'running')
