SELECT * FROM {schema}.commands WHERE id = $1
