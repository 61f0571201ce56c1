-- Up to $3 lines of owner $1 numbered above $2, oldest first.
SELECT seq, at, source, text FROM {schema}.logs
WHERE owner = $1 AND seq > $2
ORDER BY seq
LIMIT $3
