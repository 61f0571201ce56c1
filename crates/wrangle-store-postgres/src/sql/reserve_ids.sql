-- Takes $1 task ids from the tasks' identity sequence (named by PostgreSQL after the
-- table and column when schema_v1.sql created it), in increasing order, for a batch
-- enqueued with COPY (which cannot return the ids it inserts). The name is a constant, so
-- it is resolved once per statement, not once per id as pg_get_serial_sequence would be.
SELECT nextval('{schema}.tasks_id_seq') AS id
FROM generate_series(1, $1)
ORDER BY id
