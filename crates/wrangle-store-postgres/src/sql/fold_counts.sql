-- Folds the per-connection counter slots of `queue_counts` into slot 0, skipping rows a
-- writer holds right now (they are folded next time), so it never waits for a claim.
WITH moved AS (
    DELETE FROM {schema}.queue_counts
    WHERE (queue, state, slot) IN (
        SELECT queue, state, slot FROM {schema}.queue_counts
        WHERE slot <> 0
        FOR UPDATE SKIP LOCKED)
    RETURNING queue, state, n
)
INSERT INTO {schema}.queue_counts AS c (queue, state, slot, n)
SELECT queue, state, 0, sum(n) FROM moved GROUP BY queue, state
ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + excluded.n
