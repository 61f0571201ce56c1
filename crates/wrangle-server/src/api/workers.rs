//! Workers: the registered ones (with their pool groups, runner processes and memory), and
//! live control: scale, pause or resume a queue, reload, reload one runner, stop, each
//! answered with the worker's acknowledgement, as `wrangle workers` does.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use wrangle::WorkerRecord;
use wrangle::control::ControlCommand;

use super::{bad_body, bad_path};
use crate::AppState;
use crate::problem::Problem;

/// How long a command waits for the worker's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Every registered worker.
#[utoipa::path(
    get,
    path = "/api/workers",
    tag = "workers",
    responses((status = 200, description = "The workers", body = Vec<WorkerRecord>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<WorkerRecord>>, Problem> {
    Ok(Json(state.store.list_workers().await?))
}

/// A worker's answer to a command.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Acknowledged {
    /// Whether the worker did it.
    ok: bool,
    /// What it did, or why it could not.
    message: String,
}

/// Sends a command to a worker and waits (up to 10 s) for its acknowledgement.
#[utoipa::path(
    post,
    path = "/api/workers/{name}/commands",
    tag = "workers",
    params(("name" = String, Path, description = "The worker")),
    request_body = ControlCommand,
    responses(
        (status = 200, description = "The worker's answer", body = Acknowledged),
        (status = 404, description = "No such worker", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The worker did not answer in time", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn control(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<ControlCommand>, JsonRejection>,
) -> Result<Json<Acknowledged>, Problem> {
    let Path(name) = name.map_err(bad_path)?;
    let Json(command) = body.map_err(bad_body)?;
    let ack = wrangle::control::send_and_wait(&state.store, &name, command, ACK_TIMEOUT).await?;
    Ok(Json(Acknowledged {
        ok: ack.ok,
        message: ack.message,
    }))
}
