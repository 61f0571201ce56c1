DELETE FROM {schema}.workers WHERE last_seen < $1 RETURNING name
