//! `wrangle serve`: a JSON HTTP API over the wrangle library, for operators' tools and for
//! programs in any language (submit a task, wait for its result), with its OpenAPI 3
//! document at `/api/openapi.json`, generated from the handlers' types; a live web
//! dashboard at `/` over that API; an event stream of changes (`/api/events`); and
//! Prometheus metrics (`/metrics`).
//!
//! This crate owns HTTP: routing, authentication, error bodies, request limits, and the
//! server-wide listeners that wake waiting requests and event streams. It adds no logic of
//! its own to what the library does: every handler is a thin call into `wrangle` (or the
//! `Store` it opens), as the CLI is.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = wrangle::connect("sqlite://.wrangle/wrangle.db").await?;
//! let server = wrangle_server::Server::new(store, wrangle_server::Tokens::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7077").await?;
//! server.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod dashboard;
mod events;
mod history;
mod metrics;
mod problem;
mod waiters;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use utoipa::openapi::OpenApi;
use wrangle::Store;

pub use auth::{BindRefused, Tokens, check_bind, token_problem};
pub use metrics::serve_worker_metrics;
pub use problem::Problem;

/// The default request body limit: a batch of tasks with payloads up to the library's
/// default payload limit fits, an accidental upload of a disk image does not.
pub const DEFAULT_MAX_BODY: usize = 32 << 20;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: wrangle::Client,
    pub(crate) waiters: waiters::Waiters,
    pub(crate) events: events::Events,
    pub(crate) history: history::History,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) kinds: Arc<std::collections::BTreeMap<String, KindDefaults>>,
}

/// How a server behaves besides its store.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Who may use it.
    pub tokens: Tokens,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// Time between two samples of the dashboard's charts (an hour of samples at 10 s).
    pub history_every: std::time::Duration,
    /// Per task kind, what a submit that does not say gets (`[kinds.X]` of wrangle.toml,
    /// as `wrangle submit` applies them).
    pub kinds: std::collections::BTreeMap<String, KindDefaults>,
}

/// A task kind's defaults for submits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindDefaults {
    /// Retries after the first attempt.
    pub retries: Option<u32>,
    /// The longest one attempt may run.
    pub timeout: Option<std::time::Duration>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            tokens: Tokens::default(),
            max_body: DEFAULT_MAX_BODY,
            history_every: history::SAMPLE_EVERY,
            kinds: std::collections::BTreeMap::new(),
        }
    }
}

/// The HTTP server: its routes over one store, and who may use them.
pub struct Server {
    router: Router,
    openapi: OpenApi,
}

impl Server {
    /// The API over `store`, open to holders of `tokens` (to everyone when it has none,
    /// which [`check_bind`] allows only on loopback).
    pub fn new(store: Arc<dyn Store>, tokens: Tokens) -> Server {
        Server::with_options(
            store,
            ServeOptions {
                tokens,
                ..ServeOptions::default()
            },
        )
    }

    /// The API over `store`, as `options` say.
    pub fn with_options(store: Arc<dyn Store>, options: ServeOptions) -> Server {
        let tokens = Arc::new(options.tokens);
        let state = AppState {
            client: wrangle::Client::new(store.clone()),
            waiters: waiters::Waiters::start(store.clone()),
            events: events::Events::start(store.clone()),
            history: history::History::start(store.clone(), options.history_every),
            tokens: tokens.clone(),
            kinds: Arc::new(options.kinds),
            store,
        };
        let (router, mut openapi) = api::routes().split_for_parts();
        api::add_common_problems(&mut openapi);
        let document = openapi.clone();
        let router = router
            .route(
                "/api/openapi.json",
                get(move || async move { axum::Json(document.clone()) }),
            )
            .route("/", get(dashboard::index))
            .route("/ui/app.js", get(dashboard::script))
            .route("/ui/app.css", get(dashboard::style))
            .route("/login", post(dashboard::login))
            .route("/logout", post(dashboard::logout))
            .fallback(problem::not_found)
            .layer(axum::middleware::from_fn_with_state(tokens, auth::guard))
            .layer(DefaultBodyLimit::max(options.max_body))
            .with_state(state);
        Server { router, openapi }
    }

    /// The OpenAPI document of the routes.
    pub fn openapi(&self) -> &OpenApi {
        &self.openapi
    }

    /// The routes, for serving them another way (or for tests).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `shutdown` completes, then finishes the requests in
    /// flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
