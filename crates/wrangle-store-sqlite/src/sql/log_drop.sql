-- Drops the rings of the owners in the JSON array ?1.
DELETE FROM logs WHERE owner IN (SELECT value FROM json_each(?1))
