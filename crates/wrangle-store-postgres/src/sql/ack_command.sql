UPDATE {schema}.commands SET acked_at = $2, reply = $3 WHERE id = $1
