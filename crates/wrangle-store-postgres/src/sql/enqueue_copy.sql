COPY {schema}.tasks (id, queue, kind, payload, priority, state, run_at, max_attempts,
                     timeout_ms, job, created_at) FROM STDIN
