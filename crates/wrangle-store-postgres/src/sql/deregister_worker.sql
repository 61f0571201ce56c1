DELETE FROM {schema}.workers WHERE name = $1
