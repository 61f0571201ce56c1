-- A job's tasks per (state, worker): how many, the ids they cover (end - start of a block
-- whose payload has integer start and end, within i64 and end >= start; 1 otherwise, as
-- wrangle_core::job::ids_of_payload counts) and those of the ones that finished in
-- (from, to]. One row with a NULL state for a job without tasks, none for an unknown job.
-- Binds: from, to (ms), job name.
SELECT t.state, t.worker, COUNT(t.state) AS blocks,
       CAST(COALESCE(SUM(t.ids), 0) AS UNSIGNED) AS ids,
       CAST(COALESCE(SUM(CASE WHEN t.finished_at > ? AND t.finished_at <= ? THEN t.ids
                              ELSE 0 END), 0) AS UNSIGNED) AS ids_last_minute
FROM wrangle_jobs AS j
LEFT JOIN (
    SELECT b.job, b.state, b.worker, b.finished_at,
           CASE WHEN b.s BETWEEN -9223372036854775808 AND 9223372036854775807
                 AND b.e BETWEEN -9223372036854775808 AND 9223372036854775807
                 AND b.e >= b.s
                THEN b.e - b.s ELSE 1 END AS ids
    FROM (
        SELECT job, state, worker, finished_at,
               CASE WHEN JSON_VALID(payload)
                     AND JSON_TYPE(JSON_EXTRACT(payload, '$.start')) = 'INTEGER'
                    THEN CAST(JSON_UNQUOTE(JSON_EXTRACT(payload, '$.start')) AS DECIMAL(65, 0))
               END AS s,
               CASE WHEN JSON_VALID(payload)
                     AND JSON_TYPE(JSON_EXTRACT(payload, '$.end')) = 'INTEGER'
                    THEN CAST(JSON_UNQUOTE(JSON_EXTRACT(payload, '$.end')) AS DECIMAL(65, 0))
               END AS e
        FROM wrangle_tasks
    ) AS b
) AS t ON t.job = j.name
WHERE j.name = ?
GROUP BY t.state, t.worker
