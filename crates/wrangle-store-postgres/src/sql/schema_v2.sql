-- wrangle PostgreSQL schema, version 2: jobs. `{schema}` is replaced by the store's schema.
-- A range job's blocks are not stored when it is created: claims advance its `cursor` and
-- insert the blocks they take as tasks already running (claim_blocks, called by claim.sql).

CREATE TABLE {schema}.jobs (
    name         text    PRIMARY KEY,
    kind         text    NOT NULL CHECK (kind IN ('range', 'list')),
    queue        text    NOT NULL,
    task_kind    text    NOT NULL,
    priority     integer NOT NULL,
    max_attempts bigint  NOT NULL,
    timeout_ms   bigint,
    start_id     bigint  NOT NULL,
    end_id       bigint  NOT NULL,
    block        bigint  NOT NULL CHECK (block >= 1),
    cursor       bigint  NOT NULL,               -- start of the next block to create
    cancelled    boolean NOT NULL DEFAULT false,
    created_at   bigint  NOT NULL,
    CHECK (start_id <= cursor AND cursor <= end_id)
);

-- The claim looks here, in the order it takes jobs, once it found fewer due tasks than it
-- asked for. It holds only jobs with blocks left to create (a job leaves it when its cursor
-- reaches the end or it is cancelled), so it stays tiny however many jobs have finished,
-- and with no job at all the claim's extra cost is one probe of an empty index.
CREATE INDEX jobs_claimable ON {schema}.jobs (priority DESC, created_at, name COLLATE "C")
    WHERE NOT cancelled AND cursor < end_id;

-- Makes up to `wanted` blocks for a claim (see claim.sql, which calls it only when the due
-- tasks fell short, so a claim that fills up on due tasks never gets here) and returns them
-- as claim.sql returns claimed tasks. Takes range jobs that are not cancelled, have blocks
-- left and whose queue passes `queues` (NULL = every queue) and is not paused: highest
-- priority, then oldest, then first by name (byte order), through `jobs_claimable`. For
-- each, it advances the cursor past the blocks it takes and inserts them as tasks already
-- running under `claimer` (attempt 1, leased until `lease_until_ms`), block by block in
-- order; it goes on to the next job while `wanted` is not reached.
-- The job row is locked FOR UPDATE and the lock is waited for, not skipped: a concurrent
-- claimer holding it is one short statement from committing, and skipping would send this
-- worker to sleep with blocks left (blocks are inserted running, so nothing would wake it).
-- After the wait, READ COMMITTED re-checks the row's newest version: the claim continues
-- from the cursor the other one left or, if that was the end, takes the next job. So no
-- block is ever handed out twice. Jobs are locked in the order they are taken, and a claim
-- never goes back to a job ordered before one it took, so claimers cannot deadlock.
-- No overflow near the ends of bigint: end_id - cursor fits (start_id <= cursor <= end_id
-- and end_id - start_id fits, as jobs are validated), block starts are below end_id, and the
-- last block's end and the cursor are cut at end_id without computing past it.
CREATE FUNCTION {schema}.claim_blocks(claimer text, lease_until_ms bigint, now_ms bigint,
                                      wanted bigint, queues text[])
RETURNS TABLE (id bigint, queue text, kind text, payload jsonb, attempt bigint,
               max_attempts bigint, timeout_ms bigint, job text, priority integer,
               run_at bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    j {schema}.jobs;
    previous {schema}.jobs;
    remaining bigint;
    taken bigint;
BEGIN
    WHILE wanted > 0 LOOP
        SELECT * INTO j FROM {schema}.jobs AS c
        WHERE NOT c.cancelled AND c.cursor < c.end_id
          AND (queues IS NULL OR c.queue = ANY(queues))
          AND c.queue NOT IN (SELECT p.queue FROM {schema}.paused_queues AS p)
          AND (previous.name IS NULL
               OR (-c.priority::bigint, c.created_at, c.name COLLATE "C")
                  > (-previous.priority::bigint, previous.created_at,
                     previous.name COLLATE "C"))
        ORDER BY c.priority DESC, c.created_at, c.name COLLATE "C"
        LIMIT 1
        FOR UPDATE;
        EXIT WHEN NOT FOUND;
        remaining := (j.end_id - j.cursor - 1) / j.block + 1;
        taken := least(wanted, remaining);
        UPDATE {schema}.jobs AS c
        SET cursor = CASE WHEN taken = remaining THEN j.end_id
                          ELSE j.cursor + taken * j.block END
        WHERE c.name = j.name;
        RETURN QUERY
        INSERT INTO {schema}.tasks AS t (queue, kind, payload, priority, state, run_at,
                                         attempt, max_attempts, timeout_ms, job, worker,
                                         lease_until, created_at, started_at)
        SELECT j.queue, j.task_kind,
               jsonb_build_object('start', s.block_start, 'end',
                   CASE WHEN j.block >= j.end_id - s.block_start THEN j.end_id
                        ELSE s.block_start + j.block END),
               j.priority, 'running', now_ms, 1, j.max_attempts, j.timeout_ms, j.name,
               claimer, lease_until_ms, now_ms, now_ms
        FROM (SELECT g.i, j.cursor + g.i * j.block AS block_start
              FROM generate_series(0, taken - 1) AS g(i)) AS s
        ORDER BY s.i
        RETURNING t.id, t.queue, t.kind, t.payload, t.attempt, t.max_attempts, t.timeout_ms,
                  t.job, t.priority, t.run_at;
        wanted := wanted - taken;
        previous := j;
    END LOOP;
END $$;

-- The function's statements run on cached generic plans. Left to choose, PostgreSQL would
-- re-plan the block insert on every call (measured: 70 µs of a 10-block claim's 300 µs), as
-- only a custom plan knows how many rows generate_series makes and so looks cheaper.
-- plan_cache_mode exists from PostgreSQL 12 on; on 11 the function re-plans.
DO $$
BEGIN
    IF current_setting('server_version_num')::integer >= 120000 THEN
        EXECUTE 'ALTER FUNCTION {schema}.claim_blocks(text, bigint, bigint, bigint, text[])
                 SET plan_cache_mode = force_generic_plan';
    END IF;
END $$;

-- Blocks made by claims are inserted already running: nothing new to claim, so no wake-up.
CREATE OR REPLACE FUNCTION {schema}.notify_tasks_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE state <> 'running') THEN
        PERFORM pg_notify('wrangle.' || TG_TABLE_SCHEMA, 'tasks');
    END IF;
    RETURN NULL;
END $$;

-- A new range job has blocks to claim although no task was enqueued: wake idle workers.
CREATE FUNCTION {schema}.notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE NOT cancelled AND cursor < end_id) THEN
        PERFORM pg_notify('wrangle.' || TG_TABLE_SCHEMA, 'tasks');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_inserted AFTER INSERT ON {schema}.jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_jobs_inserted();
