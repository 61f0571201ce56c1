-- Locks the tasks a batch of completions names (ids sorted, so that two batches lock in
-- the same order and cannot deadlock) and reads what deciding each completion needs.
-- Binds: task ids (JSON array).
SELECT t.id, t.state, t.attempt, t.max_attempts, t.worker, t.started_at, t.run_at
FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS named
JOIN wrangle_tasks AS t ON t.id = named.id
FOR UPDATE
