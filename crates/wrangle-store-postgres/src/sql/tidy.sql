-- The pruner's tidying, one statement: folds the per-connection counter slots of
-- `queue_counts` into slot 0, skipping rows a writer holds right now (they are folded next
-- time), so it never waits for a claim; and drops the per-second outcome counters more
-- than two minutes older than the newest (no "last minute" reads them any more).
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
)
INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
SELECT queue, state, 0, sum(n) FROM moved GROUP BY queue, state
ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n
