-- An operator's "run it again now": available at now ($2), with one more attempt if it had
-- none left.
UPDATE {schema}.tasks
SET state = 'available', run_at = $2, lease_until = NULL,
    max_attempts = greatest(max_attempts, attempt + 1)
WHERE id = $1
RETURNING *
