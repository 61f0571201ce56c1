-- retry_task for every dead task of queue $1 (NULL = every queue) at now $2.
UPDATE {schema}.tasks
SET state = 'available', run_at = $2, lease_until = NULL,
    max_attempts = greatest(max_attempts, attempt + 1)
WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1)
