-- Claims up to $4 tasks for worker $1 at now $3, leased until $2, from the queues in $5
-- (NULL = every queue), skipping paused queues: due tasks first, then, if fewer than $4
-- were due, new blocks of range jobs (claim_blocks, schema_v2.sql, called through
-- claim_blocks_quietly, schema_v3.sql). One round trip.
-- Rows come back in no particular order; `block` tells new blocks (handed out after the
-- due tasks, in id order) from due tasks (in claim order).
WITH due AS (
    -- The due tasks, in claim order through the partial index `tasks_due`; FOR UPDATE SKIP
    -- LOCKED makes concurrent claimers pass over each other's rows instead of waiting. It
    -- is a CTE so the planner cannot turn the LIMIT into a nested loop that updates more
    -- rows than asked (Oban's "optimization fence"). It returns the locked row versions'
    -- ctids: the UPDATE fetches exactly those (a TID scan), which no one else can change
    -- while this statement holds their locks, instead of finding each again through the
    -- primary key.
    SELECT ctid FROM {schema}.tasks
    WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= $3
      AND ($5::text[] IS NULL OR queue = ANY($5::text[]))
      AND queue NOT IN (SELECT queue FROM {schema}.paused_queues)
    ORDER BY priority DESC, run_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE {schema}.tasks AS t
    SET state = 'running', attempt = t.attempt + 1, worker = $1, lease_until = $2,
        started_at = $3
    WHERE t.ctid = ANY (ARRAY(SELECT ctid FROM due))
    RETURNING t.id, t.queue, t.kind, t.payload, t.attempt, t.max_attempts, t.timeout_ms,
              t.job, t.priority, t.run_at
),
blocks AS (
    -- Only when the due tasks this statement locked (so those it claims) fell short and a
    -- job it could take exists: these conditions have no column of the function's in them,
    -- so they are a one-time filter, checked before the function is called. A claim that
    -- fills up on due tasks pays for counting them; one that falls short with no job to
    -- take (the idle worker's last claim before it sleeps) pays for one probe of
    -- `jobs_claimable`, which holds only jobs with blocks left. The probe sees this
    -- statement's snapshot: a job created since then is found by the next claim, which
    -- its creation wakes (the trigger notifies on commit).
    -- The probe is a scalar subquery in claim order, not EXISTS: the planner strips ORDER
    -- BY and LIMIT from EXISTS and, as it cannot estimate `cursor < end_id`, would rather
    -- scan the table (every finished job) than the index.
    SELECT * FROM {schema}.claim_blocks_quietly($1, $2, $3, $4 - (SELECT count(*) FROM due), $5)
    WHERE (SELECT count(*) FROM due) < $4
      AND (SELECT true FROM {schema}.jobs AS j
           WHERE NOT j.cancelled AND j.cursor < j.end_id
             AND ($5::text[] IS NULL OR j.queue = ANY($5::text[]))
             AND j.queue NOT IN (SELECT queue FROM {schema}.paused_queues)
           ORDER BY j.priority DESC, j.created_at, j.name COLLATE "C"
           LIMIT 1)
)
SELECT *, false AS block FROM claimed
UNION ALL
SELECT *, true AS block FROM blocks
