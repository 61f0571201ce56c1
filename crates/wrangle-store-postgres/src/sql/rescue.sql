-- Running tasks whose lease ended before $1: their worker stopped heartbeating (killed,
-- crashed, partitioned). Up to $2 of them, lowest id first, go back to available (or dead
-- on their last attempt) with a `lease expired` record. SKIP LOCKED: a task locked by a
-- concurrent completion is left to it.
WITH expired AS (
    SELECT id, 'lease expired: worker ' || coalesce(worker, '?')
               || ' stopped heartbeating during attempt ' || attempt AS message
    FROM {schema}.tasks
    WHERE state = 'running' AND lease_until < $1
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.tasks AS t SET
    state = CASE WHEN t.attempt < t.max_attempts THEN 'available' ELSE 'dead' END,
    run_at = CASE WHEN t.attempt < t.max_attempts THEN $1 ELSE t.run_at END,
    error = expired.message,
    finished_at = $1,
    lease_until = NULL,
    attempts = t.attempts || jsonb_build_array(jsonb_build_object(
        'attempt', t.attempt, 'worker', t.worker, 'started_at', t.started_at,
        'finished_at', $1, 'outcome', 'lease expired', 'error', expired.message))
FROM expired
WHERE t.id = expired.id
RETURNING t.id
