-- Tasks newest first, each filter optional ($1 state, $2 queue, $3 job), below id $4
-- (paging), at most $5.
SELECT * FROM {schema}.tasks
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2)
  AND ($3::text IS NULL OR job = $3) AND id < $4
ORDER BY id DESC
LIMIT $5
