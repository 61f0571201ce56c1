-- Serializes migrations of one schema ($1 = 'wrangle.<schema>') across every process
-- starting at once; released when the migration transaction ends.
SELECT pg_advisory_xact_lock(hashtext($1))
