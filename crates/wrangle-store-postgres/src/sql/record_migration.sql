INSERT INTO {schema}.schema_migrations (version) VALUES ($1)
