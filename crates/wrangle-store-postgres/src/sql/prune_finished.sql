-- Deletes up to $2 completed, dead or cancelled tasks that finished before $1, oldest
-- first (through `tasks_finished`).
DELETE FROM {schema}.tasks WHERE id IN (
    SELECT id FROM {schema}.tasks
    WHERE finished_at < $1 AND state IN ('completed', 'dead', 'cancelled')
    ORDER BY finished_at
    LIMIT $2)
