-- wrangle SQLite schema, version 1. Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,              -- JSON
    priority     INTEGER NOT NULL DEFAULT 0,
    state        TEXT    NOT NULL,
    run_at       INTEGER NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    timeout_ms   INTEGER,
    unique_key   TEXT,
    job          TEXT,
    result       TEXT,                          -- JSON
    error        TEXT,
    worker       TEXT,
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    attempts     TEXT    NOT NULL DEFAULT '[]'  -- JSON array of ended attempts
);

-- The claim walks this partial index in claim order. It holds only waiting tasks, so its
-- size (and the claim's cost) does not grow as completed tasks pile up.
CREATE INDEX tasks_due ON tasks (priority DESC, run_at, id)
    WHERE state IN ('scheduled', 'available', 'retryable');

-- Rescue of expired leases looks only at running tasks.
CREATE INDEX tasks_lease ON tasks (lease_until) WHERE state = 'running';

-- Listing by state, "finished in the last minute" and pruning of old finished tasks.
CREATE INDEX tasks_state ON tasks (state, finished_at);

CREATE UNIQUE INDEX tasks_unique ON tasks (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX tasks_job ON tasks (job) WHERE job IS NOT NULL;

CREATE TABLE paused_queues (queue TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE workers (
    name      TEXT PRIMARY KEY,
    info      TEXT NOT NULL,                    -- JSON WorkerInfo
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE commands (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    worker   TEXT    NOT NULL,
    command  TEXT    NOT NULL,                  -- JSON ControlCommand
    sent_at  INTEGER NOT NULL,
    acked_at INTEGER,
    reply    TEXT                               -- JSON
);
CREATE INDEX commands_pending ON commands (worker, id) WHERE acked_at IS NULL;

-- Cross-process wake-ups: writers bump a topic's version in the same transaction; the
-- listener of another process notices through PRAGMA data_version and reads these rows.
CREATE TABLE topic_versions (topic TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO topic_versions VALUES ('tasks', 0), ('outcomes', 0), ('commands', 0);
