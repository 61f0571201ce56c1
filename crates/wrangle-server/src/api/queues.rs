//! Queues: their numbers (tasks per state, oldest wait, the last minute's outcomes, read
//! from the stores' counters), pause and resume.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use wrangle::store::QueueStats;

use super::bad_path;
use crate::AppState;
use crate::problem::Problem;

/// Every queue that has tasks or a pause setting, by name.
#[utoipa::path(
    get,
    path = "/api/queues",
    tag = "queues",
    responses((status = 200, description = "The queues", body = Vec<QueueStats>))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Vec<QueueStats>>, Problem> {
    Ok(Json(state.store.queue_stats(Utc::now()).await?))
}

/// Pauses a queue: workers claim none of its tasks until it is resumed.
#[utoipa::path(
    post,
    path = "/api/queues/{queue}/pause",
    tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses((status = 204, description = "Paused"))
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    queue: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    set_paused(state, queue, true).await
}

/// Resumes a paused queue.
#[utoipa::path(
    post,
    path = "/api/queues/{queue}/resume",
    tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses((status = 204, description = "Resumed"))
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    queue: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Problem> {
    set_paused(state, queue, false).await
}

async fn set_paused(
    state: AppState,
    queue: Result<Path<String>, PathRejection>,
    paused: bool,
) -> Result<StatusCode, Problem> {
    let Path(queue) = queue.map_err(bad_path)?;
    let queue = wrangle::parse::parse_name("queue", &queue)
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    state.store.set_queue_paused(&queue, paused).await?;
    Ok(StatusCode::NO_CONTENT)
}
