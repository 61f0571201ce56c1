-- Removes worker $1 and its log ring.
WITH ring AS (
    DELETE FROM {schema}.logs WHERE owner = 'worker:' || $1
)
DELETE FROM {schema}.workers WHERE name = $1
