-- The per-connection job counter rows to fold into slot 0, locked; rows a writer holds
-- right now are skipped (folded next time), so folding never waits for a claim.
SELECT job, state, worker, slot, blocks, CAST(ids AS CHAR) AS ids FROM wrangle_job_counts
WHERE slot <> 0
FOR UPDATE SKIP LOCKED
