-- Takes or renews duty $1 for holder $2 until $3, unless another holder has it after now
-- ($4); returns a row only when $2 holds it.
INSERT INTO {schema}.turns AS t (duty, holder, until) VALUES ($1, $2, $3)
ON CONFLICT (duty) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE t.holder = excluded.holder OR t.until <= $4
RETURNING holder
