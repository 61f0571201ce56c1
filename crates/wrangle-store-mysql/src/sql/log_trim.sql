-- Drops lines numbered at or below a bound per owner, given as a JSON array of
-- [owner, bound].
DELETE g FROM wrangle_logs g
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
    owner VARCHAR(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$[0]',
    bound BIGINT       PATH '$[1]')) AS k
  ON g.owner = k.owner AND g.seq <= k.bound
