//! `wrangle serve`: checks the bind address and tokens, then serves the HTTP API of
//! `wrangle-server` until SIGTERM or Ctrl-C. All the HTTP is in that crate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use wrangle::Store;
use wrangle_server::{KindDefaults, ServeOptions, Server, Tokens, check_bind, token_problem};

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::fail::{CliError, CliResult};

/// What to serve, checked before the store is opened.
pub(crate) struct ServePlan {
    bind: SocketAddr,
    options: ServeOptions,
}

pub(crate) fn plan(args: &ServeArgs, config: &Config) -> CliResult<ServePlan> {
    let bind: SocketAddr = args.bind.parse().map_err(|_| {
        CliError::input(format!(
            "--bind '{}' is not an address and port (e.g. 127.0.0.1:7077)",
            args.bind
        ))
    })?;
    let tokens = Tokens {
        full: token(args.token_file.as_deref(), "--token-file", "WRANGLE_TOKEN")?,
        read_only: token(
            args.read_only_token_file.as_deref(),
            "--read-only-token-file",
            "WRANGLE_READ_ONLY_TOKEN",
        )?,
    };
    if tokens.full.is_some() && tokens.full == tokens.read_only {
        return Err(CliError::input(
            "the read-only token must differ from the full-access token",
        ));
    }
    check_bind(bind, &tokens).map_err(CliError::input)?;
    let history_every = wrangle::parse::parse_duration(&args.history_every)
        .map_err(|e| CliError::input(format!("--history-every: {e}")))?;
    if history_every.is_zero() {
        return Err(CliError::input("--history-every must be more than 0"));
    }
    // Submits over HTTP get the kinds' defaults, as `wrangle submit` gives them.
    let mut kinds = std::collections::BTreeMap::new();
    for (kind, defaults) in &config.kinds {
        let defaults = KindDefaults {
            retries: defaults.retries,
            timeout: defaults.timeout(kind)?,
        };
        kinds.insert(kind.clone(), defaults);
    }
    Ok(ServePlan {
        bind,
        options: ServeOptions {
            tokens,
            history_every,
            kinds,
            ..ServeOptions::default()
        },
    })
}

/// The token in `file` (surrounding whitespace trimmed), else in `$env`; an empty one is
/// refused (it would let anyone in).
fn token(file: Option<&Path>, option: &str, env: &str) -> CliResult<Option<String>> {
    let (text, source) = match file {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| CliError::input(format!("{option} {}: {e}", path.display())))?,
            format!("{option} {}", path.display()),
        ),
        None => match std::env::var(env) {
            Ok(text) => (text, format!("${env}")),
            Err(_) => return Ok(None),
        },
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::input(format!("{source} holds an empty token")));
    }
    if let Some(problem) = token_problem(token) {
        return Err(CliError::input(format!("{source}: {problem}")));
    }
    Ok(Some(token.to_string()))
}

pub(crate) async fn run(context: super::Context, plan: ServePlan) -> CliResult {
    let store: Arc<dyn Store> = context.store;
    let listener = tokio::net::TcpListener::bind(plan.bind)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot listen on {}: {e}", plan.bind)))?;
    let address = listener.local_addr().unwrap_or(plan.bind);
    eprintln!(
        "wrangle serve: listening on http://{address} (OpenAPI at /api/openapi.json{})",
        if plan.options.tokens.full.is_some() {
            "; send Authorization: Bearer TOKEN"
        } else {
            ""
        }
    );
    let server = Server::with_options(store, plan.options);
    server
        .serve(listener, stop_signal())
        .await
        .map_err(|e| CliError::Runtime(format!("serving on {address}: {e}")))?;
    Ok(0)
}

/// Completes at SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
