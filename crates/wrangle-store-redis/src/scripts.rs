//! The Lua scripts behind every operation that must be atomic: each is
//! `lua/common.lua` (key names and shared task moves) followed by the operation's own
//! file, loaded once into a [`redis::Script`], which calls it by hash (EVALSHA) and loads
//! it again when the server forgot it (NOSCRIPT after a restart).

use redis::Script;

/// Builds the script for `lua/$file` with the shared helpers in front.
macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// Every script the store runs.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) claim: Script,
    pub(crate) complete: Script,
    pub(crate) heartbeat: Script,
    pub(crate) rescue: Script,
    pub(crate) retry: Script,
    pub(crate) retry_dead: Script,
    pub(crate) cancel: Script,
    pub(crate) prune_finished: Script,
    pub(crate) list_tasks: Script,
    pub(crate) queue_stats: Script,
    pub(crate) send_command: Script,
    pub(crate) pending_commands: Script,
    pub(crate) ack_command: Script,
    pub(crate) prune_workers: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            enqueue: script!("enqueue.lua"),
            claim: script!("claim.lua"),
            complete: script!("complete.lua"),
            heartbeat: script!("heartbeat.lua"),
            rescue: script!("rescue.lua"),
            retry: script!("retry.lua"),
            retry_dead: script!("retry_dead.lua"),
            cancel: script!("cancel.lua"),
            prune_finished: script!("prune_finished.lua"),
            list_tasks: script!("list_tasks.lua"),
            queue_stats: script!("queue_stats.lua"),
            send_command: script!("send_command.lua"),
            pending_commands: script!("pending_commands.lua"),
            ack_command: script!("ack_command.lua"),
            prune_workers: script!("prune_workers.lua"),
        }
    }
}
