-- A worker's heartbeat in one statement: refresh its registration ($1 name, $2 info,
-- $3 now), extend the leases it still holds ($5 ids, $6 attempts) to $4, and tell whether
-- commands wait in its mailbox. Returns the ids it still holds; the caller reports the
-- others as lost. (A data-modifying CTE runs even though nothing reads it.)
WITH registered AS (
    INSERT INTO {schema}.workers (name, info, last_seen) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen
),
extended AS (
    UPDATE {schema}.tasks AS t SET lease_until = $4
    FROM unnest($5::bigint[], $6::bigint[]) AS l(id, attempt)
    WHERE t.id = l.id AND t.state = 'running' AND t.attempt = l.attempt AND t.worker = $1
    RETURNING t.id
)
SELECT coalesce((SELECT array_agg(id) FROM extended), '{}') AS held,
       EXISTS (SELECT 1 FROM {schema}.commands
               WHERE worker = $1 AND acked_at IS NULL) AS commands_waiting
