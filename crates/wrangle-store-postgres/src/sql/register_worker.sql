INSERT INTO {schema}.workers (name, info, last_seen) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen
