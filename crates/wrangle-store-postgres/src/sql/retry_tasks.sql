-- Makes every task of the ids $1 that an operator may retry available at now $2
-- (retry_task.sql for many), with one more attempt where it had none left.
UPDATE {schema}.tasks
SET state = 'available', run_at = $2, lease_until = NULL,
    max_attempts = greatest(max_attempts, attempt + 1)
WHERE id = ANY($1) AND state IN ('scheduled', 'retryable', 'dead', 'cancelled')
