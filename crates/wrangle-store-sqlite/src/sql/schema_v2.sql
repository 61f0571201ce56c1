-- wrangle SQLite schema, version 2: jobs. A range job's blocks are created by claims
-- from its cursor (see wrangle_core::job); the row is all a job costs until then.
CREATE TABLE jobs (
    name         TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,          -- 'range' or 'list'
    queue        TEXT    NOT NULL,
    task_kind    TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    timeout_ms   INTEGER,
    start_id     INTEGER NOT NULL,
    end_id       INTEGER NOT NULL,
    block        INTEGER NOT NULL,
    cursor       INTEGER NOT NULL,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- Claims look only at jobs with blocks left, in the order they take them.
CREATE INDEX jobs_open ON jobs (priority DESC, created_at, name)
    WHERE cancelled = 0 AND cursor < end_id;
