-- wrangle SQLite schema, version 4: turns at maintenance duties (the pruner), so that of
-- many workers one at a time does each. A turn is held until `until` (epoch ms).
CREATE TABLE turns (
    duty   TEXT    PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) WITHOUT ROWID;
