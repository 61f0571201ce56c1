//! The HTTP API end to end, in process: a task submitted over HTTP is run by a worker and
//! its result comes back through the long poll, on memory, SQLite, PostgreSQL and Redis;
//! bad input is a 4xx problem, never a 5xx; tokens guard every route; lists page; jobs,
//! queues, the dead set and worker control work through it; the OpenAPI document names
//! every route.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use wrangle::{Registry, Shutdown, Store, Worker, WorkerConfig};
use wrangle_server::{ServeOptions, Server, Tokens};
use wrangle_testkit::{PostgresServer, RedisServer, or_skip};

/// One request to `app`; the status and the body as JSON (null when empty or not JSON).
async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    call(app, Method::GET, uri, &[], None).await
}

async fn post(app: &Router, uri: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, uri, &[], Some(body)).await
}

/// A worker with handlers `add` (sums `a` and `b`) and `fail` (always fails).
fn start_worker(store: Arc<dyn Store>, name: &str) -> (Shutdown, tokio::task::JoinHandle<()>) {
    let mut registry = Registry::new();
    registry
        .handle("add", |_ctx, p: Value| async move {
            Ok::<_, String>(json!(
                p["a"].as_i64().unwrap_or(0) + p["b"].as_i64().unwrap_or(0)
            ))
        })
        .handle("fail", |_ctx, _p: Value| async move {
            Err::<Value, _>("no".to_string())
        });
    let mut config = WorkerConfig::new();
    config.name = name.to_string();
    config.runners = 2;
    let shutdown = Shutdown::new();
    let worker = Worker::new(store, registry, config);
    let stop = shutdown.clone();
    let handle = tokio::spawn(async move {
        worker.run(stop).await.expect("the worker runs");
    });
    (shutdown, handle)
}

/// Submit over HTTP, a worker runs it, the wait returns the result; a batch too.
async fn round_trip(store: Arc<dyn Store>) {
    let app = Server::new(store.clone(), Tokens::default()).router();
    let (status, enqueued) = post(
        &app,
        "/api/tasks",
        json!({"kind": "add", "payload": {"a": 2, "b": 3}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{enqueued}");
    let id = enqueued["id"].as_i64().unwrap();
    let (status, waiting) = get(&app, &format!("/api/tasks/{id}/wait?timeout=100ms")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "no worker yet: {waiting}");
    assert_eq!(waiting["state"], "available");

    let (stop, worker) = start_worker(store.clone(), "w-http");
    let (status, task) = get(&app, &format!("/api/tasks/{id}/wait?timeout=20s")).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(
        (task["state"].clone(), task["result"].clone()),
        (json!("completed"), json!(5))
    );

    let (status, batch) = post(
        &app,
        "/api/tasks/batch",
        json!({"tasks": [{"kind": "add", "payload": {"a": 1, "b": 1}},
                         {"kind": "add", "payload": {"a": 2, "b": 2}, "queue": "default"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    for (entry, sum) in batch.as_array().unwrap().iter().zip([2, 4]) {
        let id = entry["id"].as_i64().unwrap();
        let (status, task) = get(&app, &format!("/api/tasks/{id}/wait?timeout=20s")).await;
        assert_eq!(
            (status, task["result"].clone()),
            (StatusCode::OK, json!(sum))
        );
    }
    stop.graceful.cancel();
    worker.await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn round_trip_on_memory_and_sqlite() {
    runtime().block_on(async {
        round_trip(Arc::new(wrangle::MemoryStore::new())).await;
        let dir = tempfile::tempdir().unwrap();
        let store = wrangle::SqliteStore::open(&dir.path().join("w.db"))
            .await
            .unwrap();
        round_trip(Arc::new(store)).await;
    });
}

#[test]
fn round_trip_on_postgres() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    runtime().block_on(async {
        round_trip(wrangle::connect(&server.url()).await.unwrap()).await;
    });
}

#[test]
fn round_trip_on_redis() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    runtime().block_on(async {
        round_trip(wrangle::connect(&server.url()).await.unwrap()).await;
    });
}

/// Every kind of bad input is a 4xx problem object with one line of detail.
#[tokio::test]
async fn bad_input_is_a_4xx_problem() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let options = ServeOptions {
        max_body: 1024,
        ..ServeOptions::default()
    };
    let app = Server::with_options(store, options).router();
    let cases: Vec<(Method, &str, Option<Value>, StatusCode)> = vec![
        (
            Method::POST,
            "/api/tasks",
            Some(json!({"payload": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/tasks",
            Some(json!({"kind": "k", "colour": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/tasks",
            Some(json!({"kind": ""})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tasks",
            Some(json!({"kind": "k", "delay": "soon"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tasks",
            Some(json!({"kind": "k", "delay": "1s", "at": "2030-01-01T00:00:00Z"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tasks",
            Some(json!({"kind": "k", "payload": "x".repeat(2000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/api/tasks/batch",
            Some(json!({"tasks": []})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/tasks?state=lost",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/tasks?limit=0",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/tasks?bogus=1",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "/api/tasks/x", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/tasks/99", None, StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/api/tasks/99/wait?timeout=10m",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tasks/99/retry",
            None,
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/api/jobs/nope", None, StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "j", "kind": "k"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "j", "kind": "k", "range": {"start": 5, "end": 0, "block": 1}})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/queues/%20/pause",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/workers/nobody/commands",
            Some(json!({"command": "stop"})),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/workers/nobody/commands",
            Some(json!({"command": "dance"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (Method::GET, "/api/nothing", None, StatusCode::NOT_FOUND),
    ];
    for (method, uri, body, expected) in cases {
        let (status, problem) = call(&app, method.clone(), uri, &[], body.clone()).await;
        assert_eq!(status, expected, "{method} {uri} {body:?}: {problem}");
        assert_eq!(problem["status"], status.as_u16(), "{uri}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.is_empty() && !detail.contains('\n'),
            "{uri}: {problem}"
        );
    }
    // Not JSON at all.
    let request = Request::post("/api/tasks")
        .header("content-type", "application/json")
        .body(Body::from("{kind"))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

/// Tokens: none needed on loopback without one; with them, a missing or wrong token is
/// 401, the read-only token reads but gets 403 on every change, and a change from another
/// origin is 403 whatever the token. Probes need no token.
#[tokio::test]
async fn tokens_guard_every_route() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let tokens = Tokens {
        full: Some("full-secret".into()),
        read_only: Some("look-only".into()),
    };
    let app = Server::new(store, tokens).router();
    let full = [("authorization", "Bearer full-secret")];
    let read_only = [("authorization", "Bearer look-only")];
    let submit = || Some(json!({"kind": "k"}));

    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/api/queues").await.0, StatusCode::UNAUTHORIZED);
    let wrong = [("authorization", "Bearer nope")];
    assert_eq!(
        call(&app, Method::GET, "/api/queues", &wrong, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, Method::GET, "/api/queues", &read_only, None)
            .await
            .0,
        StatusCode::OK
    );
    let cookie = [("cookie", "wrangle_token=look-only")];
    assert_eq!(
        call(&app, Method::GET, "/api/queues", &cookie, None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, created) = call(&app, Method::POST, "/api/tasks", &full, submit()).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();

    // Every route that changes something refuses the read-only token.
    let changes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, "/api/tasks".into(), submit()),
        (
            Method::POST,
            "/api/tasks/batch".into(),
            Some(json!({"tasks": [{"kind": "k"}]})),
        ),
        (Method::POST, format!("/api/tasks/{id}/retry"), None),
        (Method::POST, format!("/api/tasks/{id}/cancel"), None),
        (Method::POST, "/api/dead/retry".into(), None),
        (Method::POST, "/api/dead/discard".into(), None),
        (Method::POST, "/api/queues/default/pause".into(), None),
        (Method::POST, "/api/queues/default/resume".into(), None),
        (
            Method::POST,
            "/api/jobs".into(),
            Some(json!({"name": "j", "kind": "k", "items": [1]})),
        ),
        (Method::DELETE, "/api/jobs/j".into(), None),
        (Method::POST, "/api/jobs/j/cancel".into(), None),
        (Method::POST, "/api/jobs/j/retry".into(), None),
        (
            Method::POST,
            "/api/workers/w/commands".into(),
            Some(json!({"command": "stop"})),
        ),
    ];
    for (method, uri, body) in &changes {
        let (status, problem) = call(&app, method.clone(), uri, &read_only, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {problem}");
    }
    let elsewhere = [
        ("authorization", "Bearer full-secret"),
        ("origin", "http://evil.example"),
        ("host", "127.0.0.1:7077"),
    ];
    let (status, _) = call(&app, Method::POST, "/api/tasks", &elsewhere, submit()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "cross-origin");
    let here = [
        ("authorization", "Bearer full-secret"),
        ("origin", "http://127.0.0.1:7077"),
        ("host", "127.0.0.1:7077"),
    ];
    let (status, _) = call(&app, Method::POST, "/api/tasks", &here, submit()).await;
    assert_eq!(status, StatusCode::CREATED, "same origin");
}

/// Lists go newest first a page at a time, filtered by state, queue and job.
#[tokio::test]
async fn tasks_list_a_page_at_a_time() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let app = Server::new(store, Tokens::default()).router();
    let tasks: Vec<Value> = (0..7)
        .map(|i| json!({"kind": "k", "payload": i, "queue": if i % 2 == 0 { "even" } else { "odd" }}))
        .collect();
    let (status, _) = post(&app, "/api/tasks/batch", json!({ "tasks": tasks })).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut seen = Vec::new();
    let mut uri = "/api/tasks?limit=3".to_string();
    loop {
        let (status, page) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for task in page["tasks"].as_array().unwrap() {
            seen.push(task["payload"].as_i64().unwrap());
        }
        match page["next"].as_i64() {
            Some(next) => uri = format!("/api/tasks?limit=3&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1, 0]);
    let (_, odd) = get(&app, "/api/tasks?queue=odd&state=available").await;
    let odd: Vec<i64> = odd["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["payload"].as_i64().unwrap())
        .collect();
    assert_eq!(odd, [5, 3, 1]);
}

/// Jobs, queues, the dead set and worker control, through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queues_dead_tasks_and_workers() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let app = Server::new(store.clone(), Tokens::default()).router();

    // A dead task, retried and discarded.
    let (_, dead) = post(&app, "/api/tasks", json!({"kind": "fail", "retries": 0})).await;
    let (stop, worker) = start_worker(store.clone(), "w-api");
    let id = dead["id"].as_i64().unwrap();
    let (_, task) = get(&app, &format!("/api/tasks/{id}/wait?timeout=20s")).await;
    assert_eq!(task["state"], "dead", "{task}");
    let (status, moved) = post(&app, "/api/dead/retry", json!(null)).await;
    assert_eq!((status, moved["tasks"].clone()), (StatusCode::OK, json!(1)));
    let (_, task) = get(&app, &format!("/api/tasks/{id}/wait?timeout=20s")).await;
    assert_eq!(task["attempt"], 2, "{task}");
    let (status, moved) = post(&app, "/api/dead/discard", json!(null)).await;
    assert_eq!((status, moved["tasks"].clone()), (StatusCode::OK, json!(1)));
    assert_eq!(
        get(&app, &format!("/api/tasks/{id}")).await.0,
        StatusCode::NOT_FOUND
    );

    // A range job runs to the end; its progress says so.
    let (status, job) = post(
        &app,
        "/api/jobs",
        json!({"name": "sum", "kind": "add", "range": {"start": 0, "end": 100, "block": 10}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let mut progress = Value::Null;
    for _ in 0..200 {
        progress = get(&app, "/api/jobs/sum").await.1;
        if progress["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!(progress["done"]["ids"], 100);
    let (_, jobs) = get(&app, "/api/jobs").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    let (status, deleted) = call(&app, Method::DELETE, "/api/jobs/sum", &[], None).await;
    assert_eq!(
        (status, deleted["tasks"].clone()),
        (StatusCode::OK, json!(10))
    );

    // Queues pause and resume.
    let (status, _) = post(&app, "/api/queues/slow/pause", json!(null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, queues) = get(&app, "/api/queues").await;
    let slow = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "slow")
        .cloned();
    assert_eq!(slow.map(|q| q["paused"].clone()), Some(json!(true)));
    assert_eq!(
        post(&app, "/api/queues/slow/resume", json!(null)).await.0,
        StatusCode::NO_CONTENT
    );

    // The worker is listed and answers a command.
    let (_, workers) = get(&app, "/api/workers").await;
    assert_eq!(workers[0]["info"]["name"], "w-api", "{workers}");
    let (status, ack) = post(
        &app,
        "/api/workers/w-api/commands",
        json!({"command": "scale", "queue": null, "runners": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["ok"], true, "{ack}");
    stop.graceful.cancel();
    worker.await.unwrap();
}

/// A submit that leaves out retries or timeout gets its kind's defaults (as `wrangle
/// submit` gives `[kinds.X]` of wrangle.toml); what it says wins.
#[tokio::test]
async fn submits_get_their_kinds_defaults() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let mut options = ServeOptions::default();
    options.kinds.insert(
        "slow".into(),
        wrangle_server::KindDefaults {
            retries: Some(7),
            timeout: Some(Duration::from_secs(90)),
        },
    );
    let app = Server::with_options(store, options).router();
    let mut read = Vec::new();
    for body in [
        json!({"kind": "slow"}),
        json!({"kind": "slow", "retries": 1, "timeout": "5s"}),
        json!({"kind": "other"}),
    ] {
        let (status, enqueued) = post(&app, "/api/tasks", body).await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, task) = get(&app, &format!("/api/tasks/{}", enqueued["id"])).await;
        read.push((task["max_attempts"].clone(), task["timeout"].clone()));
    }
    assert_eq!(
        read,
        [
            (json!(8), json!(90_000)),
            (json!(2), json!(5_000)),
            (json!(4), Value::Null)
        ]
    );
}

/// The OpenAPI document is served and names every route with its methods.
#[tokio::test]
async fn the_openapi_document_names_every_route() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let app = Server::new(store, Tokens::default()).router();
    let (status, document) = get(&app, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/tasks", &["get", "post"][..]),
        ("/api/tasks/batch", &["post"]),
        ("/api/tasks/{id}", &["get"]),
        ("/api/tasks/{id}/wait", &["get"]),
        ("/api/tasks/{id}/retry", &["post"]),
        ("/api/tasks/{id}/cancel", &["post"]),
        ("/api/dead/retry", &["post"]),
        ("/api/dead/discard", &["post"]),
        ("/api/queues", &["get"]),
        ("/api/queues/{queue}/pause", &["post"]),
        ("/api/queues/{queue}/resume", &["post"]),
        ("/api/jobs", &["get", "post"]),
        ("/api/jobs/{name}", &["get", "delete"]),
        ("/api/jobs/{name}/cancel", &["post"]),
        ("/api/jobs/{name}/retry", &["post"]),
        ("/api/workers", &["get"]),
        ("/api/workers/{name}/commands", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
    ] {
        for method in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} missing from the document"
            );
        }
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Task",
        "TaskState",
        "JobProgress",
        "QueueStats",
        "Problem",
        "SubmitRequest",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}
