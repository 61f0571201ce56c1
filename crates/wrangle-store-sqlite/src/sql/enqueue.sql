INSERT INTO tasks (queue, kind, payload, priority, state, run_at, max_attempts, timeout_ms,
                   unique_key, job, ids, created_at)
SELECT value ->> '$.queue', value ->> '$.kind', value ->> '$.payload', value ->> '$.priority',
       value ->> '$.state', value ->> '$.run_at', value ->> '$.max_attempts',
       value ->> '$.timeout_ms', value ->> '$.unique_key', value ->> '$.job', value ->> '$.ids',
       ?2
FROM jsonb_each(?1) WHERE true
ON CONFLICT DO NOTHING
RETURNING id, unique_key
