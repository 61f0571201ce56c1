INSERT INTO {schema}.paused_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING
