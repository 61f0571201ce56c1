-- The newest seq of each owner in the JSON array bound (0 for an owner with no ring).
SELECT o.owner, CAST(COALESCE((SELECT MAX(l.seq) FROM wrangle_logs l WHERE l.owner = o.owner), 0) AS SIGNED)
FROM JSON_TABLE(?, '$[*]' COLUMNS (owner VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$')) AS o
