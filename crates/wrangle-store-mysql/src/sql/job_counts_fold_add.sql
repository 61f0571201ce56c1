-- Adds the sums in the JSON array bound ([job, state, worker, blocks, ids] each, ids as
-- decimal text) to slot 0.
INSERT INTO wrangle_job_counts (job, state, worker, slot, blocks, ids)
SELECT d.job, d.state, d.worker, 0, d.blocks, d.ids FROM JSON_TABLE(?, '$[*]' COLUMNS (
    job    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[0]',
    state  VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[1]',
    worker VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[2]',
    blocks BIGINT PATH '$[3]',
    ids    DECIMAL(65, 0) PATH '$[4]')) AS d
ON DUPLICATE KEY UPDATE blocks = wrangle_job_counts.blocks + VALUES(blocks),
                        ids = wrangle_job_counts.ids + VALUES(ids)
