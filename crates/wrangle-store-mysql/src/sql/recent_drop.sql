-- Drops the per-second outcome counters more than two minutes older than the newest: no
-- "last minute" reads them any more.
DELETE FROM wrangle_recent_counts
WHERE second < (SELECT newest FROM (SELECT MAX(second) AS newest FROM wrangle_recent_counts) AS m) - 120
