-- Running tasks whose lease ended: their worker stopped heartbeating (killed, crashed,
-- partitioned). Back to available, or dead on the last attempt; the attempt is recorded.
WITH expired AS (
    SELECT id, 'lease expired: worker ' || coalesce(worker, '?')
               || ' stopped heartbeating during attempt ' || attempt AS message
    FROM tasks
    WHERE state = 'running' AND lease_until < ?1
    ORDER BY id
    LIMIT ?2)
UPDATE tasks SET
    state = CASE WHEN attempt < max_attempts THEN 'available' ELSE 'dead' END,
    run_at = CASE WHEN attempt < max_attempts THEN ?1 ELSE run_at END,
    error = expired.message,
    finished_at = ?1,
    lease_until = NULL,
    attempts = json_insert(attempts, '$[#]', json_object(
        'attempt', attempt, 'worker', worker, 'started_at', started_at, 'finished_at', ?1,
        'outcome', 'lease expired', 'error', expired.message))
FROM expired
WHERE tasks.id = expired.id
RETURNING tasks.id
