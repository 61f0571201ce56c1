//! Worker mailboxes: control commands sent through the store, and their acknowledgements.

use anyhow::{Result, ensure};
use serde_json::json;
use wrangle_core::{CommandEnvelope, ControlCommand, StoreError};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{at, heartbeat, register_workers};

cases![
    pending_commands_oldest_first_per_worker,
    ack_records_reply_and_clears_pending,
    heartbeat_reports_waiting_commands,
    ack_of_unknown_command_is_not_found,
];

/// An unacknowledged envelope, as `send_command` should have stored it.
fn pending(id: i64, worker: &str, command: ControlCommand, sent: i64) -> CommandEnvelope {
    CommandEnvelope {
        id,
        worker: worker.to_string(),
        command,
        sent_at: at(sent),
        acked_at: None,
        reply: None,
    }
}

/// `pending_commands` returns only that worker's unacknowledged commands, oldest first,
/// exactly as sent.
async fn pending_commands_oldest_first_per_worker(a: Handle, b: Handle) -> Result<()> {
    register_workers(&a, &["w1", "w2", "w3"]).await?;
    let pause = ControlCommand::Pause {
        queue: "emails".into(),
    };
    let scale = ControlCommand::Scale {
        queue: None,
        runners: 3,
    };
    let first = a.send_command("w1", pause.clone(), at(1)).await?;
    let other = a.send_command("w2", ControlCommand::Stop, at(2)).await?;
    let second = a.send_command("w1", scale.clone(), at(3)).await?;
    ensure!(
        first != other && other != second && first != second,
        "command ids repeat: {first}, {other}, {second}"
    );
    ensure_eq!(
        b.pending_commands("w1").await?,
        vec![
            pending(first, "w1", pause, 1),
            pending(second, "w1", scale, 3)
        ],
        "w1's mailbox"
    );
    ensure_eq!(
        b.pending_commands("w2").await?,
        vec![pending(other, "w2", ControlCommand::Stop, 2)],
        "w2's mailbox"
    );
    ensure_eq!(b.pending_commands("w3").await?, vec![], "w3's mailbox");
    Ok(())
}

/// An acknowledged command leaves the mailbox; `get_command` shows it with `acked_at`
/// and the reply. Unknown ids read as `None`.
async fn ack_records_reply_and_clears_pending(a: Handle, b: Handle) -> Result<()> {
    register_workers(&a, &["w1"]).await?;
    let reload = a.send_command("w1", ControlCommand::Reload, at(1)).await?;
    let resume = ControlCommand::Resume { queue: "q".into() };
    let later = a.send_command("w1", resume.clone(), at(2)).await?;
    let reply = json!({ "reloaded": 4, "note": "ok ✓" });
    b.ack_command(reload, reply.clone(), at(5)).await?;
    ensure_eq!(
        a.pending_commands("w1").await?,
        vec![pending(later, "w1", resume, 2)],
        "w1's mailbox"
    );
    ensure_eq!(
        a.get_command(reload).await?,
        Some(CommandEnvelope {
            acked_at: Some(at(5)),
            reply: Some(reply),
            ..pending(reload, "w1", ControlCommand::Reload, 1)
        }),
        "the acknowledged command"
    );
    ensure_eq!(
        a.get_command(later).await?.and_then(|c| c.acked_at),
        None,
        "acked_at of the pending command"
    );
    ensure_eq!(
        a.get_command(reload.max(later) + 1000).await?,
        None,
        "an unknown command"
    );
    Ok(())
}

/// A heartbeat's `commands_waiting` is true exactly while the worker's mailbox holds an
/// unacknowledged command.
async fn heartbeat_reports_waiting_commands(a: Handle, b: Handle) -> Result<()> {
    register_workers(&a, &["w1", "w2"]).await?;
    ensure!(
        !heartbeat(&a, "w1", vec![], at(1)).await?.commands_waiting,
        "commands_waiting before any command was sent"
    );
    let id = b.send_command("w1", ControlCommand::Stop, at(2)).await?;
    ensure!(
        heartbeat(&a, "w1", vec![], at(3)).await?.commands_waiting,
        "commands_waiting false while a command is pending"
    );
    ensure!(
        !heartbeat(&a, "w2", vec![], at(3)).await?.commands_waiting,
        "commands_waiting for a command sent to another worker"
    );
    b.ack_command(id, json!("stopping"), at(4)).await?;
    ensure!(
        !heartbeat(&a, "w1", vec![], at(5)).await?.commands_waiting,
        "commands_waiting after the only command was acknowledged"
    );
    Ok(())
}

/// Acknowledging an id the store never issued fails with `CommandNotFound`.
async fn ack_of_unknown_command_is_not_found(a: Handle, b: Handle) -> Result<()> {
    register_workers(&a, &["w1"]).await?;
    let known = a.send_command("w1", ControlCommand::Stop, at(1)).await?;
    let unknown = known + 1000;
    match b.ack_command(unknown, json!(null), at(2)).await {
        Err(StoreError::CommandNotFound(id)) if id == unknown => {}
        other => anyhow::bail!(
            "ack of unknown command {unknown}: expected CommandNotFound, got {other:?}"
        ),
    }
    ensure_eq!(a.pending_commands("w1").await?.len(), 1, "w1's mailbox");
    Ok(())
}
