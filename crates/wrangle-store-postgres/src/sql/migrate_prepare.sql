-- Creates the schema and its migration ledger if missing; run under the migration lock.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()  -- for operators only; wrangle never reads it
);
