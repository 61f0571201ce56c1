-- Drops the rings of the owners in the JSON array bound.
DELETE g FROM wrangle_logs g
JOIN JSON_TABLE(?, '$[*]' COLUMNS (owner VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$')) AS k ON g.owner = k.owner
