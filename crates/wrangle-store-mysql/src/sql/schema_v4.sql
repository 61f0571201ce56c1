-- wrangle MySQL / MariaDB schema, version 4: turns at maintenance duties (the pruner), so
-- that of many workers one at a time does each. Same conventions as version 1.
CREATE TABLE IF NOT EXISTS wrangle_turns (
    duty   VARCHAR(255) NOT NULL,
    holder VARCHAR(255) NOT NULL,
    until  BIGINT       NOT NULL,  -- epoch milliseconds
    PRIMARY KEY (duty)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
