-- wrangle SQLite schema, version 7: each job's counters, kept by triggers inside the
-- statements that insert and move its tasks, read by job progress instead of walking the
-- job's tasks (a million-block job took seconds to read).
--
-- A task of a job keeps the ids it stands for in `ids` (end - start of a range block,
-- else 1, as wrangle_core::job::ids_of_payload), written by the statement that inserts
-- it; NULL for a task of no job.
--
-- `job_counts`: a job's tasks per state and worker ('' for none): how many, and their
-- ids. `job_recent`: ids of a job's tasks that completed per second (second S holds those
-- that ended in (S-1, S] seconds). Deleting a task does not decrement them: a pruned
-- block stays counted as it ended, so progress stays exact however much was pruned. They
-- go with the job's record (a trigger), and `tidy` drops the seconds no minute reads.
ALTER TABLE tasks ADD COLUMN ids INTEGER;

UPDATE tasks
SET ids = CASE WHEN json_type(payload, '$.start') = 'integer'
                AND json_type(payload, '$.end') = 'integer'
                AND json_extract(payload, '$.end') >= json_extract(payload, '$.start')
               THEN json_extract(payload, '$.end') - json_extract(payload, '$.start')
               ELSE 1 END
WHERE job IS NOT NULL;

CREATE TABLE job_counts (
    job    TEXT    NOT NULL,
    state  TEXT    NOT NULL,
    worker TEXT    NOT NULL,
    blocks INTEGER NOT NULL,
    ids    INTEGER NOT NULL,
    PRIMARY KEY (job, state, worker)
) WITHOUT ROWID;

CREATE TABLE job_recent (
    job    TEXT    NOT NULL,
    second INTEGER NOT NULL,
    ids    INTEGER NOT NULL,
    PRIMARY KEY (job, second)
) WITHOUT ROWID;

INSERT INTO job_counts (job, state, worker, blocks, ids)
SELECT job, state, coalesce(worker, ''), count(*), sum(ids)
FROM tasks WHERE job IS NOT NULL
GROUP BY job, state, coalesce(worker, '');

CREATE TRIGGER tasks_job_counted_insert AFTER INSERT ON tasks
WHEN NEW.job IS NOT NULL
BEGIN
    INSERT INTO job_counts (job, state, worker, blocks, ids)
    VALUES (NEW.job, NEW.state, coalesce(NEW.worker, ''), 1, NEW.ids)
    ON CONFLICT (job, state, worker) DO UPDATE SET blocks = blocks + 1, ids = ids + excluded.ids;
END;

-- A move takes the task from its old group and adds it to the new one (a group at 0 stays
-- as a row; readers skip it); an attempt that completed adds its ids to its second.
CREATE TRIGGER tasks_job_counted_update AFTER UPDATE OF state, worker ON tasks
WHEN NEW.job IS NOT NULL AND (OLD.state IS NOT NEW.state OR OLD.worker IS NOT NEW.worker)
BEGIN
    UPDATE job_counts SET blocks = blocks - 1, ids = ids - OLD.ids
    WHERE job = OLD.job AND state = OLD.state AND worker = coalesce(OLD.worker, '');
    INSERT INTO job_counts (job, state, worker, blocks, ids)
    VALUES (NEW.job, NEW.state, coalesce(NEW.worker, ''), 1, NEW.ids)
    ON CONFLICT (job, state, worker) DO UPDATE SET blocks = blocks + 1, ids = ids + excluded.ids;
    INSERT INTO job_recent (job, second, ids)
    SELECT NEW.job, (NEW.finished_at + 999) / 1000, NEW.ids
    WHERE OLD.state = 'running' AND NEW.state = 'completed' AND NEW.finished_at IS NOT NULL
    ON CONFLICT (job, second) DO UPDATE SET ids = ids + excluded.ids;
END;

CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_counts WHERE job = OLD.name;
    DELETE FROM job_recent WHERE job = OLD.name;
END;
