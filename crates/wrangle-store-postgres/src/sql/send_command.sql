INSERT INTO {schema}.commands (worker, command, sent_at) VALUES ($1, $2, $3) RETURNING id
