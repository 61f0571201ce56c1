-- Locks the tasks of a heartbeat that their worker still holds (running, same attempt,
-- same worker), in id order. Binds: JSON array of [id, attempt] sorted by id, worker.
SELECT t.id
FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$[0]', attempt BIGINT PATH '$[1]')) AS l
JOIN wrangle_tasks AS t ON t.id = l.id
WHERE t.state = 'running' AND t.attempt = l.attempt AND t.worker = ?
FOR UPDATE
