-- Appends lines to their owners' rings and keeps each owner's newest $5. One element per
-- line in $1 owners, $2 at (epoch ms), $3 sources, $4 texts, each owner's lines in order
-- and already cut to $5 (so the DELETE, which does not see the rows this statement
-- inserts, never has to trim them). A line racing another writer of the same owner for
-- the same seq is dropped rather than failing the batch.
WITH input AS (
    SELECT owner, at, source, text, n
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])
         WITH ORDINALITY AS i(owner, at, source, text, n)
), newest AS (
    SELECT o.owner,
           coalesce((SELECT max(seq) FROM {schema}.logs l WHERE l.owner = o.owner), 0) AS seq
    FROM (SELECT DISTINCT owner FROM input) o
), inserted AS (
    INSERT INTO {schema}.logs (owner, seq, at, source, text)
    SELECT i.owner, newest.seq + row_number() OVER (PARTITION BY i.owner ORDER BY i.n),
           i.at, i.source, i.text
    FROM input i JOIN newest USING (owner)
    ON CONFLICT DO NOTHING
    RETURNING owner, seq
)
DELETE FROM {schema}.logs l
USING (SELECT owner, max(seq) AS top FROM inserted GROUP BY owner) t
WHERE l.owner = t.owner AND l.seq <= t.top - $5
