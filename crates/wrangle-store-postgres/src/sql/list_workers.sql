-- Byte order (COLLATE "C"), as wrangle sorts names everywhere else.
SELECT info, last_seen FROM {schema}.workers ORDER BY name COLLATE "C"
