-- A job's counters (schema_v6.sql), summed over their slots: its tasks per (state,
-- worker) and the ids it completed in the seconds (first, last]. One row with a NULL state
-- for a job with no counted task, none for an unknown job. Sums beyond i64 (absurd
-- payloads) read as its maximum.
-- Binds: first, last (seconds), job name, job name.
SELECT c.state, NULLIF(c.worker, '') AS worker, c.blocks, c.ids,
       (SELECT CAST(LEAST(COALESCE(SUM(r.ids), 0), 9223372036854775807) AS SIGNED)
        FROM wrangle_job_recent AS r
        WHERE r.job = j.name AND r.second > ? AND r.second <= ?) AS recent
FROM wrangle_jobs AS j
LEFT JOIN (
    SELECT job, state, worker, CAST(SUM(blocks) AS SIGNED) AS blocks,
           CAST(LEAST(SUM(ids), 9223372036854775807) AS SIGNED) AS ids
    FROM wrangle_job_counts
    WHERE job = ?
    GROUP BY job, state, worker
    HAVING SUM(blocks) > 0
) AS c ON c.job = j.name
WHERE j.name = ?
