-- Extends the leases leases_lock.sql found held. Binds: task ids (JSON array), lease_until.
UPDATE wrangle_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS held ON t.id = held.id
SET t.lease_until = ?
