-- Drops the per-second outcome counters more than two minutes older than the newest: no
-- "last minute" reads them any more.
DELETE FROM recent_counts
WHERE second < (SELECT max(second) FROM recent_counts) - 120
