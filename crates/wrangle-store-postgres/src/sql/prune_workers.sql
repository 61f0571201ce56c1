-- Removes the workers silent at now ($1) for more than $2 of their own leases (a worker
-- that did not say its lease is kept), with their log rings; returns their names.
WITH gone AS (
    DELETE FROM {schema}.workers
    WHERE (info->>'lease_ms')::bigint > 0
      AND last_seen < $1 - (info->>'lease_ms')::bigint * $2
    RETURNING name
), rings AS (
    DELETE FROM {schema}.logs WHERE owner IN (SELECT 'worker:' || name FROM gone)
)
SELECT name FROM gone
