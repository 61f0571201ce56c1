-- Starts the attempts of the tasks claim_pick.sql locked, in one statement.
-- Binds: task ids (JSON array), worker, lease_until, now.
UPDATE wrangle_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS picked ON t.id = picked.id
SET t.state = 'running', t.attempt = t.attempt + 1, t.worker = ?, t.lease_until = ?,
    t.started_at = ?
