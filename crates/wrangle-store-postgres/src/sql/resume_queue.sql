DELETE FROM {schema}.paused_queues WHERE queue = $1
