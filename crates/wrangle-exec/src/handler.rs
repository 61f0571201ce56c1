//! Rust handlers: `async fn(TaskContext, Value) -> Result<Value, E>` registered by kind.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wrangle_core::store::ClaimedTask;

use crate::{ExecResult, Executor, Failure};

/// What a Rust handler knows about the attempt it runs.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The claimed task (id, kind, attempt, payload, …).
    pub task: ClaimedTask,
    /// Fires when the task is cancelled or the worker shuts down; long handlers should
    /// watch it and return early.
    pub cancel: CancellationToken,
}

type BoxedHandler =
    dyn Fn(TaskContext, Value) -> Pin<Box<dyn Future<Output = ExecResult> + Send>> + Send + Sync;

/// An [`Executor`] around a Rust async function. The task's timeout is applied here;
/// panics are caught by the worker loop, which runs every attempt on its own tokio task.
#[derive(Clone)]
pub struct FnHandler {
    function: Arc<BoxedHandler>,
}

impl fmt::Debug for FnHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

impl FnHandler {
    /// Wraps `function`.
    pub fn new<F, Fut, E>(function: F) -> Self
    where
        F: Fn(TaskContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        FnHandler {
            function: Arc::new(move |context, payload| {
                let future = function(context, payload);
                Box::pin(async move { future.await.map_err(|e| Failure(e.to_string())) })
            }),
        }
    }
}

#[async_trait]
impl Executor for FnHandler {
    async fn execute(&self, task: &ClaimedTask, cancel: CancellationToken) -> ExecResult {
        let context = TaskContext {
            task: task.clone(),
            cancel: cancel.clone(),
        };
        let run = (self.function)(context, task.payload.clone());
        let limited = async {
            match task.timeout {
                Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                    Err(Failure(format!(
                        "timed out after {}",
                        crate::command::format_duration(limit)
                    )))
                }),
                None => run.await,
            }
        };
        tokio::select! {
            result = limited => result,
            _ = cancel.cancelled() => Err(Failure("cancelled".into())),
        }
    }
}
