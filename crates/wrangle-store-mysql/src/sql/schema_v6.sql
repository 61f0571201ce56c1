-- wrangle MySQL / MariaDB schema, version 6: each job's counters, kept by the same row
-- triggers that keep the queue counters (version 5), read by job progress instead of
-- walking the job's tasks (a million-block job took ten seconds to read). Same
-- conventions as version 5: per-connection slots folded by the pruner's turn
-- (`job_counts_fold_*.sql`), per-second buckets of the last minutes (`job_recent_drop.sql`).
--
-- `wrangle_job_counts`: a job's tasks per state and worker ('' for none): how many, and
-- the ids they stand for (`wrangle_job_ids`). `wrangle_job_recent`: ids of a job's tasks
-- that completed per second. Deleting a task does not decrement them: a pruned block stays
-- counted as it ended, so progress stays exact however much was pruned. They go with the
-- job's record (a trigger on `wrangle_jobs`).
CREATE TABLE IF NOT EXISTS wrangle_job_counts (
    job    VARCHAR(255)   NOT NULL,
    state  VARCHAR(16)    NOT NULL,
    worker VARCHAR(255)   NOT NULL,
    slot   BIGINT         NOT NULL,
    blocks BIGINT         NOT NULL,
    ids    DECIMAL(65, 0) NOT NULL,  -- no payload can make an addition overflow
    PRIMARY KEY (job, state, worker, slot)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
CREATE TABLE IF NOT EXISTS wrangle_job_recent (
    job    VARCHAR(255)   NOT NULL,
    second BIGINT         NOT NULL,
    slot   BIGINT         NOT NULL,
    ids    DECIMAL(65, 0) NOT NULL,
    PRIMARY KEY (job, second, slot)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
-- The ids a task of a job stands for: end - start when its payload has `start` and `end`
-- that are JSON integers within i64, end not before start, else 1 (as
-- wrangle_core::job::ids_of_payload).
DROP FUNCTION IF EXISTS wrangle_job_ids
;
CREATE FUNCTION wrangle_job_ids(payload LONGTEXT CHARACTER SET utf8mb4) RETURNS DECIMAL(65, 0)
DETERMINISTIC NO SQL
BEGIN
    DECLARE s, e DECIMAL(65, 0) DEFAULT NULL;
    IF JSON_VALID(payload) THEN
        IF JSON_TYPE(JSON_EXTRACT(payload, '$.start')) = 'INTEGER' THEN
            SET s = CAST(JSON_UNQUOTE(JSON_EXTRACT(payload, '$.start')) AS DECIMAL(65, 0));
        END IF;
        IF JSON_TYPE(JSON_EXTRACT(payload, '$.end')) = 'INTEGER' THEN
            SET e = CAST(JSON_UNQUOTE(JSON_EXTRACT(payload, '$.end')) AS DECIMAL(65, 0));
        END IF;
    END IF;
    IF s BETWEEN -9223372036854775808 AND 9223372036854775807
       AND e BETWEEN -9223372036854775808 AND 9223372036854775807 AND e >= s THEN
        RETURN e - s;
    END IF;
    RETURN 1;
END
;
-- Writers of older versions must not move tasks between the seed and the triggers. The
-- triggers are created again and the seed recomputed if this step is cut short and rerun.
LOCK TABLES wrangle_tasks WRITE, wrangle_jobs WRITE, wrangle_queue_counts WRITE,
    wrangle_recent_counts WRITE, wrangle_job_counts WRITE, wrangle_job_recent WRITE
;
DROP TRIGGER IF EXISTS wrangle_tasks_counted_insert
;
CREATE TRIGGER wrangle_tasks_counted_insert AFTER INSERT ON wrangle_tasks FOR EACH ROW
BEGIN
    INSERT INTO wrangle_queue_counts (queue, state, slot, n)
    VALUES (NEW.queue, NEW.state, CONNECTION_ID(), 1)
    ON DUPLICATE KEY UPDATE n = n + 1;
    IF NEW.job IS NOT NULL THEN
        INSERT INTO wrangle_job_counts (job, state, worker, slot, blocks, ids)
        VALUES (NEW.job, NEW.state, COALESCE(NEW.worker, ''), CONNECTION_ID(), 1,
                wrangle_job_ids(NEW.payload))
        ON DUPLICATE KEY UPDATE blocks = blocks + 1, ids = ids + VALUES(ids);
    END IF;
END
;
DROP TRIGGER IF EXISTS wrangle_tasks_counted_move
;
-- As version 5, and a task of a job that moves (state or worker) leaves its old group for
-- its new one; one that completed adds its ids to its second.
CREATE TRIGGER wrangle_tasks_counted_move AFTER UPDATE ON wrangle_tasks FOR EACH ROW
BEGIN
    DECLARE task_ids DECIMAL(65, 0);
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
    IF NEW.job IS NOT NULL AND (NEW.state <> OLD.state OR NOT (NEW.worker <=> OLD.worker)) THEN
        SET task_ids = wrangle_job_ids(NEW.payload);
        INSERT INTO wrangle_job_counts (job, state, worker, slot, blocks, ids)
        VALUES (OLD.job, OLD.state, COALESCE(OLD.worker, ''), CONNECTION_ID(), -1, -task_ids),
               (NEW.job, NEW.state, COALESCE(NEW.worker, ''), CONNECTION_ID(), 1, task_ids)
        ON DUPLICATE KEY UPDATE blocks = blocks + VALUES(blocks), ids = ids + VALUES(ids);
        IF OLD.state = 'running' AND NEW.state = 'completed' AND NEW.finished_at IS NOT NULL THEN
            INSERT INTO wrangle_job_recent (job, second, slot, ids)
            VALUES (NEW.job, (NEW.finished_at + 999) DIV 1000, CONNECTION_ID(), task_ids)
            ON DUPLICATE KEY UPDATE ids = ids + VALUES(ids);
        END IF;
    END IF;
END
;
DROP TRIGGER IF EXISTS wrangle_jobs_counters_dropped
;
CREATE TRIGGER wrangle_jobs_counters_dropped AFTER DELETE ON wrangle_jobs FOR EACH ROW
BEGIN
    DELETE FROM wrangle_job_counts WHERE job = OLD.name;
    DELETE FROM wrangle_job_recent WHERE job = OLD.name;
END
;
DELETE FROM wrangle_job_counts
;
INSERT INTO wrangle_job_counts (job, state, worker, slot, blocks, ids)
SELECT job, state, COALESCE(worker, ''), 0, COUNT(*), SUM(wrangle_job_ids(payload))
FROM wrangle_tasks WHERE job IS NOT NULL
GROUP BY job, state, COALESCE(worker, '')
;
UNLOCK TABLES
