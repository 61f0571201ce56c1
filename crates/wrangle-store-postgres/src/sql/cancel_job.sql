-- Cancels job $1 so that claims make no more of its blocks (no row: no such job).
UPDATE {schema}.jobs SET cancelled = true WHERE name = $1 RETURNING *
