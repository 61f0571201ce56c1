-- wrangle PostgreSQL schema, version 7: each job's counters, kept by the same statement
-- triggers that keep `queue_counts` (schema_v6.sql), read by job progress instead of
-- walking the job's tasks (a million-block job took seconds to read).
-- `{schema}` is replaced by the store's schema.
--
-- `job_counts`: a job's tasks per state and worker ('' for none): how many, and the ids
-- they stand for (`job_ids`). `job_recent`: ids of a job's tasks that completed per
-- second (second S holds those that ended in (S-1, S] seconds). Both have per-connection
-- slots as `queue_counts` does, folded by the pruner's turn (`tidy.sql`). Deleting a task
-- does not decrement them: a pruned block stays counted as it ended, so progress stays
-- exact however much was pruned. They go with the job's record (a trigger on `jobs`).
CREATE TABLE {schema}.job_counts (
    job    text    NOT NULL,
    state  text    NOT NULL,
    worker text    NOT NULL,
    slot   integer NOT NULL,
    blocks bigint  NOT NULL,
    ids    numeric NOT NULL,  -- numeric: no payload can make an addition overflow
    PRIMARY KEY (job, state, worker, slot)
);

CREATE TABLE {schema}.job_recent (
    job    text    NOT NULL,
    second bigint  NOT NULL,
    slot   integer NOT NULL,
    ids    numeric NOT NULL,
    PRIMARY KEY (job, second, slot)
);

-- The ids a task of a job stands for: end - start when its payload has `start` and `end`
-- that are JSON integers within i64, end not before start, else 1 (as
-- wrangle_core::job::ids_of_payload).
CREATE FUNCTION {schema}.job_ids(payload jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN r.start_id BETWEEN -9223372036854775808 AND 9223372036854775807
                 AND r.end_id BETWEEN -9223372036854775808 AND 9223372036854775807
                 AND r.end_id >= r.start_id
                THEN r.end_id - r.start_id
                ELSE 1 END
    FROM (SELECT CASE WHEN jsonb_typeof(payload->'start') = 'number'
                       AND payload->>'start' ~ '^-?[0-9]+$'
                      THEN (payload->>'start')::numeric END AS start_id,
                 CASE WHEN jsonb_typeof(payload->'end') = 'number'
                       AND payload->>'end' ~ '^-?[0-9]+$'
                      THEN (payload->>'end')::numeric END AS end_id) AS r
$$;

-- Writers of older versions must not move tasks between the seed and the triggers.
LOCK TABLE {schema}.tasks IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO {schema}.job_counts (job, state, worker, slot, blocks, ids)
SELECT job, state, coalesce(worker, ''), 0, count(*), sum({schema}.job_ids(payload))
FROM {schema}.tasks WHERE job IS NOT NULL
GROUP BY 1, 2, 3;

CREATE OR REPLACE FUNCTION {schema}.count_tasks_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH job_counted AS (
        INSERT INTO {schema}.job_counts AS c (job, state, worker, slot, blocks, ids)
        SELECT job, state, coalesce(worker, ''), pg_backend_pid(), count(*),
               sum({schema}.job_ids(payload))
        FROM inserted WHERE job IS NOT NULL GROUP BY 1, 2, 3
        ON CONFLICT (job, state, worker, slot)
        DO UPDATE SET blocks = c.blocks + excluded.blocks, ids = c.ids + excluded.ids
    )
    INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
    SELECT queue, state, pg_backend_pid(), count(*) FROM inserted GROUP BY queue, state
    ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

-- As version 6, and a task of a job that moves (state or worker) leaves its old group for
-- its new one; one that completed adds its ids to its second.
CREATE OR REPLACE FUNCTION {schema}.count_tasks_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        SELECT o.queue AS old_queue, o.state AS old_state, o.worker AS old_worker,
               n.queue, n.state, n.worker, n.finished_at, n.job, n.payload
        FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
        WHERE o.state IS DISTINCT FROM n.state OR o.queue IS DISTINCT FROM n.queue
           OR (n.job IS NOT NULL AND o.worker IS DISTINCT FROM n.worker)
    ), counted AS (
        INSERT INTO {schema}.recent_counts AS r (queue, outcome, second, slot, n)
        SELECT queue, CASE state WHEN 'completed' THEN 'completed' ELSE 'failed' END,
               (finished_at + 999) / 1000, pg_backend_pid(), count(*)
        FROM moved
        WHERE old_state = 'running' AND state IN ('completed', 'retryable', 'dead')
          AND finished_at IS NOT NULL
        GROUP BY 1, 2, 3
        ON CONFLICT (queue, outcome, second, slot) DO UPDATE SET n = r.n + excluded.n
    ), job_moved AS (
        SELECT job, old_state, coalesce(old_worker, '') AS old_worker, state,
               coalesce(worker, '') AS worker, finished_at, {schema}.job_ids(payload) AS ids
        FROM moved WHERE job IS NOT NULL
    ), job_counted AS (
        INSERT INTO {schema}.job_counts AS c (job, state, worker, slot, blocks, ids)
        SELECT job, state, worker, pg_backend_pid(), sum(blocks), sum(ids) FROM (
            SELECT job, old_state AS state, old_worker AS worker, -1 AS blocks, -ids AS ids
            FROM job_moved
            UNION ALL
            SELECT job, state, worker, 1, ids FROM job_moved
        ) AS d
        GROUP BY job, state, worker
        HAVING sum(blocks) <> 0
        ON CONFLICT (job, state, worker, slot)
        DO UPDATE SET blocks = c.blocks + excluded.blocks, ids = c.ids + excluded.ids
    ), job_completed AS (
        INSERT INTO {schema}.job_recent AS r (job, second, slot, ids)
        SELECT job, (finished_at + 999) / 1000, pg_backend_pid(), sum(ids)
        FROM job_moved
        WHERE old_state = 'running' AND state = 'completed' AND finished_at IS NOT NULL
        GROUP BY 1, 2
        ON CONFLICT (job, second, slot) DO UPDATE SET ids = r.ids + excluded.ids
    )
    INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
    SELECT queue, state, pg_backend_pid(), sum(n) FROM (
        SELECT old_queue AS queue, old_state AS state, -1 AS n FROM moved
        UNION ALL
        SELECT queue, state, 1 FROM moved
    ) AS d
    GROUP BY queue, state
    HAVING sum(n) <> 0
    ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.drop_job_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {schema}.job_counts WHERE job = OLD.name;
    DELETE FROM {schema}.job_recent WHERE job = OLD.name;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_counters_dropped AFTER DELETE ON {schema}.jobs
    FOR EACH ROW EXECUTE FUNCTION {schema}.drop_job_counters();
