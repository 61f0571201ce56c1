-- Cancels task $1 at now $2. A running attempt ends with a `cancelled` record; its worker
-- learns it at its next heartbeat (the lease is gone).
UPDATE {schema}.tasks SET
    attempts = CASE WHEN state = 'running'
        THEN attempts || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'worker', worker, 'started_at', started_at,
            'finished_at', $2, 'outcome', 'cancelled'))
        ELSE attempts END,
    state = 'cancelled', finished_at = $2, lease_until = NULL
WHERE id = $1
RETURNING *
