-- Deletes up to ?2 tasks of job ?1, whatever their state; returns their ids (their log
-- rings go next, in the same transaction).
DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE job = ?1 LIMIT ?2)
RETURNING id
