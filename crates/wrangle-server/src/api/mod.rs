//! The routes, one module per noun (tasks, jobs, queues, workers, health), gathered with
//! their OpenAPI descriptions. Handlers parse and check the request, make one call into
//! the library, and answer JSON; errors are [`Problem`]s.

mod health;
mod jobs;
mod queues;
mod tasks;
mod workers;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wrangle",
        description = "The HTTP API of `wrangle serve`: submit tasks and wait for their results, \
                       watch and steer queues, jobs and workers. Errors are problem objects \
                       (RFC 9457). With a token, send `Authorization: Bearer TOKEN`."
    ),
    tags(
        (name = "tasks", description = "Submit, read, wait for, retry and cancel tasks"),
        (name = "jobs", description = "Range and list jobs and their progress"),
        (name = "queues", description = "Queue numbers, pause and resume"),
        (name = "workers", description = "Workers and their live control"),
        (name = "events", description = "Changes as server-sent events"),
        (name = "health", description = "Probes")
    )
)]
struct ApiDoc;

/// The problems any operation may answer besides its own, added to the document for
/// every operation that does not name them itself: a malformed path or query (400), no or
/// a wrong token (401), a change refused (403), an unreachable store (503), and for those
/// with a body, too large (413), not JSON (415), or JSON of the wrong shape (422).
pub(crate) fn add_common_problems(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for (path, item) in document.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let mut common = vec![
                ("400", "A malformed path or query"),
                ("503", "The store does not answer"),
            ];
            if !matches!(path.as_str(), "/healthz" | "/readyz") {
                common.push(("401", "No token, or a wrong one"));
                common.push((
                    "403",
                    "The token may not change anything, or another origin asked",
                ));
            }
            if operation.request_body.is_some() {
                common.push(("413", "The body is too large"));
                common.push(("415", "The body is not JSON"));
                common.push(("422", "The JSON has the wrong shape"));
            }
            for (status, description) in common {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem(description).into());
            }
        }
    }
}

/// Every route with its description.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(tasks::list, tasks::submit))
        .routes(routes!(tasks::submit_batch))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::wait))
        .routes(routes!(tasks::retry))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::retry_dead))
        .routes(routes!(tasks::discard_dead))
        .routes(routes!(queues::list))
        .routes(routes!(queues::pause))
        .routes(routes!(queues::resume))
        .routes(routes!(jobs::list, jobs::create))
        .routes(routes!(jobs::get, jobs::delete))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(workers::list))
        .routes(routes!(workers::control))
        .routes(routes!(tasks::log))
        .routes(routes!(crate::events::stream))
        .routes(routes!(crate::history::get))
        .routes(routes!(crate::metrics::metrics))
}

/// A rejected JSON body as a problem (axum's own answer is plain text), with axum's
/// status: 400 for malformed JSON, 413 over the size limit, 415 without a JSON content
/// type, 422 for JSON of the wrong shape.
fn bad_body(rejection: JsonRejection) -> Problem {
    Problem::new(
        rejection.status(),
        format!("bad request body: {}", rejection.body_text()),
    )
}

/// A rejected query string as a problem.
fn bad_query(rejection: QueryRejection) -> Problem {
    Problem::new(
        rejection.status(),
        format!("bad query: {}", rejection.body_text()),
    )
}

/// A rejected path parameter as a problem.
fn bad_path(rejection: PathRejection) -> Problem {
    Problem::new(
        rejection.status(),
        format!("bad path: {}", rejection.body_text()),
    )
}

/// A duration given as text (`30s`, `5m`), as the CLI takes it.
fn duration(what: &str, text: &str) -> Result<std::time::Duration, Problem> {
    wrangle::parse::parse_duration(text).map_err(|e| Problem::bad_request(format!("{what}: {e}")))
}
