-- Byte order (COLLATE "C"), as wrangle sorts names everywhere else.
SELECT * FROM {schema}.jobs ORDER BY name COLLATE "C"
