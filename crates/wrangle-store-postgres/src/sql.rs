//! Every SQL statement of the store, loaded from `sql/*.sql` and bound to one schema.
//!
//! The files name tables as `{schema}.tasks`; [`Statements::for_schema`] replaces the
//! placeholder with the store's quoted schema once, at connect time. Statements are
//! schema-qualified rather than relying on `search_path` because `enqueue_in` runs on the
//! caller's own connection, whose `search_path` is the caller's business.

use std::sync::Arc;

use sqlx::AssertSqlSafe;

/// Declares [`Statements`]: one field per SQL file.
macro_rules! statements {
    ($($name:ident => $file:literal),+ $(,)?) => {
        /// The store's SQL, with its schema filled in.
        #[derive(Debug)]
        pub(crate) struct Statements {
            $(pub(crate) $name: Arc<str>,)+
        }

        impl Statements {
            /// Every statement, qualified with `schema` (an already validated identifier).
            pub(crate) fn for_schema(schema: &str) -> Self {
                let quoted = format!("\"{schema}\"");
                Statements {
                    $($name: include_str!(concat!("sql/", $file))
                        .replace("{schema}", &quoted)
                        .into(),)+
                }
            }
        }
    };
}

statements! {
    migrate_lock => "migrate_lock.sql",
    migrate_prepare => "migrate_prepare.sql",
    schema_version => "schema_version.sql",
    record_migration => "record_migration.sql",
    schema_v1 => "schema_v1.sql",
    schema_v2 => "schema_v2.sql",
    schema_v3 => "schema_v3.sql",
    schema_v4 => "schema_v4.sql",
    schema_v5 => "schema_v5.sql",
    schema_v6 => "schema_v6.sql",
    schema_v7 => "schema_v7.sql",
    tidy => "tidy.sql",
    enqueue => "enqueue.sql",
    existing_keys => "existing_keys.sql",
    reserve_ids => "reserve_ids.sql",
    enqueue_copy => "enqueue_copy.sql",
    claim => "claim.sql",
    complete => "complete.sql",
    heartbeat => "heartbeat.sql",
    rescue => "rescue.sql",
    vacuum => "vacuum.sql",
    get_task => "get_task.sql",
    list_tasks => "list_tasks.sql",
    lock_task => "lock_task.sql",
    retry_task => "retry_task.sql",
    retry_dead => "retry_dead.sql",
    cancel_task => "cancel_task.sql",
    cancel_tasks => "cancel_tasks.sql",
    retry_tasks => "retry_tasks.sql",
    prune_finished => "prune_finished.sql",
    pause_queue => "pause_queue.sql",
    resume_queue => "resume_queue.sql",
    queue_stats => "queue_stats.sql",
    register_worker => "register_worker.sql",
    deregister_worker => "deregister_worker.sql",
    list_workers => "list_workers.sql",
    prune_workers => "prune_workers.sql",
    send_command => "send_command.sql",
    pending_commands => "pending_commands.sql",
    ack_command => "ack_command.sql",
    get_command => "get_command.sql",
    create_job => "create_job.sql",
    get_job => "get_job.sql",
    list_jobs => "list_jobs.sql",
    cancel_job => "cancel_job.sql",
    job_tallies => "job_tallies.sql",
    log_append => "log_append.sql",
    log_read => "log_read.sql",
    take_turn => "take_turn.sql",
    delete_job => "delete_job.sql",
}

/// A statement in the form sqlx takes. The text is ours (files plus a validated schema
/// name), never user input, which is what `AssertSqlSafe` asserts.
pub(crate) fn sql(statement: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    AssertSqlSafe(Arc::clone(statement))
}
