//! The web dashboard: three files embedded in the binary (`dashboard/`: no build step for
//! users, no CDN, no outside fetch), which draw everything from the JSON API and refresh
//! on the event stream. Also the login form's endpoint, which turns a token into an
//! HttpOnly, SameSite=Strict cookie, and logout. This module serves the files and the
//! cookie; the API and the rules of access are elsewhere.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::auth;

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");

/// Only this server's own files and API; style attributes (the progress bars' widths)
/// are the one inline thing allowed.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                      img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                      form-action 'self'; base-uri 'none'";

/// One embedded file with its type and the headers that keep it to this origin.
fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

pub(crate) async fn script() -> Response {
    file("text/javascript; charset=utf-8", SCRIPT)
}

pub(crate) async fn style() -> Response {
    file("text/css; charset=utf-8", STYLE)
}

#[derive(Deserialize)]
pub(crate) struct Login {
    token: String,
}

/// Checks the token of the login form and, if it is one the server accepts, keeps it in
/// the `wrangle_token` cookie (HttpOnly: no script reads it; SameSite=Strict: no other
/// site's page sends it). Back to the dashboard either way.
pub(crate) async fn login(State(state): State<AppState>, Form(form): Form<Login>) -> Response {
    if !auth::accepts(&state.tokens, form.token.trim()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>wrangle</title><p>That token is wrong. <a href=\"/\">Try again</a>.</p>",
        )
            .into_response();
    }
    let cookie = format!(
        "wrangle_token={}; HttpOnly; SameSite=Strict; Path=/",
        form.token.trim()
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Forgets the cookie.
pub(crate) async fn logout() -> Response {
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("wrangle_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}
