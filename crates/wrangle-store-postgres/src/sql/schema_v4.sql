-- wrangle PostgreSQL schema, version 4: log rings (see wrangle_core::log). `{schema}` is
-- replaced by the store's schema. One row per kept line; `owner` is `worker:NAME` or
-- `task:ID`; `seq` grows per owner and is never reused. The primary key serves both the
-- append (newest seq of an owner) and the read (lines after a seq).
CREATE TABLE {schema}.logs (
    owner  text   NOT NULL,
    seq    bigint NOT NULL,
    at     bigint NOT NULL,   -- epoch milliseconds
    source text   NOT NULL,   -- 'stdout', 'stderr' or 'log'
    text   text   NOT NULL,
    PRIMARY KEY (owner, seq)
);

-- Appends wake followers ('logs'): one notification per appending statement.
CREATE FUNCTION {schema}.notify_logs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wrangle.' || TG_TABLE_SCHEMA, 'logs');
    RETURN NULL;
END $$;

CREATE TRIGGER logs_appended AFTER INSERT ON {schema}.logs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_logs();
