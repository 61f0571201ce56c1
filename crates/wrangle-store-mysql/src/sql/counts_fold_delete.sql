-- Deletes the counter rows named in the JSON array bound ([queue, state, slot] each),
-- already locked by the caller.
DELETE c FROM wrangle_queue_counts c
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
    queue VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[0]',
    state VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[1]',
    slot  BIGINT PATH '$[2]')) AS d
  ON c.queue = d.queue AND c.state = d.state AND c.slot = d.slot
