-- Creates job $1 unless the name is taken (then returns no row). The insert trigger wakes
-- idle workers when the job has blocks to create.
INSERT INTO {schema}.jobs (name, kind, queue, task_kind, priority, max_attempts, timeout_ms,
                           start_id, end_id, block, cursor, cancelled, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (name) DO NOTHING
RETURNING *
