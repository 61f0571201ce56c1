UPDATE tasks SET lease_until = ?1
FROM (SELECT value ->> '$[0]' AS id, value ->> '$[1]' AS attempt FROM jsonb_each(?2)) AS l
WHERE tasks.id = l.id AND +tasks.state = 'running' AND tasks.attempt = l.attempt
  AND tasks.worker = ?3
RETURNING tasks.id
