-- A job's (?1) tasks per state and worker: count, ids (end - start of a block, else 1),
-- and ids of those finished in (?2, ?3].
WITH sized AS (
    SELECT state, worker, finished_at,
           CASE WHEN json_type(payload, '$.start') = 'integer'
                 AND json_type(payload, '$.end') = 'integer'
                 AND json_extract(payload, '$.end') >= json_extract(payload, '$.start')
                THEN json_extract(payload, '$.end') - json_extract(payload, '$.start')
                ELSE 1 END AS ids
    FROM tasks WHERE job = ?1
)
SELECT state, worker, count(*) AS blocks, sum(ids) AS ids,
       sum(CASE WHEN finished_at > ?2 AND finished_at <= ?3 THEN ids ELSE 0 END) AS recent
FROM sized GROUP BY state, worker
