-- wrangle SQLite schema, version 5: tasks per queue and state as counters, kept by
-- triggers inside the statements that insert, move and delete tasks (so they can never
-- drift from the rows), read by queue_stats instead of counting every task: `wrangle
-- status`, `top` and the console cost the same with ten million finished tasks kept as
-- with none. A counter at 0 stays as a row; readers skip it.
CREATE TABLE queue_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

INSERT INTO queue_counts (queue, state, n)
SELECT queue, state, count(*) FROM tasks GROUP BY queue, state;

CREATE TRIGGER tasks_counted_insert AFTER INSERT ON tasks
BEGIN
    INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_counted_delete AFTER DELETE ON tasks
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
END;

CREATE TRIGGER tasks_counted_update AFTER UPDATE OF state, queue ON tasks
WHEN OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;
