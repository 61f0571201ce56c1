-- Everything `queue_stats` reports, in one statement (one snapshot), as tagged rows:
-- paused queues; task counts per queue and state (the counters' slots summed: O(queues x
-- states x connections), whatever the number of tasks); the oldest due waiting task per queue
-- (at now $1); attempts that ended in the minute before $1, per queue and outcome (the
-- per-second counters of `recent_counts`, at most sixty seconds of them).
SELECT 'paused' AS kind, queue, NULL::text AS state, 0::bigint AS n, NULL::bigint AS at
FROM {schema}.paused_queues
UNION ALL
SELECT 'count', queue, state, sum(n)::bigint, NULL FROM {schema}.queue_counts
GROUP BY queue, state HAVING sum(n) <> 0
UNION ALL
SELECT 'due', queue, NULL, 0, min(run_at) FROM {schema}.tasks
WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= $1
GROUP BY queue
UNION ALL
SELECT 'recent', queue, outcome, sum(n)::bigint, NULL FROM {schema}.recent_counts
WHERE second > ($1 + 999) / 1000 - 60 AND second <= ($1 + 999) / 1000
GROUP BY queue, outcome
