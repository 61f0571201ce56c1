-- The per-connection counter rows to fold into slot 0, locked; rows a writer holds right
-- now are skipped (folded next time), so folding never waits for a claim.
SELECT queue, state, slot, n FROM wrangle_queue_counts
WHERE slot <> 0
FOR UPDATE SKIP LOCKED
