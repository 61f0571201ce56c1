-- wrangle MySQL / MariaDB schema, version 3: log rings (see wrangle_core::log). Same
-- conventions as version 1. One row per kept line; `owner` is `worker:NAME` or `task:ID`;
-- `seq` grows per owner and is never reused.
CREATE TABLE IF NOT EXISTS wrangle_logs (
    owner  VARCHAR(300) NOT NULL,
    seq    BIGINT       NOT NULL,
    at     BIGINT       NOT NULL,  -- epoch milliseconds
    source VARCHAR(16)  NOT NULL,  -- 'stdout', 'stderr' or 'log'
    text   LONGTEXT     NOT NULL,
    PRIMARY KEY (owner, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
-- The 'logs' wake-up topic, slotted like wrangle_topic_versions (a table of its own:
-- adding a column cannot be made safe to run twice on both MySQL and MariaDB).
CREATE TABLE IF NOT EXISTS wrangle_log_versions (
    slot INT    NOT NULL,
    logs BIGINT NOT NULL,
    PRIMARY KEY (slot)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
;
INSERT INTO wrangle_log_versions (slot, logs)
VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0),
       (10, 0), (11, 0), (12, 0), (13, 0), (14, 0), (15, 0)
ON DUPLICATE KEY UPDATE slot = slot
