-- Adds to the versions of the notified topics on one slot row. Binds: tasks, outcomes,
-- commands increments (0 or 1), slot.
UPDATE wrangle_topic_versions
SET tasks = tasks + ?, outcomes = outcomes + ?, commands = commands + ?
WHERE slot = ?
