SELECT * FROM {schema}.jobs WHERE name = $1
