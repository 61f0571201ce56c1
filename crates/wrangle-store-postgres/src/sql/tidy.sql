-- The pruner's tidying, one statement: folds the per-connection counter slots of
-- `queue_counts` and `job_counts` into slot 0, skipping rows a writer holds right now
-- (they are folded next time), so it never waits for a claim; and drops the per-second
-- counters more than two minutes older than the newest (no "last minute" reads them any
-- more). A job's groups left at zero stay until the job goes (readers skip them).
WITH moved AS (
    DELETE FROM {schema}.queue_counts
    WHERE (queue, state, slot) IN (
        SELECT queue, state, slot FROM {schema}.queue_counts
        WHERE slot <> 0
        FOR UPDATE SKIP LOCKED)
    RETURNING queue, state, n
), stale AS (
    DELETE FROM {schema}.recent_counts
    WHERE second < (SELECT max(second) FROM {schema}.recent_counts) - 120
), job_moved AS (
    DELETE FROM {schema}.job_counts
    WHERE (job, state, worker, slot) IN (
        SELECT job, state, worker, slot FROM {schema}.job_counts
        WHERE slot <> 0
        FOR UPDATE SKIP LOCKED)
    RETURNING job, state, worker, blocks, ids
), job_folded AS (
    INSERT INTO {schema}.job_counts AS c (job, state, worker, slot, blocks, ids)
    SELECT job, state, worker, 0, sum(blocks), sum(ids) FROM job_moved
    GROUP BY job, state, worker
    ON CONFLICT (job, state, worker, slot)
    DO UPDATE SET blocks = c.blocks + excluded.blocks, ids = c.ids + excluded.ids
), job_stale AS (
    DELETE FROM {schema}.job_recent
    WHERE second < (SELECT max(second) FROM {schema}.job_recent) - 120
)
INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
SELECT queue, state, 0, sum(n) FROM moved GROUP BY queue, state
ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n
