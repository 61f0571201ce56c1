-- A job's (?1) tasks per state and worker: count, ids (end - start of a block, else 1),
-- and ids of those finished in (?2, ?3]. Read from the job's row, so an unknown job gives
-- no row at all and a job without tasks one row whose state is NULL.
WITH sized AS (
    SELECT t.state, t.worker, t.finished_at,
           CASE WHEN t.id IS NULL THEN 0
                WHEN json_type(t.payload, '$.start') = 'integer'
                 AND json_type(t.payload, '$.end') = 'integer'
                 AND json_extract(t.payload, '$.end') >= json_extract(t.payload, '$.start')
                THEN json_extract(t.payload, '$.end') - json_extract(t.payload, '$.start')
                ELSE 1 END AS ids
    FROM jobs AS j LEFT JOIN tasks AS t ON t.job = j.name
    WHERE j.name = ?1
)
SELECT state, worker, count(state) AS blocks, sum(ids) AS ids,
       sum(CASE WHEN finished_at > ?2 AND finished_at <= ?3 THEN ids ELSE 0 END) AS recent
FROM sized GROUP BY state, worker
