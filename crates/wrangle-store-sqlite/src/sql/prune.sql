-- Deletes up to ?2 tasks in state ?3 that finished before ?1, oldest first (a job's
-- counters keep its tasks); returns their ids (their log rings go next, in the same
-- transaction).
DELETE FROM tasks WHERE id IN (
    SELECT id FROM tasks
    WHERE state = ?3 AND finished_at < ?1
    ORDER BY finished_at
    LIMIT ?2)
RETURNING id
