-- wrangle SQLite schema, version 6: attempts completed and failed per queue and second,
-- counted by a trigger inside the statement that ends them, read by queue_stats for "the
-- last minute" instead of walking the tasks that finished in it (as many as the
-- throughput times sixty). Second S holds the attempts that ended in (S-1, S] seconds (as
-- wrangle_core::store::recent_second); `outcome` is 'completed' or 'failed' (the task
-- became retryable or dead). `tidy` drops the seconds no minute reads any more.
CREATE TABLE recent_counts (
    queue   TEXT    NOT NULL,
    outcome TEXT    NOT NULL,
    second  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (queue, outcome, second)
) WITHOUT ROWID;

CREATE TRIGGER tasks_counted_ended AFTER UPDATE OF state ON tasks
WHEN OLD.state = 'running' AND NEW.state IN ('completed', 'retryable', 'dead')
     AND NEW.finished_at IS NOT NULL
BEGIN
    INSERT INTO recent_counts (queue, outcome, second, n)
    VALUES (NEW.queue, CASE NEW.state WHEN 'completed' THEN 'completed' ELSE 'failed' END,
            (NEW.finished_at + 999) / 1000, 1)
    ON CONFLICT (queue, outcome, second) DO UPDATE SET n = n + 1;
END;
