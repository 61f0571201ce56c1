-- Job ?1's counters (schema_v7.sql): its tasks per state and worker, and the ids it
-- completed in the seconds (?2, ?3]. Read from the job's row, so an unknown job gives no
-- row at all, and a job with no counted task one row whose state is NULL.
SELECT c.state, nullif(c.worker, '') AS worker, c.blocks, c.ids,
       (SELECT coalesce(sum(r.ids), 0) FROM job_recent AS r
        WHERE r.job = j.name AND r.second > ?2 AND r.second <= ?3) AS recent
FROM jobs AS j LEFT JOIN job_counts AS c ON c.job = j.name AND c.blocks > 0
WHERE j.name = ?1
