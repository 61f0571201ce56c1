-- Starts a claim with one plain (non-locking) read: the paused queues, as rows with a
-- queue, and the range job that would make blocks should the due tasks not fill the claim,
-- as at most one row with a job name: one with blocks left, its queue wanted and not
-- paused, first in claim order (priority descending, oldest, then by name). With no open
-- job this costs one probe of the empty non-NULL range of wrangle_jobs_open. The job is
-- only locked (by name) if the claim goes on to use it. Binds: all queues (bool), wanted
-- queues (JSON array).
(SELECT queue, NULL AS job FROM wrangle_paused_queues)
UNION ALL
(SELECT NULL, j.name
 FROM wrangle_jobs AS j FORCE INDEX (wrangle_jobs_open)
 WHERE j.open_rank IS NOT NULL
   AND (? OR JSON_CONTAINS(?, JSON_QUOTE(j.queue)))
   AND NOT EXISTS (SELECT 1 FROM wrangle_paused_queues AS p WHERE p.queue = j.queue)
 ORDER BY j.open_rank, j.created_at, j.name
 LIMIT 1)
