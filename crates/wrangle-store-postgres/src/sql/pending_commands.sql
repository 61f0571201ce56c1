SELECT * FROM {schema}.commands WHERE worker = $1 AND acked_at IS NULL ORDER BY id
