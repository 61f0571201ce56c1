-- Drops the per-second counters of ids jobs completed more than two minutes older than the
-- newest: no "last minute" reads them any more.
DELETE FROM wrangle_job_recent
WHERE second < (SELECT newest FROM (SELECT MAX(second) AS newest FROM wrangle_job_recent) AS m) - 120
