-- Ends a batch of attempts (completions or rescues) in one statement. The new values were
-- decided from the rows attempts_lock.sql or rescue_lock.sql locked, so no assignment
-- reads a column another assignment changes (MySQL does not order the assignments of a
-- multi-table UPDATE). Text columns name their character set: MariaDB would read them
-- in the server's default one (often latin1). Binds: JSON array of
-- {id, state, run_at, attempt, finished_at?, result?, error?, keep_error, record: {…}}.
-- A success comes without a record and appends none: readers imply it (completed is
-- final; see wrangle_core::stored::imply_success), which spares rewriting the history.
UPDATE wrangle_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
    id              BIGINT                                                   PATH '$.id',
    state           VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin    PATH '$.state',
    run_at          BIGINT                                                   PATH '$.run_at',
    attempt         BIGINT                                                   PATH '$.attempt',
    finished_at     BIGINT                                                   PATH '$.finished_at',
    result          LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin       PATH '$.result',
    error           LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin       PATH '$.error',
    keep_error      INT                                                      PATH '$.keep_error',
    rec_attempt     BIGINT                                                   PATH '$.record.attempt',
    rec_worker      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin   PATH '$.record.worker',
    rec_started_at  BIGINT                                                   PATH '$.record.started_at',
    rec_finished_at BIGINT                                                   PATH '$.record.finished_at',
    rec_outcome     VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin    PATH '$.record.outcome',
    rec_error       LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin       PATH '$.record.error',
    rec_retry_at    BIGINT                                                   PATH '$.record.retry_at'
)) AS ended ON t.id = ended.id
SET t.attempts = IF(ended.rec_outcome IS NULL, t.attempts,
        JSON_ARRAY_APPEND(t.attempts, '$', JSON_OBJECT(
            'attempt', ended.rec_attempt, 'worker', ended.rec_worker,
            'started_at', ended.rec_started_at, 'finished_at', ended.rec_finished_at,
            'outcome', ended.rec_outcome, 'error', ended.rec_error,
            'retry_at', ended.rec_retry_at))),
    t.state = ended.state,
    t.run_at = ended.run_at,
    t.attempt = ended.attempt,
    t.finished_at = COALESCE(ended.finished_at, t.finished_at),
    t.result = COALESCE(ended.result, t.result),
    t.error = IF(ended.keep_error = 1, t.error, ended.error),
    t.lease_until = NULL
