//! `wrangle serve` as users run it: the bind address and tokens are checked before anything
//! is opened (one line, exit 2), and over a real socket a task submitted to the API is run
//! by a `wrangle worker` process and its result comes back through the long poll.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Sandbox, signal};
use serde_json::{Value, json};

#[test]
fn bad_binds_and_tokens_are_one_line_and_exit_2() {
    let sandbox = Sandbox::sqlite();
    sandbox.create_store();
    let err = sandbox.usage_error(&["serve", "--bind", "0.0.0.0:7077"]);
    assert!(err.contains("without a token"), "{err}");
    let err = sandbox.usage_error(&["serve", "--bind", "localhost"]);
    assert!(err.contains("not an address"), "{err}");
    let empty = sandbox.path("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let err = sandbox.usage_error(&["serve", "--token-file", empty.to_str().unwrap()]);
    assert!(err.contains("empty token"), "{err}");
    let err = sandbox.usage_error(&["serve", "--token-file", "/nonexistent/token"]);
    assert!(err.contains("--token-file"), "{err}");
}

/// One HTTP/1.1 request over a new connection; the status and the JSON body.
fn http(port: u16, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_task_submitted_over_http_is_run_by_a_worker() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.create_store();
    let token = sandbox.path("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let (mut server, port) = sandbox.serve(&["--token-file", token.to_str().unwrap()]);
    let bind = format!("127.0.0.1:{port}");
    assert_eq!(http(port, "GET", "/api/queues", "wrong", None).0, 401);

    let (status, enqueued) = http(
        port,
        "POST",
        "/api/tasks",
        "s3cret",
        Some(json!({"kind": "greet", "payload": "hello"})),
    );
    assert_eq!(status, 201, "{enqueued}");
    let id = enqueued["id"].as_i64().unwrap();
    sandbox.spawn_worker("w", &["--exec", "echo {}"]);
    let (status, task) = http(
        port,
        "GET",
        &format!("/api/tasks/{id}/wait?timeout=60s"),
        "s3cret",
        None,
    );
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["state"], "completed", "{task}");
    assert!(
        task["result"].to_string().contains("hello"),
        "{}",
        task["result"]
    );
    sandbox.stop_workers();

    signal(&server, nix::sys::signal::Signal::SIGTERM);
    let code = server.wait().unwrap().code();
    assert_eq!(code, Some(0), "serve stops on SIGTERM");
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains(&format!("listening on http://{bind}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "the token is never printed: {stderr}"
    );
}

/// `wrangle worker --metrics ADDR` after a known workload (3 attempts succeed, 1 fails),
/// read with a Prometheus text-format parser: attempts per outcome, their run times, the
/// store calls the worker made.
#[test]
fn a_workers_metrics_after_a_known_workload() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.create_store();
    for payload in ["1", "2", "3", "\"bad\""] {
        sandbox.ok(&["submit", "k", payload, "--retries", "0"]);
    }
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let exec = "sh -c 'case \"$WRANGLE_PAYLOAD\" in *bad*) exit 1 ;; esac; echo 1'";
    sandbox.spawn_worker("m1", &["--exec", exec, "--metrics", &addr]);
    sandbox.wait_until("every task ran", Duration::from_secs(30), || {
        sandbox.count("completed") == 3 && sandbox.count("dead") == 1
    });
    // The numbers are updated as attempts end; the outcome batch may still be on its way.
    let mut text = String::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        text = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        if text.contains("complete_batch") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sandbox.stop_workers();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"));
    let counter = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name}: {other:?}"),
            })
            .sum()
    };
    let attempts = "wrangle_worker_attempts_total";
    assert_eq!(
        counter(attempts, &[("kind", "k"), ("outcome", "succeeded")]),
        3.0,
        "{text}"
    );
    assert_eq!(
        counter(attempts, &[("kind", "k"), ("outcome", "failed")]),
        1.0,
        "{text}"
    );
    let runs: u64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "wrangle_worker_attempt_run_seconds")
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map_or(0, |b| b.count as u64)
            }
            other => panic!("run seconds: {other:?}"),
        })
        .sum();
    assert_eq!(runs, 4, "attempts timed\n{text}");
    let calls = "wrangle_worker_store_calls_total";
    for call in ["claim_batch", "complete_batch", "register_worker"] {
        assert!(counter(calls, &[("call", call)]) >= 1.0, "{call}\n{text}");
    }
    assert_eq!(
        counter("wrangle_worker_store_errors_total", &[]),
        0.0,
        "{text}"
    );
}
