-- wrangle PostgreSQL schema, version 3: a cheaper hot path. `{schema}` is replaced by the
-- store's schema. Profiled with perf during the end-to-end benchmark, the server spent
-- about 8% of its time in the statement trigger on UPDATE (filling and joining its
-- transition tables on every claim, completion and heartbeat) and about 13% inserting
-- index entries, a third of which went to an index over every task; the transition table
-- of the INSERT trigger was about a sixth of a 1000-task enqueue.

-- 1. No index over every task's state: each claim and completion (non-HOT updates) added
--    an entry to it. Listing walks the primary key newest first; waiting and running tasks
--    have their partial indexes; dead tasks, which an operator looks for among many
--    finished ones (and retry_dead updates), get a small partial index of their own.
DROP INDEX {schema}.tasks_state;
CREATE INDEX tasks_dead ON {schema}.tasks (queue, id) WHERE state = 'dead';

-- 2. Wake-ups from row triggers whose WHEN clause is checked as each row is updated, so a
--    claim or a heartbeat (which match neither) queues no trigger event at all, and nothing
--    copies rows into transition tables. Same topics and rules as version 1: a task
--    entering a waiting state, or moving its run_at, wakes workers ('tasks'); an attempt
--    ending, or a cancel, wakes waiting clients ('outcomes'). PostgreSQL sends one
--    notification per topic per transaction however many rows fired.
DROP TRIGGER tasks_updated ON {schema}.tasks;
DROP FUNCTION {schema}.notify_tasks_updated();

CREATE FUNCTION {schema}.notify_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wrangle.' || TG_TABLE_SCHEMA, 'tasks');
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.notify_outcomes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wrangle.' || TG_TABLE_SCHEMA, 'outcomes');
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_waiting AFTER UPDATE ON {schema}.tasks FOR EACH ROW
    WHEN (NEW.state IN ('scheduled', 'available', 'retryable')
          AND (NEW.state <> OLD.state OR NEW.run_at <> OLD.run_at))
    EXECUTE FUNCTION {schema}.notify_tasks();

CREATE TRIGGER tasks_ended AFTER UPDATE ON {schema}.tasks FOR EACH ROW
    WHEN ((OLD.state = 'running' AND NEW.state <> 'running')
          OR (NEW.state = 'cancelled' AND OLD.state <> 'cancelled'))
    EXECUTE FUNCTION {schema}.notify_outcomes();

-- 3. An insert statement wakes workers without looking at its rows (no transition table),
--    except the one inside claim_blocks, whose blocks are inserted already running: claims
--    call it through claim_blocks_quietly, which sets `wrangle.claiming_blocks` around it
--    (the insert's statement trigger fires when that insert ends, inside the call). An
--    insert of nothing (every task a duplicate of a unique key) may wake workers for
--    nothing; they find nothing.
DROP TRIGGER tasks_inserted ON {schema}.tasks;
DROP FUNCTION {schema}.notify_tasks_inserted();

CREATE FUNCTION {schema}.notify_tasks_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('wrangle.claiming_blocks', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('wrangle.' || TG_TABLE_SCHEMA, 'tasks');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_inserted AFTER INSERT ON {schema}.tasks
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_tasks_inserted();

CREATE FUNCTION {schema}.claim_blocks_quietly(claimer text, lease_until_ms bigint,
                                              now_ms bigint, wanted bigint, queues text[])
RETURNS TABLE (id bigint, queue text, kind text, payload jsonb, attempt bigint,
               max_attempts bigint, timeout_ms bigint, job text, priority integer,
               run_at bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('wrangle.claiming_blocks', 'on', true);
    RETURN QUERY SELECT * FROM {schema}.claim_blocks(claimer, lease_until_ms, now_ms,
                                                    wanted, queues);
    PERFORM set_config('wrangle.claiming_blocks', '', true);
END $$;
