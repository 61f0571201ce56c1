//! Probes: `/healthz` says the process serves, `/readyz` that the store answers too. Both
//! need no token.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;

use crate::AppState;
use crate::problem::Problem;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Serving", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// The store answers (one cheap read of its counters).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The store answers", body = String),
        (status = 503, description = "The store does not answer", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<&'static str, Problem> {
    match state.store.queue_stats(Utc::now()).await {
        Ok(_) => Ok("ok"),
        Err(err) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store does not answer: {}", Problem::from(err).detail),
        )),
    }
}
