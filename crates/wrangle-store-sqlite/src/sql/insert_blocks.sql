-- New blocks of a job (?1, JSON array of [start, end]), already running under worker ?2
-- until ?3, claimed at ?4, each standing for end - start ids; the rest comes from the job
-- row (?5).
INSERT INTO tasks (queue, kind, payload, priority, state, run_at, attempt, max_attempts,
                   timeout_ms, job, worker, lease_until, created_at, started_at, ids)
SELECT j.queue, j.task_kind,
       json_object('start', json_extract(b.value, '$[0]'), 'end', json_extract(b.value, '$[1]')),
       j.priority, 'running', ?4, 1, j.max_attempts, j.timeout_ms, j.name, ?2, ?3, ?4, ?4,
       json_extract(b.value, '$[1]') - json_extract(b.value, '$[0]')
FROM json_each(?1) AS b, jobs AS j
WHERE j.name = ?5
ORDER BY b.key
RETURNING id
