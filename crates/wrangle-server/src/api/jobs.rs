//! Jobs: create a range or list job (the options of `wrangle job create`), read their
//! progress (from the stores' job counters: the same cost for ten blocks or ten million),
//! cancel, retry the dead blocks, delete.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use wrangle::jobs::{Job, JobProgress, NewJob};
use wrangle::parse::parse_name;

use super::{bad_body, bad_path, duration};
use crate::AppState;
use crate::api::tasks::Moved;
use crate::problem::Problem;

/// A job to create: a range of ids in blocks, or a list of items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateJob {
    /// Its unique name.
    #[schema(example = "backfill")]
    name: String,
    /// The handler of its blocks.
    #[schema(example = "scan")]
    kind: String,
    /// Ids `start..end`, in blocks of `block` ids (a range job).
    range: Option<RangeSpec>,
    /// One task per item, the item its payload (a list job).
    items: Option<Vec<Value>>,
    /// The queue of its blocks (`default` when absent).
    queue: Option<String>,
    /// Higher runs first.
    #[serde(default)]
    priority: i32,
    /// Retries of each block (3 when absent).
    #[schema(maximum = 1000)]
    retries: Option<u32>,
    /// The longest one attempt of a block may run (`10m`).
    timeout: Option<String>,
}

/// A range job's ids.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeSpec {
    /// First id.
    start: i64,
    /// One past the last id.
    end: i64,
    /// Ids per block.
    block: i64,
}

/// Every job's progress, by name.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    responses((status = 200, description = "Every job", body = Vec<JobProgress>))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Vec<JobProgress>>, Problem> {
    Ok(Json(wrangle::jobs::all_progress(&state.store).await?))
}

/// Creates a range job (one record: claims make its blocks) or a list job (one task per
/// item).
#[utoipa::path(
    post,
    path = "/api/jobs",
    tag = "jobs",
    request_body = CreateJob,
    responses(
        (status = 201, description = "Created", body = Job),
        (status = 400, description = "Bad input", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A job of that name exists", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateJob>, JsonRejection>,
) -> Result<(StatusCode, Json<Job>), Problem> {
    let Json(mut request) = body.map_err(bad_body)?;
    let bad = |e: wrangle::InputError| Problem::bad_request(e.to_string());
    let name = parse_name("name", &request.name).map_err(bad)?;
    let kind = parse_name("kind", &request.kind).map_err(bad)?;
    // The items are moved into the job, not copied: a list job may hold many.
    let items = request.items.take();
    let template = |job: NewJob| -> Result<NewJob, Problem> {
        let mut job = job
            .priority(request.priority)
            .retries(crate::api::tasks::retries(request.retries)?);
        if let Some(queue) = &request.queue {
            job = job.queue(parse_name("queue", queue).map_err(bad)?);
        }
        if let Some(timeout) = &request.timeout {
            job = job.timeout(duration("timeout", timeout)?);
        }
        Ok(job)
    };
    let job = match (&request.range, items) {
        (Some(range), None) => {
            let job = template(NewJob::range(
                name,
                kind,
                range.start,
                range.end,
                range.block,
            ))?;
            wrangle::jobs::create(&state.store, job).await?
        }
        (None, Some(items)) => {
            let job = template(NewJob::list(name, kind, items.len() as u64))?;
            wrangle::jobs::create_list(&state.store, job, items, &|_| {}).await?
        }
        _ => return Err(Problem::bad_request("give range or items (one of them)")),
    };
    Ok((StatusCode::CREATED, Json(job)))
}

/// A job's progress: blocks and ids done, failed, running and waiting, the rate over the
/// last minute, the ETA and each worker's share.
#[utoipa::path(
    get,
    path = "/api/jobs/{name}",
    tag = "jobs",
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "Its progress", body = JobProgress),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<JobProgress>, Problem> {
    let Path(name) = name.map_err(bad_path)?;
    Ok(Json(wrangle::jobs::progress(&state.store, &name).await?))
}

/// Deletes a job and every task of it (running ones are stopped by their workers).
#[utoipa::path(
    delete,
    path = "/api/jobs/{name}",
    tag = "jobs",
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "How many tasks went", body = Moved),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Moved>, Problem> {
    let Path(name) = name.map_err(bad_path)?;
    let tasks = wrangle::jobs::delete(&state.store, &name, &|_| {}).await?;
    Ok(Json(Moved::new(tasks)))
}

/// Cancels a job: no more blocks are made, its unfinished tasks are cancelled.
#[utoipa::path(
    post,
    path = "/api/jobs/{name}/cancel",
    tag = "jobs",
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "How many tasks were cancelled", body = Moved),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Moved>, Problem> {
    let Path(name) = name.map_err(bad_path)?;
    let tasks = wrangle::jobs::cancel(&state.store, &name).await?;
    Ok(Json(Moved::new(tasks)))
}

/// Runs a job's dead blocks again (and only those).
#[utoipa::path(
    post,
    path = "/api/jobs/{name}/retry",
    tag = "jobs",
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "How many blocks were retried", body = Moved),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn retry(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Moved>, Problem> {
    let Path(name) = name.map_err(bad_path)?;
    let tasks = wrangle::jobs::retry(&state.store, &name).await?;
    Ok(Json(Moved::new(tasks)))
}
