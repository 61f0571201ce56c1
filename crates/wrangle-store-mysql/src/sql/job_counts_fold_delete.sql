-- Deletes the job counter rows named in the JSON array bound ([job, state, worker, slot]
-- each), already locked by the caller.
DELETE c FROM wrangle_job_counts c
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
    job    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[0]',
    state  VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[1]',
    worker VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[2]',
    slot   BIGINT PATH '$[3]')) AS d
  ON c.job = d.job AND c.state = d.state AND c.worker = d.worker AND c.slot = d.slot
