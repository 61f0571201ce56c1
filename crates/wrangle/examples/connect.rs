//! Connects to the store a URL names, submits one task and reads it back: the smallest
//! program on the library, and the one the feature test builds with a single store
//! compiled in (`cargo run -p wrangle --no-default-features --features postgres
//! --example connect -- postgres://localhost/db`).
//!
//! Exit 0 when the store worked, 2 for a URL this build cannot open, 1 otherwise.

use serde_json::json;
use wrangle::{Client, ConnectError, NewTask};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".into());
    let store = match wrangle::connect(&url).await {
        Ok(store) => store,
        Err(ConnectError::Url(err)) => {
            eprintln!("connect: {err}");
            std::process::exit(2);
        }
        Err(err) => {
            eprintln!("connect: {err}");
            std::process::exit(1);
        }
    };
    let client = Client::new(store.clone());
    let submitted = client
        .submit(NewTask::new("hello", json!({"from": "connect"})))
        .await;
    let task = match submitted {
        Ok(enqueued) => store.get_task(enqueued.id).await,
        Err(err) => Err(err),
    };
    match task {
        Ok(Some(task)) => println!("{}: task {} is {}", store.info().name, task.id, task.state),
        Ok(None) => {
            eprintln!("connect: the task vanished");
            std::process::exit(1);
        }
        Err(err) => {
            eprintln!("connect: {err}");
            std::process::exit(1);
        }
    }
}
