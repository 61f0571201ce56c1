-- Adds the sums in the JSON array bound ([queue, state, n] each, one per queue and state)
-- to slot 0.
INSERT INTO wrangle_queue_counts (queue, state, slot, n)
SELECT d.queue, d.state, 0, d.n FROM JSON_TABLE(?, '$[*]' COLUMNS (
    queue VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[0]',
    state VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[1]',
    n     BIGINT PATH '$[2]')) AS d
ON DUPLICATE KEY UPDATE n = wrangle_queue_counts.n + VALUES(n)
