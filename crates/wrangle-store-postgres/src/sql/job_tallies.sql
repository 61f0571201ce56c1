-- Job $1's tasks per (state, worker): how many, the ids they cover, and the ids of those
-- that finished in the minute before now $2. One aggregate over the job's tasks (through
-- `tasks_job`). No row at all: no such job; a row with a NULL state: a job without tasks.
-- A task covers end - start ids when its payload has `start` and `end` that are JSON
-- integers within i64, end not before start, else 1 (as wrangle_core::job::ids_of_payload);
-- computed in numeric, so no payload can overflow it.
SELECT t.state, t.worker, count(t.state) AS blocks,
       least(coalesce(sum(t.ids), 0), 9223372036854775807)::bigint AS ids,
       least(coalesce(sum(t.ids) FILTER (WHERE t.finished_at > $2 - 60000
                                          AND t.finished_at <= $2), 0),
             9223372036854775807)::bigint AS ids_last_minute
FROM {schema}.jobs AS j
LEFT JOIN LATERAL (
    SELECT task.state, task.worker, task.finished_at,
           CASE WHEN r.start_id BETWEEN -9223372036854775808 AND 9223372036854775807
                 AND r.end_id BETWEEN -9223372036854775808 AND 9223372036854775807
                 AND r.end_id >= r.start_id
                THEN r.end_id - r.start_id
                ELSE 1 END AS ids
    FROM {schema}.tasks AS task
    CROSS JOIN LATERAL (
        SELECT CASE WHEN jsonb_typeof(task.payload->'start') = 'number'
                     AND task.payload->>'start' ~ '^-?[0-9]+$'
                    THEN (task.payload->>'start')::numeric END AS start_id,
               CASE WHEN jsonb_typeof(task.payload->'end') = 'number'
                     AND task.payload->>'end' ~ '^-?[0-9]+$'
                    THEN (task.payload->>'end')::numeric END AS end_id
    ) AS r
    WHERE task.job = j.name
) AS t ON true
WHERE j.name = $1
GROUP BY t.state, t.worker
