-- wrangle MySQL / MariaDB schema, version 1. Times are milliseconds since the Unix epoch
-- (UTC) in BIGINT columns; JSON is kept as LONGTEXT (MySQL's JSON type would not decode as
-- text, and MariaDB's JSON is LONGTEXT anyway). Names compare byte for byte (utf8mb4_bin),
-- as in the other stores. Statements are separated by a line holding only ";"; each one
-- can run again (DDL commits on its own, so a step cut short is simply repeated).
CREATE TABLE IF NOT EXISTS wrangle_tasks (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    queue        VARCHAR(255) NOT NULL,
    kind         VARCHAR(255) NOT NULL,
    payload      LONGTEXT     NOT NULL,
    priority     INT          NOT NULL,
    state        VARCHAR(16)  NOT NULL,
    run_at       BIGINT       NOT NULL,
    attempt      BIGINT       NOT NULL DEFAULT 0,
    max_attempts BIGINT       NOT NULL,
    timeout_ms   BIGINT       NULL,
    unique_key   VARCHAR(512) NULL,
    job          VARCHAR(255) NULL,
    result       LONGTEXT     NULL,
    error        LONGTEXT     NULL,
    worker       VARCHAR(255) NULL,
    lease_until  BIGINT       NULL,
    created_at   BIGINT       NOT NULL,
    started_at   BIGINT       NULL,
    finished_at  BIGINT       NULL,
    attempts     LONGTEXT     NOT NULL,  -- JSON array of ended attempts
    -- The claim order key while the task waits (negated priority, so that one ascending
    -- index walks highest priority first on every server: MariaDB before 10.8 ignores DESC
    -- in index definitions), NULL otherwise. MySQL has no partial indexes; all finished
    -- tasks share the NULL key, which the claim's range skips in one seek, so a claim costs
    -- the same however many finished tasks pile up.
    waiting_rank BIGINT AS (
        CASE WHEN state IN ('scheduled', 'available', 'retryable')
             THEN 0 - CAST(priority AS SIGNED) END) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY wrangle_tasks_unique (unique_key),
    -- Claims walk this in claim order: priority descending, run_at, id.
    KEY wrangle_tasks_waiting (waiting_rank, run_at, id),
    -- Rescue of expired leases: running tasks by lease end.
    KEY wrangle_tasks_lease (state, lease_until),
    -- Listing by state and pruning of old finished tasks.
    KEY wrangle_tasks_finished (state, finished_at),
    -- Per-queue numbers for `wrangle status`.
    KEY wrangle_tasks_queue (queue, state, finished_at),
    KEY wrangle_tasks_job (job)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
CREATE TABLE IF NOT EXISTS wrangle_paused_queues (
    queue VARCHAR(255) NOT NULL,
    PRIMARY KEY (queue)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
CREATE TABLE IF NOT EXISTS wrangle_workers (
    name      VARCHAR(255) NOT NULL,
    info      LONGTEXT     NOT NULL,  -- JSON WorkerInfo
    last_seen BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
CREATE TABLE IF NOT EXISTS wrangle_commands (
    id       BIGINT       NOT NULL AUTO_INCREMENT,
    worker   VARCHAR(255) NOT NULL,
    command  LONGTEXT     NOT NULL,  -- JSON ControlCommand
    sent_at  BIGINT       NOT NULL,
    acked_at BIGINT       NULL,
    reply    LONGTEXT     NULL,      -- JSON
    PRIMARY KEY (id),
    -- A worker's mailbox: its unacknowledged commands, oldest first.
    KEY wrangle_commands_pending (worker, acked_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
-- Cross-process wake-ups: a writer adds 1 to the topics it notifies, in its own
-- transaction, on one of 16 slot rows picked in turn, so that concurrent writers rarely
-- queue on one row lock; a listener polls the sums.
CREATE TABLE IF NOT EXISTS wrangle_topic_versions (
    slot     INT    NOT NULL,
    tasks    BIGINT NOT NULL,
    outcomes BIGINT NOT NULL,
    commands BIGINT NOT NULL,
    PRIMARY KEY (slot)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
INSERT INTO wrangle_topic_versions (slot, tasks, outcomes, commands)
VALUES (0, 0, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0), (3, 0, 0, 0), (4, 0, 0, 0), (5, 0, 0, 0),
       (6, 0, 0, 0), (7, 0, 0, 0), (8, 0, 0, 0), (9, 0, 0, 0), (10, 0, 0, 0), (11, 0, 0, 0),
       (12, 0, 0, 0), (13, 0, 0, 0), (14, 0, 0, 0), (15, 0, 0, 0)
ON DUPLICATE KEY UPDATE slot = slot
