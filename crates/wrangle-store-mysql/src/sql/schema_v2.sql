-- wrangle MySQL / MariaDB schema, version 2: jobs (see wrangle_core::job). Same conventions
-- as version 1: times in epoch milliseconds, names utf8mb4_bin, statements separated by a
-- line holding only ";", each one safe to run again.
--
-- A range job's blocks are not rows until a claim creates them: `next_start` is the job's
-- cursor (the start of the next block; `cursor` itself is a reserved word), and a claim
-- that finds fewer due tasks than it asked for locks the job's row, advances it and
-- inserts the blocks it takes as running tasks.
CREATE TABLE IF NOT EXISTS wrangle_jobs (
    name         VARCHAR(255) NOT NULL,
    kind         VARCHAR(16)  NOT NULL,  -- 'range' or 'list'
    queue        VARCHAR(255) NOT NULL,
    task_kind    VARCHAR(255) NOT NULL,
    priority     INT          NOT NULL,
    max_attempts BIGINT       NOT NULL,
    timeout_ms   BIGINT       NULL,
    start_id     BIGINT       NOT NULL,
    end_id       BIGINT       NOT NULL,  -- exclusive
    block_size   BIGINT       NOT NULL,
    next_start   BIGINT       NOT NULL,  -- the cursor
    cancelled    TINYINT      NOT NULL DEFAULT 0,
    created_at   BIGINT       NOT NULL,
    -- The claim order key while the job still has blocks to create (negated priority, as
    -- waiting_rank in wrangle_tasks: one ascending index walk in claim order on every
    -- server), NULL once it is exhausted or cancelled. Claims look for a job only in the
    -- non-NULL range of the index below, so finished jobs cost them nothing.
    open_rank    BIGINT AS (
        CASE WHEN cancelled = 0 AND next_start < end_id
             THEN 0 - CAST(priority AS SIGNED) END) STORED,
    PRIMARY KEY (name),
    -- Claims: open jobs in claim order (priority descending, then oldest, then by name).
    KEY wrangle_jobs_open (open_rank, created_at, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
