-- An operator action's first step: the task's state, locked until the action commits so
-- that no claim or completion slips in between the check and the change.
SELECT state FROM {schema}.tasks WHERE id = $1 FOR UPDATE
