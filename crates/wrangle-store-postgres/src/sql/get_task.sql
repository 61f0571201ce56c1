SELECT * FROM {schema}.tasks WHERE id = $1
