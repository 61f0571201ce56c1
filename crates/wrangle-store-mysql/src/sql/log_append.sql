-- Inserts lines given as a JSON array of [owner, seq, at_ms, source, text]. A line racing
-- another writer of the same owner for the same seq is dropped rather than failing the
-- batch.
INSERT IGNORE INTO wrangle_logs (owner, seq, at, source, text)
SELECT l.owner, l.seq, l.at, l.source, l.text
FROM JSON_TABLE(?, '$[*]' COLUMNS (
    owner  VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[0]',
    seq    BIGINT       PATH '$[1]',
    at     BIGINT       PATH '$[2]',
    source VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[3]',
    text   LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[4]')) AS l
