-- Deletes up to $2 tasks of job $1 (any state) with their log rings, and then either
-- marks the job cancelled (tasks may be left: no more blocks are made) or, when fewer than
-- $2 were left, removes its record. Nothing happens to an unknown job. Returns whether
-- the job was found, how many tasks went, and whether the record went.
WITH found AS (
    SELECT name FROM {schema}.jobs WHERE name = $1 FOR UPDATE
), gone AS (
    DELETE FROM {schema}.tasks WHERE id IN (
        SELECT id FROM {schema}.tasks WHERE job = $1 AND EXISTS (SELECT 1 FROM found)
        LIMIT $2)
    RETURNING id
), rings AS (
    DELETE FROM {schema}.logs WHERE owner IN (SELECT 'task:' || id FROM gone)
), cancelled AS (
    UPDATE {schema}.jobs SET cancelled = true
    WHERE name IN (SELECT name FROM found) AND (SELECT count(*) FROM gone) >= $2
), removed AS (
    DELETE FROM {schema}.jobs
    WHERE name IN (SELECT name FROM found) AND (SELECT count(*) FROM gone) < $2
    RETURNING name
)
SELECT EXISTS (SELECT 1 FROM found), (SELECT count(*) FROM gone), EXISTS (SELECT 1 FROM removed)
