-- Deletes up to $2 tasks in state $3 that finished before $1, oldest first (through
-- `tasks_finished`), with their log rings (a job's counters keep its tasks); returns how
-- many.
WITH gone AS (
    DELETE FROM {schema}.tasks WHERE id IN (
        SELECT id FROM {schema}.tasks
        WHERE finished_at < $1 AND state = $3
        ORDER BY finished_at
        LIMIT $2)
    RETURNING id
), rings AS (
    DELETE FROM {schema}.logs WHERE owner IN (SELECT 'task:' || id FROM gone)
)
SELECT count(*) FROM gone
