-- Drops the per-second counters of outcomes, and of ids jobs completed, more than two
-- minutes older than the newest: no "last minute" reads them any more. Job groups left
-- at 0 go too.
DELETE FROM recent_counts
WHERE second < (SELECT max(second) FROM recent_counts) - 120;
DELETE FROM job_recent
WHERE second < (SELECT max(second) FROM job_recent) - 120;
DELETE FROM job_counts WHERE blocks = 0;
