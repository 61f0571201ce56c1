-- Removes the entries claimed and finished tasks left in the indexes the claim and rescue
-- walk (see vacuum.rs). INDEX_CLEANUP ON: PostgreSQL may otherwise skip the index pass when
-- few heap pages hold dead rows, and the index pass is the point.
VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) {schema}.tasks
