//! What `serve` offers besides the JSON routes: the dashboard's files (without a token,
//! under a strict content policy), the login form's cookie, `/metrics` after a known
//! workload read with a Prometheus text-format parser, the event stream, the history the
//! charts draw and a task's kept output.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use wrangle::log::{LogAppend, LogOwner, LogSource, NewLogLine};
use wrangle::store::{ClaimRequest, Completion, Outcome, QueueFilter};
use wrangle::{NewTask, Store, WorkerInfo};
use wrangle_server::{Server, Tokens};

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_dashboard_is_served_without_a_token_under_a_strict_policy() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let tokens = Tokens {
        full: Some("secret".into()),
        read_only: None,
    };
    let app = Server::new(store, tokens).router();
    for (uri, kind, marker) in [
        ("/", "text/html", "<main id=\"view\""),
        (
            "/ui/app.js",
            "text/javascript",
            "EventSource(\"/api/events\")",
        ),
        ("/ui/app.css", "text/css", ".bar"),
    ] {
        let (status, headers, body) = send(&app, get(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{uri}"
        );
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("default-src 'self'") && policy.contains("script-src 'self'"));
        assert!(body.contains(marker), "{uri}");
        // Nothing is fetched from elsewhere.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{uri}"
        );
    }
    // The data itself still needs the token.
    assert_eq!(
        send(&app, get("/api/queues")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_login_form_sets_an_http_only_strict_cookie() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let tokens = Tokens {
        full: Some("secret".into()),
        read_only: Some("peek".into()),
    };
    let app = Server::new(store, tokens).router();
    let login = |token: &str| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let (status, _, _) = send(&app, login("nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = send(&app, login("peek")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("wrangle_token=peek;")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let with_cookie = |request: axum::http::request::Builder| {
        request
            .header(header::COOKIE, "wrangle_token=peek")
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, _) = send(&app, with_cookie(Request::get("/api/queues"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&app, with_cookie(Request::post("/api/dead/retry"))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the read-only token's cookie"
    );
    let (status, headers, _) =
        send(&app, Request::post("/logout").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

/// A known workload: queue `a` with 2 completed tasks, 1 available and 1 dead; a worker
/// with 3 runners; a list job of 2 items, one done.
async fn known_workload(store: &Arc<dyn Store>) {
    let now = Utc::now();
    store
        .create_job(wrangle::jobs::NewJob::list("j", "k", 2).queue("b"), now)
        .await
        .unwrap();
    let mut tasks: Vec<NewTask> = (0..4)
        .map(|i| NewTask::new("k", json!(i)).queue("a"))
        .collect();
    tasks[3] = tasks[3].clone().retries(0);
    tasks.extend((0..2).map(|i| NewTask::new("k", json!(i)).queue("b").job("j")));
    store.enqueue_batch(tasks, now).await.unwrap();
    let info = WorkerInfo {
        name: "w1".into(),
        runners: 3,
        lease_ms: 60_000,
        started_at: now,
        ..WorkerInfo::default()
    };
    store.register_worker(info, now).await.unwrap();
    let claim = |queue: &str, limit| ClaimRequest {
        worker: "w1".into(),
        queues: QueueFilter::Only(vec![queue.into()]),
        limit,
        lease: Duration::from_secs(60),
        now,
    };
    let claimed_a = store.claim_batch(claim("a", 4)).await.unwrap();
    let claimed_b = store.claim_batch(claim("b", 1)).await.unwrap();
    let done = |c: &wrangle::store::ClaimedTask, outcome| Completion {
        id: c.id,
        attempt: c.attempt,
        worker: "w1".into(),
        outcome,
    };
    let succeeded = || Outcome::Succeeded { result: json!(1) };
    let mut completions: Vec<Completion> = claimed_a[..2]
        .iter()
        .map(|c| done(c, succeeded()))
        .collect();
    completions.push(done(
        &claimed_a[3],
        Outcome::Failed {
            error: "no".into(),
            retry_at: None,
        },
    ));
    completions.push(Completion {
        outcome: Outcome::Released {
            reason: "later".into(),
        },
        ..done(&claimed_a[2], succeeded())
    });
    completions.push(done(&claimed_b[0], succeeded()));
    store.complete_batch(&completions, now).await.unwrap();
}

#[tokio::test]
async fn metrics_after_a_known_workload() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    known_workload(&store).await;
    let app = Server::new(store, Tokens::default()).router();
    let (status, headers, text) = send(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("openmetrics-text")
    );
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    let a = |state| [("queue", "a"), ("state", state)];
    assert_eq!(value("wrangle_tasks", &a("completed")), 2.0);
    assert_eq!(value("wrangle_tasks", &a("available")), 1.0);
    assert_eq!(value("wrangle_tasks", &a("dead")), 1.0);
    assert_eq!(
        value("wrangle_queue_completed_last_minute", &[("queue", "a")]),
        2.0
    );
    assert_eq!(
        value("wrangle_queue_failed_last_minute", &[("queue", "a")]),
        1.0
    );
    assert_eq!(value("wrangle_queue_paused", &[("queue", "a")]), 0.0);
    assert_eq!(value("wrangle_workers", &[]), 1.0);
    assert_eq!(value("wrangle_worker_runners", &[("worker", "w1")]), 3.0);
    assert_eq!(value("wrangle_worker_lost", &[("worker", "w1")]), 0.0);
    assert_eq!(value("wrangle_job_total_ids", &[("job", "j")]), 2.0);
    assert_eq!(
        value("wrangle_job_ids", &[("job", "j"), ("state", "done")]),
        1.0
    );
    assert_eq!(
        value("wrangle_job_ids", &[("job", "j"), ("state", "waiting")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_tells_of_new_tasks() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let app = Server::new(store.clone(), Tokens::default()).router();
    let response = app.clone().oneshot(get("/api/events")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let submit = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store
            .enqueue_batch(vec![NewTask::new("k", Value::Null)], Utc::now())
            .await
            .unwrap();
    });
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
                if seen.contains("event: tasks") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    submit.await.unwrap();
    assert_eq!(found, Ok(true), "no tasks event; got {seen:?}");
}

#[tokio::test]
async fn history_and_a_tasks_output_are_served() {
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    let id = store
        .enqueue_batch(vec![NewTask::new("k", Value::Null)], Utc::now())
        .await
        .unwrap()[0]
        .id;
    let append = LogAppend {
        owner: LogOwner::Task(id),
        lines: vec![
            NewLogLine::new(Utc::now(), LogSource::Stdout, "one"),
            NewLogLine::new(Utc::now(), LogSource::Stderr, "two"),
        ],
    };
    store.append_logs(&[append], 10).await.unwrap();
    let app = Server::new(store, Tokens::default()).router();
    let (status, _, body) = send(&app, get(&format!("/api/tasks/{id}/log"))).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(lines[0]["text"], "one");
    assert_eq!(lines[1]["source"], "stderr");
    let (_, _, body) = send(&app, get(&format!("/api/tasks/{id}/log?after=1"))).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The first sample is taken when the server starts.
    let mut samples = Value::Null;
    for _ in 0..50 {
        let (status, _, body) = send(&app, get("/api/history")).await;
        assert_eq!(status, StatusCode::OK);
        samples = serde_json::from_str(&body).unwrap();
        if !samples.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(samples[0]["waiting"], 1, "{samples}");
}
