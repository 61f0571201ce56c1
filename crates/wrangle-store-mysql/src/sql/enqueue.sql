-- The head of the multi-row INSERT of an enqueue; one "(?, …)" group of ENQUEUE_ROW
-- follows per task. A plain multi-row INSERT is a "simple insert" to InnoDB: its ids are
-- allocated in one block, in row order.
INSERT INTO wrangle_tasks (queue, kind, payload, priority, state, run_at, max_attempts,
                           timeout_ms, unique_key, job, created_at, attempts)
VALUES 
