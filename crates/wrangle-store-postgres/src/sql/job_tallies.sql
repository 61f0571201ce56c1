-- Job $1's counters (schema_v7.sql), summed over their slots: its tasks per state and
-- worker, and the ids it completed in the seconds ($2, $3]. Read from the job's row, so an
-- unknown job gives no row at all, and a job with no counted task one row whose state is
-- NULL. Sums beyond i64 (absurd payloads) read as its maximum.
SELECT c.state, nullif(c.worker, '') AS worker, c.blocks, c.ids, r.recent
FROM {schema}.jobs AS j
LEFT JOIN LATERAL (
    SELECT state, worker, sum(blocks)::bigint AS blocks,
           least(sum(ids), 9223372036854775807)::bigint AS ids
    FROM {schema}.job_counts
    WHERE job = j.name
    GROUP BY state, worker
    HAVING sum(blocks) > 0
) AS c ON true
CROSS JOIN LATERAL (
    SELECT least(coalesce(sum(ids), 0), 9223372036854775807)::bigint AS recent
    FROM {schema}.job_recent
    WHERE job = j.name AND second > $2 AND second <= $3
) AS r
WHERE j.name = $1
