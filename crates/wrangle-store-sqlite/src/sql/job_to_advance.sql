-- The range job a claim makes blocks from: blocks left, not cancelled, its queue not
-- paused and (?1 = NULL for every queue) among the claim's queues.
SELECT * FROM jobs INDEXED BY jobs_open
WHERE cancelled = 0 AND cursor < end_id
  AND queue NOT IN (SELECT queue FROM paused_queues)
  AND (?1 IS NULL OR queue IN (SELECT value FROM json_each(?1)))
ORDER BY priority DESC, created_at, name
LIMIT 1
