//! Tasks: submit one or a batch (the options of `wrangle submit`), read one, wait for its
//! outcome (a long poll woken by the store's notifications), list with filters a page at a
//! time, retry, cancel, and the dead set in bulk (retry, discard).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use wrangle::log::{LogLine, LogOwner};
use wrangle::parse::{parse_name, parse_time};
use wrangle::{Enqueued, NewTask, Task, TaskFilter, TaskId, TaskState};

use super::{bad_body, bad_path, bad_query, duration};
use crate::problem::Problem;
use crate::{AppState, KindDefaults};

/// Tasks a page lists unless asked for fewer.
const DEFAULT_PAGE: usize = 50;
/// The most tasks a page lists.
const MAX_PAGE: usize = 1000;
/// The most retries a task or job block may be given over the API.
pub(crate) const MAX_RETRIES: u32 = 1000;
/// How long a wait lasts unless asked otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest wait one request may ask for (clients wait again after).
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The retries asked for (the default when absent), at most [`MAX_RETRIES`].
pub(crate) fn retries(asked: Option<u32>) -> Result<u32, Problem> {
    match asked.unwrap_or(wrangle::DEFAULT_RETRIES) {
        retries @ 0..=MAX_RETRIES => Ok(retries),
        _ => Err(Problem::bad_request(format!(
            "retries: at most {MAX_RETRIES}"
        ))),
    }
}

/// The `limit` of a page, `default` when absent: 1 to [`MAX_PAGE`].
fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, Problem> {
    match limit.unwrap_or(default) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(Problem::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}"
        ))),
    }
}

/// A task to submit: the options of `wrangle submit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitRequest {
    /// Which handler runs it.
    #[schema(example = "resize")]
    kind: String,
    /// Its arguments, any JSON (null when absent).
    #[serde(default)]
    payload: Value,
    /// The queue (`default` when absent).
    queue: Option<String>,
    /// Higher runs first.
    #[serde(default)]
    priority: i32,
    /// Start no sooner than this long from now (`30s`, `5m`).
    delay: Option<String>,
    /// Start no sooner than this time (RFC 3339).
    at: Option<String>,
    /// Retries after the first attempt fails (when absent: the kind's in the server's
    /// wrangle.toml, else 3).
    #[schema(maximum = 1000)]
    retries: Option<u32>,
    /// The longest one attempt may run (`10m`; when absent: the kind's, else none).
    timeout: Option<String>,
    /// Submitting again with the same key returns the existing task.
    unique: Option<String>,
}

impl SubmitRequest {
    /// The task asked for, with `kinds`' defaults for what the request leaves out.
    fn into_task(self, kinds: &BTreeMap<String, KindDefaults>) -> Result<NewTask, Problem> {
        let bad = |e: wrangle::InputError| Problem::bad_request(e.to_string());
        let kind = parse_name("kind", &self.kind).map_err(bad)?;
        let defaults = kinds.get(&kind).cloned().unwrap_or_default();
        let mut task = NewTask::new(kind, self.payload)
            .priority(self.priority)
            .retries(retries(self.retries.or(defaults.retries))?);
        if let Some(queue) = &self.queue {
            task = task.queue(parse_name("queue", queue).map_err(bad)?);
        }
        task.run_at = match (&self.delay, &self.at) {
            (Some(_), Some(_)) => {
                return Err(Problem::bad_request("give delay or at, not both"));
            }
            (Some(delay), None) => {
                let delay = chrono::Duration::from_std(duration("delay", delay)?)
                    .map_err(|_| Problem::bad_request("delay is too long"))?;
                Some(Utc::now() + delay)
            }
            (None, Some(at)) => Some(parse_time(at).map_err(bad)?),
            (None, None) => None,
        };
        task.timeout = match self.timeout.as_deref() {
            Some(text) => Some(duration("timeout", text)?),
            None => defaults.timeout,
        };
        if let Some(key) = self.unique {
            if key.is_empty() {
                return Err(Problem::bad_request("unique: the key is empty"));
            }
            task.unique_key = Some(key);
        }
        Ok(task)
    }
}

/// Several tasks to submit at once, all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBatch {
    /// The tasks, in order.
    tasks: Vec<SubmitRequest>,
}

/// Submits one task.
#[utoipa::path(
    post,
    path = "/api/tasks",
    tag = "tasks",
    request_body = SubmitRequest,
    responses(
        (status = 201, description = "Enqueued (or, with a unique key already used, the existing task)", body = Enqueued),
        (status = 400, description = "Bad input", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Enqueued>), Problem> {
    let Json(request) = body.map_err(bad_body)?;
    let enqueued = state
        .client
        .submit(request.into_task(&state.kinds)?)
        .await?;
    Ok((StatusCode::CREATED, Json(enqueued)))
}

/// Submits a batch of tasks, all or nothing.
#[utoipa::path(
    post,
    path = "/api/tasks/batch",
    tag = "tasks",
    request_body = SubmitBatch,
    responses(
        (status = 201, description = "Enqueued, in order", body = Vec<Enqueued>),
        (status = 400, description = "Bad input (nothing was enqueued)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn submit_batch(
    State(state): State<AppState>,
    body: Result<Json<SubmitBatch>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<Enqueued>>), Problem> {
    let Json(batch) = body.map_err(bad_body)?;
    if batch.tasks.is_empty() {
        return Err(Problem::bad_request("the batch holds no task"));
    }
    let tasks = batch
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.into_task(&state.kinds)
                .map_err(|p| Problem::bad_request(format!("task {i}: {}", p.detail)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let enqueued = state.client.submit_batch(tasks).await?;
    Ok((StatusCode::CREATED, Json(enqueued)))
}

/// Which tasks to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only tasks in this state.
    state: Option<String>,
    /// Only tasks of this queue.
    queue: Option<String>,
    /// Only tasks of this job.
    job: Option<String>,
    /// Only tasks with a smaller id: the `next` of the previous page.
    before: Option<TaskId>,
    /// Tasks per page (50 by default, at most 1000).
    limit: Option<usize>,
}

/// A page of tasks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    /// The tasks.
    tasks: Vec<Task>,
    /// The `before` of the next page, when there may be one.
    next: Option<TaskId>,
}

/// Lists tasks newest first, a page at a time (never a scan of the whole store).
#[utoipa::path(
    get,
    path = "/api/tasks",
    tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "Bad filter", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TaskPage>, Problem> {
    let Query(query) = query.map_err(bad_query)?;
    let limit = page_limit(query.limit, DEFAULT_PAGE)?;
    let task_state = query
        .state
        .as_deref()
        .map(|s| {
            s.parse::<TaskState>().map_err(|_| {
                Problem::bad_request(format!(
                    "state '{s}' is not one of scheduled, available, running, retryable, completed, dead, cancelled"
                ))
            })
        })
        .transpose()?;
    let tasks = state
        .store
        .list_tasks(TaskFilter {
            state: task_state,
            queue: query.queue,
            job: query.job,
            before_id: query.before,
            limit,
        })
        .await?;
    let next = (tasks.len() == limit)
        .then(|| tasks.last().map(|t| t.id))
        .flatten();
    Ok(Json(TaskPage { tasks, next }))
}

/// Reads one task, with its attempts, result and error.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = TaskId, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    id: Result<Path<TaskId>, PathRejection>,
) -> Result<Json<Task>, Problem> {
    let Path(id) = id.map_err(bad_path)?;
    let task = state
        .store
        .get_task(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("task {id} not found")))?;
    Ok(Json(task))
}

/// How long to wait.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct WaitQuery {
    /// The longest to wait (`30s` by default, at most `5m`).
    timeout: Option<String>,
}

/// Waits for a task's outcome: answers 200 with the task once it is completed, dead or
/// cancelled, or 202 with it as it is when the timeout passes (wait again).
#[utoipa::path(
    get,
    path = "/api/tasks/{id}/wait",
    tag = "tasks",
    params(("id" = TaskId, Path, description = "The task's id"), WaitQuery),
    responses(
        (status = 200, description = "The task, final", body = Task),
        (status = 202, description = "The task, not final yet when the timeout passed", body = Task),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn wait(
    State(state): State<AppState>,
    id: Result<Path<TaskId>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<Task>), Problem> {
    let Path(id) = id.map_err(bad_path)?;
    let Query(query) = query.map_err(bad_query)?;
    let timeout = match query.timeout.as_deref() {
        Some(text) => duration("timeout", text)?,
        None => DEFAULT_WAIT,
    };
    if timeout > MAX_WAIT {
        return Err(Problem::bad_request(
            "timeout: at most 5m (wait again after)",
        ));
    }
    let task = state.waiters.wait(id, timeout).await?;
    let status = if task.state.is_final() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(task)))
}

/// Runs a scheduled, retryable, dead or cancelled task again now (one more attempt if it
/// had none left).
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/retry",
    tag = "tasks",
    params(("id" = TaskId, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, available", body = Task),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its state cannot be retried", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn retry(
    State(state): State<AppState>,
    id: Result<Path<TaskId>, PathRejection>,
) -> Result<Json<Task>, Problem> {
    let Path(id) = id.map_err(bad_path)?;
    Ok(Json(state.store.retry_task(id, Utc::now()).await?))
}

/// Cancels a task that is not final (a running one's worker stops it at its next
/// heartbeat).
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/cancel",
    tag = "tasks",
    params(("id" = TaskId, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, cancelled", body = Task),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is final already", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    id: Result<Path<TaskId>, PathRejection>,
) -> Result<Json<Task>, Problem> {
    let Path(id) = id.map_err(bad_path)?;
    Ok(Json(state.store.cancel_task(id, Utc::now()).await?))
}

/// Which lines of a task's output.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// Only lines with a sequence number above this (the last one read).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Lines at most (1000 by default and at most).
    limit: Option<usize>,
}

/// A task's output as its worker kept it (stdout, stderr and progress lines, the newest
/// of each attempt), oldest first.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}/log",
    tag = "tasks",
    params(("id" = TaskId, Path, description = "The task's id"), LogQuery),
    responses(
        (status = 200, description = "Its kept lines", body = Vec<LogLine>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn log(
    State(state): State<AppState>,
    id: Result<Path<TaskId>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<Vec<LogLine>>, Problem> {
    let Path(id) = id.map_err(bad_path)?;
    let Query(query) = query.map_err(bad_query)?;
    let limit = page_limit(query.limit, MAX_PAGE)?;
    let after = u64::try_from(query.after.unwrap_or(0))
        .map_err(|_| Problem::bad_request("after: not below 0"))?;
    let lines = state
        .store
        .read_log(&LogOwner::Task(id), after, limit)
        .await?;
    Ok(Json(lines))
}

/// Which dead tasks.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeadQuery {
    /// Only those of this queue.
    queue: Option<String>,
}

/// How many tasks an operation moved.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Moved {
    /// How many.
    tasks: u64,
}

impl Moved {
    pub(crate) fn new(tasks: u64) -> Moved {
        Moved { tasks }
    }
}

/// Runs every dead task again (of one queue, or of all).
#[utoipa::path(
    post,
    path = "/api/dead/retry",
    tag = "tasks",
    params(DeadQuery),
    responses((status = 200, description = "How many were retried", body = Moved))
)]
pub(crate) async fn retry_dead(
    State(state): State<AppState>,
    query: Result<Query<DeadQuery>, QueryRejection>,
) -> Result<Json<Moved>, Problem> {
    let Query(query) = query.map_err(bad_query)?;
    let tasks = wrangle::tasks::retry_dead(&state.store, query.queue.as_deref(), &|_| {}).await?;
    Ok(Json(Moved::new(tasks)))
}

/// Deletes every dead task, with its log.
#[utoipa::path(
    post,
    path = "/api/dead/discard",
    tag = "tasks",
    responses((status = 200, description = "How many were deleted", body = Moved))
)]
pub(crate) async fn discard_dead(State(state): State<AppState>) -> Result<Json<Moved>, Problem> {
    let tasks =
        wrangle::tasks::prune(&state.store, &[TaskState::Dead], Utc::now(), &|_| {}).await?;
    Ok(Json(Moved::new(tasks)))
}
