-- wrangle SQLite schema, version 3: log rings (see wrangle_core::log). One row per kept
-- line; `owner` is `worker:NAME` or `task:ID`, `seq` grows per owner and is never reused.
CREATE TABLE logs (
    owner  TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,   -- epoch milliseconds
    source TEXT    NOT NULL,   -- 'stdout', 'stderr' or 'log'
    text   TEXT    NOT NULL,
    PRIMARY KEY (owner, seq)
) WITHOUT ROWID;

INSERT INTO topic_versions VALUES ('logs', 0);
