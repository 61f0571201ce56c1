-- Inserts a batch in one statement. $1 = JSON array of {ord, queue, kind, payload,
-- priority, state, run_at, max_attempts, timeout_ms, unique_key, job}, $2 = now.
-- Rows are inserted in `ord` order, so their ids increase in request order. A unique key
-- that exists (or repeats earlier in the batch) inserts nothing.
-- Returns the inserted rows (`inserted` true) and the tasks that already held one of the
-- batch's unique keys when the statement began (`inserted` false); the caller matches
-- them back to the request.
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
        ord bigint, queue text, kind text, payload jsonb, priority integer, state text,
        run_at bigint, max_attempts bigint, timeout_ms bigint, unique_key text, job text)
),
inserted AS (
    INSERT INTO {schema}.tasks (queue, kind, payload, priority, state, run_at, max_attempts,
                                timeout_ms, unique_key, job, created_at)
    SELECT queue, kind, payload, priority, state, run_at, max_attempts, timeout_ms,
           unique_key, job, $2
    FROM input
    ORDER BY ord
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id, unique_key
)
SELECT id, unique_key, true AS inserted FROM inserted
UNION ALL
SELECT id, unique_key, false FROM {schema}.tasks
WHERE unique_key IN (SELECT unique_key FROM input WHERE unique_key IS NOT NULL)
