//! Signing in and out. `GET /ui/login?token=…&next=/ui/…` (or the form's
//! `POST`) checks the token, stores it in the `vcp_token` cookie
//! (HttpOnly, SameSite=Strict, Path=/) and redirects (303) to `next` —
//! only a local path under `/ui`, anything else goes to `/ui`. An unknown
//! token shows the form again with status 401.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::header::{HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::{html, layout, COOKIE};
use crate::api::ApiState;

#[derive(Debug, Default, Deserialize)]
pub struct LoginParams {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after signing in: `next` if it is a local path under
/// `/ui` (printable ASCII, no backslash), else `/ui`.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/ui" || n.starts_with("/ui/") || n.starts_with("/ui?"))
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/ui",
    }
}

/// Percent-encodes `s` for a query value (keeps unreserved characters and `/`).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn see_other(location: &str) -> Response {
    let mut r = super::with_page_headers(StatusCode::SEE_OTHER.into_response());
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    } else {
        r.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/ui"));
    }
    r
}

/// The redirect of a page requested without a valid token.
pub fn to_login(next: &str) -> Response {
    see_other(&format!("/ui/login?next={}", encode(safe_next(Some(next)))))
}

/// The sign-in form; `error` says why the last attempt failed.
fn form(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(e) = error {
            p id="error" class="no" { (e) }
        }
        form method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            label { "Token " input type="password" name="token" autocomplete="off" size="72" required; }
            " "
            button type="submit" { "Sign in" }
        }
        p class="muted" { "An operator, customer or vendor token (vcp-supervisor token create)." }
    };
    let mut r = html(layout::page("Sign in", None, "", body));
    *r.status_mut() = status;
    r
}

async fn sign_in(state: &ApiState, params: LoginParams) -> Response {
    let next = safe_next(params.next.as_deref()).to_owned();
    let Some(token) = params.token.filter(|t| !t.is_empty()) else {
        return form(&next, None, StatusCode::OK);
    };
    let accounts = state.accounts.clone();
    let checked = token.clone();
    let found = tokio::task::spawn_blocking(move || accounts.authenticate(&checked)).await;
    match found {
        Ok(Ok(Some(_))) => {
            let mut r = see_other(&next);
            // An authenticated token is `vcp_` and hex: safe in a cookie.
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            match HeaderValue::from_str(&cookie) {
                Ok(v) => {
                    r.headers_mut().insert(SET_COOKIE, v);
                    r
                }
                Err(_) => form(&next, Some("unusable token"), StatusCode::UNAUTHORIZED),
            }
        }
        Ok(Ok(None)) => form(
            &next,
            Some("unknown or revoked token"),
            StatusCode::UNAUTHORIZED,
        ),
        Ok(Err(e)) => form(
            &next,
            Some(&e.to_string()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        Err(e) => form(
            &next,
            Some(&e.to_string()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

pub async fn get(
    State(state): State<ApiState>,
    params: Result<Query<LoginParams>, QueryRejection>,
) -> Response {
    sign_in(&state, params.map(|q| q.0).unwrap_or_default()).await
}

/// Whether a form post comes from this site: a browser's `Origin`, when
/// sent, must name the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    origin_host.is_some() && origin_host == host
}

pub async fn post(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Form<LoginParams>, FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return form(
            "/ui",
            Some("sign-in from another site refused"),
            StatusCode::FORBIDDEN,
        );
    }
    sign_in(&state, params.map(|f| f.0).unwrap_or_default()).await
}

pub async fn logout() -> Response {
    let mut r = see_other("/ui/login");
    let cleared = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cleared) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_under_ui() {
        assert_eq!(safe_next(Some("/ui/modules")), "/ui/modules");
        assert_eq!(safe_next(Some("/ui")), "/ui");
        assert_eq!(
            safe_next(Some("/ui/statement?account=customer:acme&period=2026-11")),
            "/ui/statement?account=customer:acme&period=2026-11"
        );
        for bad in [
            "https://evil.example/ui",
            "//evil.example/ui",
            "/v1/hosts",
            "/uix",
            "/ui/\\evil",
            "/ui/a b",
            "/ui/\r\nSet-Cookie: x",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/ui");
    }

    #[test]
    fn login_redirect_encodes_next() {
        let r = to_login("/ui/statement?account=customer:acme&period=all");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[LOCATION],
            "/ui/login?next=/ui/statement%3Faccount%3Dcustomer%3Aacme%26period%3Dall"
        );
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
