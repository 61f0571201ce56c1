-- wrangle PostgreSQL schema, version 6: tasks per queue and state as counters, kept by
-- triggers inside the statements that insert, move and delete tasks (so they never drift
-- from the rows, whoever writes), read by queue_stats instead of counting every task.
-- `{schema}` is replaced by the store's schema.
--
-- Each server process (backend) adds to rows of its own, `slot` = its pid: a claim and a
-- completion on two connections never wait for each other on a counter row, and two
-- transactions cannot deadlock on counters whatever order they move tasks in. Readers sum
-- the slots. The pruner's turn folds the slots into slot 0 (`tidy.sql`, skipping
-- rows a writer holds), so the table holds about queues x states x live connections rows.
--
-- The same trigger that counts a running task's move to completed, retryable or dead counts
-- the attempt in `recent_counts`, per queue, outcome and second (second S holds the
-- attempts that ended in (S-1, S] seconds, as wrangle_core::store::recent_second), so
-- "completed and failed in the last minute" reads at most sixty seconds of counters
-- instead of every task that finished in the minute. The pruner's turn drops the seconds
-- no minute reads any more.
CREATE TABLE {schema}.queue_counts (
    queue text    NOT NULL,
    state text    NOT NULL,
    slot  integer NOT NULL,
    n     bigint  NOT NULL,
    PRIMARY KEY (queue, state, slot)
);

CREATE TABLE {schema}.recent_counts (
    queue   text    NOT NULL,
    outcome text    NOT NULL,  -- 'completed' or 'failed'
    second  bigint  NOT NULL,
    slot    integer NOT NULL,
    n       bigint  NOT NULL,
    PRIMARY KEY (queue, outcome, second, slot)
);

-- Writers of older versions must not move tasks between the seed and the triggers.
LOCK TABLE {schema}.tasks IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO {schema}.queue_counts (queue, state, slot, n)
SELECT queue, state, 0, count(*) FROM {schema}.tasks GROUP BY queue, state;

-- Inserts and deletes come in big batches (a 100,000-task COPY, a pruning batch): one
-- statement trigger adds them up per queue and state from the transition table.
CREATE FUNCTION {schema}.count_tasks_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
    SELECT queue, state, pg_backend_pid(), count(*) FROM inserted GROUP BY queue, state
    ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_counted_insert AFTER INSERT ON {schema}.tasks
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_tasks_inserted();

CREATE FUNCTION {schema}.count_tasks_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
    SELECT queue, state, pg_backend_pid(), -count(*) FROM deleted GROUP BY queue, state
    ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_counted_delete AFTER DELETE ON {schema}.tasks
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_tasks_deleted();

-- Updates are the hot path (claims and completions of 100 or 1,000 tasks per statement):
-- a statement trigger adds up the moves of the whole statement per queue and state, one
-- upsert each, where a row trigger would write a new version of the same counter row for
-- every task (measured: 33 MB of dead versions behind 15 live counters after 200,000
-- tasks, which every reader scanned). An update that moves nothing (a heartbeat's lease
-- extension) joins its transition tables and writes nothing.
CREATE FUNCTION {schema}.count_tasks_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        SELECT o.queue AS old_queue, o.state AS old_state, n.queue, n.state, n.finished_at
        FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
        WHERE o.state IS DISTINCT FROM n.state OR o.queue IS DISTINCT FROM n.queue
    ), counted AS (
        INSERT INTO {schema}.recent_counts AS r (queue, outcome, second, slot, n)
        SELECT queue, CASE state WHEN 'completed' THEN 'completed' ELSE 'failed' END,
               (finished_at + 999) / 1000, pg_backend_pid(), count(*)
        FROM moved
        WHERE old_state = 'running' AND state IN ('completed', 'retryable', 'dead')
          AND finished_at IS NOT NULL
        GROUP BY 1, 2, 3
        ON CONFLICT (queue, outcome, second, slot) DO UPDATE SET n = r.n + excluded.n
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

CREATE TRIGGER tasks_counted_move AFTER UPDATE ON {schema}.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_tasks_moved();
