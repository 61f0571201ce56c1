-- wrangle PostgreSQL schema, version 5: turns at maintenance duties (the pruner), so that
-- of many workers one at a time does each. `{schema}` is replaced by the store's schema.
CREATE TABLE {schema}.turns (
    duty   text   PRIMARY KEY,
    holder text   NOT NULL,
    until  bigint NOT NULL   -- epoch milliseconds
);
