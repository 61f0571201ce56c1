-- Appends one owner's lines after its newest: ?1 owner, ?2 its newest seq so far, ?3 the
-- lines as a JSON array of [at_ms, source, text], oldest first.
INSERT INTO logs (owner, seq, at, source, text)
SELECT ?1, ?2 + key + 1, value ->> 0, value ->> 1, value ->> 2
FROM json_each(?3)
