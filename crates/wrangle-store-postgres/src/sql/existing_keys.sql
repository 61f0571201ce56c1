-- The tasks holding these unique keys ($1 = text[]). Needed only when a concurrent
-- enqueue committed a key after the enqueue statement's snapshot was taken.
SELECT id, unique_key FROM {schema}.tasks WHERE unique_key = ANY($1)
