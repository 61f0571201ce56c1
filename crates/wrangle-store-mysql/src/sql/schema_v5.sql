-- wrangle MySQL / MariaDB schema, version 5: tasks per queue and state as counters, kept
-- by triggers inside the statements that insert, move and delete tasks (so they never
-- drift from the rows, whoever writes), read by queue_stats instead of counting every
-- task. Same conventions as version 1.
--
-- Each connection adds to rows of its own, `slot` = CONNECTION_ID(): a claim and a
-- completion on two connections never wait for each other on a counter row, and two
-- transactions cannot deadlock on counters whatever order they move tasks in. Readers sum
-- the slots. The pruner's turn folds the slots into slot 0 (`counts_fold_*.sql`, skipping
-- rows a writer holds), so the table holds about queues x states x live connections rows.
--
-- The trigger that counts a running task's move to completed, retryable or dead also
-- counts the attempt in `wrangle_recent_counts`, per queue, outcome and second (second S
-- holds the attempts that ended in (S-1, S] seconds, as wrangle_core::store::recent_second),
-- so "completed and failed in the last minute" reads at most sixty seconds of counters
-- instead of every task that finished in the minute. The pruner's turn drops the seconds
-- no minute reads any more.
--
-- On a server that writes a binary log, creating triggers takes the SUPER privilege or
-- `log_bin_trust_function_creators = 1` (managed servers such as RDS set the latter in a
-- parameter group).
CREATE TABLE IF NOT EXISTS wrangle_queue_counts (
    queue VARCHAR(255) NOT NULL,
    state VARCHAR(16)  NOT NULL,
    slot  BIGINT       NOT NULL,
    n     BIGINT       NOT NULL,
    PRIMARY KEY (queue, state, slot)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
CREATE TABLE IF NOT EXISTS wrangle_recent_counts (
    queue   VARCHAR(255) NOT NULL,
    outcome VARCHAR(16)  NOT NULL,  -- 'completed' or 'failed'
    second  BIGINT       NOT NULL,
    slot    BIGINT       NOT NULL,
    n       BIGINT       NOT NULL,
    PRIMARY KEY (queue, outcome, second, slot)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
-- Writers of older versions must not move tasks between the seed and the triggers. The
-- triggers are created again and the seed recomputed if this step is cut short and rerun.
LOCK TABLES wrangle_tasks WRITE, wrangle_queue_counts WRITE, wrangle_recent_counts WRITE
;
DROP TRIGGER IF EXISTS wrangle_tasks_counted_insert
;
CREATE TRIGGER wrangle_tasks_counted_insert AFTER INSERT ON wrangle_tasks FOR EACH ROW
    INSERT INTO wrangle_queue_counts (queue, state, slot, n)
    VALUES (NEW.queue, NEW.state, CONNECTION_ID(), 1)
    ON DUPLICATE KEY UPDATE n = n + 1
;
DROP TRIGGER IF EXISTS wrangle_tasks_counted_delete
;
CREATE TRIGGER wrangle_tasks_counted_delete AFTER DELETE ON wrangle_tasks FOR EACH ROW
    INSERT INTO wrangle_queue_counts (queue, state, slot, n)
    VALUES (OLD.queue, OLD.state, CONNECTION_ID(), -1)
    ON DUPLICATE KEY UPDATE n = n - 1
;
DROP TRIGGER IF EXISTS wrangle_tasks_counted_move
;
-- Updates are the hot path (claims, completions, heartbeats): only a change of state or
-- queue touches the counters, so a heartbeat writes nothing more.
CREATE TRIGGER wrangle_tasks_counted_move AFTER UPDATE ON wrangle_tasks FOR EACH ROW
BEGIN
    IF NEW.state <> OLD.state OR NEW.queue <> OLD.queue THEN
        INSERT INTO wrangle_queue_counts (queue, state, slot, n)
        VALUES (OLD.queue, OLD.state, CONNECTION_ID(), -1),
               (NEW.queue, NEW.state, CONNECTION_ID(), 1)
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
    IF OLD.state = 'running' AND NEW.state IN ('completed', 'retryable', 'dead')
       AND NEW.finished_at IS NOT NULL THEN
        INSERT INTO wrangle_recent_counts (queue, outcome, second, slot, n)
        VALUES (NEW.queue, IF(NEW.state = 'completed', 'completed', 'failed'),
                (NEW.finished_at + 999) DIV 1000, CONNECTION_ID(), 1)
        ON DUPLICATE KEY UPDATE n = n + 1;
    END IF;
END
;
DELETE FROM wrangle_queue_counts
;
INSERT INTO wrangle_queue_counts (queue, state, slot, n)
SELECT queue, state, 0, COUNT(*) FROM wrangle_tasks GROUP BY queue, state
;
UNLOCK TABLES
