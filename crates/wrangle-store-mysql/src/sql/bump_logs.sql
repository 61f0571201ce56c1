-- Adds 1 to the 'logs' topic's version on one slot row. Bind: slot.
UPDATE wrangle_log_versions SET logs = logs + 1 WHERE slot = ?
