-- The head of the multi-row INSERT of the blocks a claim makes from a job; one
-- "(?, …)" group of JOB_BLOCK_ROW follows per block. The blocks start running at once
-- (attempt 1, leased to the claimer). Like an enqueue, this is a "simple insert" to InnoDB:
-- its ids are allocated in one block, in row order, under every innodb_autoinc_lock_mode.
INSERT INTO wrangle_tasks (queue, kind, payload, priority, state, run_at, attempt,
                           max_attempts, timeout_ms, job, worker, lease_until, created_at,
                           started_at, attempts)
VALUES 
