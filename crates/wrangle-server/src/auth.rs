//! Who may use the API. On loopback with no token, anyone on the machine may (as with the
//! CLI); any other bind address needs a token ([`check_bind`]). A request presents its
//! token as `Authorization: Bearer TOKEN` or in the `wrangle_token` cookie (which the
//! dashboard's login sets); tokens are compared in constant time. The read-only token may
//! read everything and change nothing (403). A state-changing request from another origin
//! (its `Origin` is not this host, or the browser says `Sec-Fetch-Site: cross-site`) is
//! refused, so a page elsewhere cannot drive a logged-in browser. Health probes, the
//! dashboard's own files and its login form need no token (the page asks for one when
//! the API answers 401). This module owns those rules; the routes know nothing of them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// The tokens the server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Full access.
    pub full: Option<String>,
    /// Read-only access: GET and HEAD requests only.
    pub read_only: Option<String>,
}

/// Why a bind address was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve on {0} without a token: only loopback addresses may go without one (give --token-file FILE or WRANGLE_TOKEN)"
)]
pub struct BindRefused(pub SocketAddr);

/// Refuses a non-loopback `bind` when there is no full-access token.
pub fn check_bind(bind: SocketAddr, tokens: &Tokens) -> Result<(), BindRefused> {
    if bind.ip().is_loopback() || tokens.full.is_some() {
        Ok(())
    } else {
        Err(BindRefused(bind))
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Full,
    ReadOnly,
}

/// The middleware: answers 401, 403 or lets the request through.
pub(crate) async fn guard(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes && cross_origin(request.headers()) {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "a request from another origin may not change anything",
        )
        .into_response();
    }
    let open = match *request.method() {
        Method::GET | Method::HEAD => {
            matches!(path, "/" | "/healthz" | "/readyz") || path.starts_with("/ui/")
        }
        Method::POST => matches!(path, "/login" | "/logout"),
        _ => false,
    };
    if open {
        return next.run(request).await;
    }
    let access = match access(&tokens, request.headers()) {
        Ok(access) => access,
        Err(problem) => {
            let mut response = problem.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    };
    if changes && access == Access::ReadOnly {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "the read-only token may not change anything",
        )
        .into_response();
    }
    next.run(request).await
}

/// The access the request's token gives.
fn access(tokens: &Tokens, headers: &HeaderMap) -> Result<Access, Problem> {
    if tokens.full.is_none() && tokens.read_only.is_none() {
        return Ok(Access::Full);
    }
    let presented = presented_token(headers).ok_or_else(|| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "a token is needed (Authorization: Bearer TOKEN)",
        )
    })?;
    let matches = |expected: &Option<String>| {
        expected
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
    };
    if matches(&tokens.full) {
        Ok(Access::Full)
    } else if matches(&tokens.read_only) {
        Ok(Access::ReadOnly)
    } else {
        Err(Problem::new(StatusCode::UNAUTHORIZED, "the token is wrong"))
    }
}

/// Whether `token` is one the server accepts (either token).
pub(crate) fn accepts(tokens: &Tokens, token: &str) -> bool {
    let mut headers = HeaderMap::new();
    match header::HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(value) => headers.insert(header::AUTHORIZATION, value),
        Err(_) => return false,
    };
    (tokens.full.is_some() || tokens.read_only.is_some()) && access(tokens, &headers).is_ok()
}

/// Why `token` cannot be used: it must be printable ASCII without spaces, quotes, commas,
/// semicolons or backslashes, so that it travels unchanged in a header and a cookie.
pub fn token_problem(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        Some("the token is empty")
    } else if !token
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
    {
        Some(
            "a token may hold only printable ASCII without spaces, quotes, commas, semicolons or backslashes",
        )
    } else {
        None
    }
}

/// The token in `Authorization: Bearer` or the `wrangle_token` cookie.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return value.to_str().ok()?.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("wrangle_token="))
}

/// Whether the request comes from a page of another origin: its `Origin` names another
/// host than `Host`, or the browser marks it cross-site.
fn cross_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match (text(header::ORIGIN.as_str()), text(header::HOST.as_str())) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin_host != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_loopback_goes_without_a_token() {
        let none = Tokens::default();
        assert!(check_bind("127.0.0.1:7077".parse().unwrap(), &none).is_ok());
        assert!(check_bind("[::1]:7077".parse().unwrap(), &none).is_ok());
        assert!(check_bind("0.0.0.0:7077".parse().unwrap(), &none).is_err());
        let read_only = Tokens {
            full: None,
            read_only: Some("r".into()),
        };
        assert!(check_bind("0.0.0.0:7077".parse().unwrap(), &read_only).is_err());
        let full = Tokens {
            full: Some("f".into()),
            read_only: None,
        };
        assert!(check_bind("0.0.0.0:7077".parse().unwrap(), &full).is_ok());
    }

    #[test]
    fn tokens_come_from_the_header_or_the_cookie() {
        let tokens = Tokens {
            full: Some("full".into()),
            read_only: Some("ro".into()),
        };
        let bearer = headers(&[("authorization", "Bearer full")]);
        assert_eq!(access(&tokens, &bearer).unwrap(), Access::Full);
        let cookie = headers(&[("cookie", "a=b; wrangle_token=ro")]);
        assert_eq!(access(&tokens, &cookie).unwrap(), Access::ReadOnly);
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(access(&tokens, &wrong).unwrap_err().status, 401);
        assert_eq!(access(&tokens, &HeaderMap::new()).unwrap_err().status, 401);
        assert_eq!(
            access(&Tokens::default(), &HeaderMap::new()).unwrap(),
            Access::Full
        );
    }

    #[test]
    fn other_origins_are_told_apart() {
        let same = headers(&[
            ("origin", "http://127.0.0.1:7077"),
            ("host", "127.0.0.1:7077"),
        ]);
        assert!(!cross_origin(&same));
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:7077"),
        ]);
        assert!(cross_origin(&other));
        assert!(cross_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(
            !cross_origin(&headers(&[("host", "127.0.0.1:7077")])),
            "curl"
        );
    }
}
