//! Signing in and out. The sign-in form (`GET /ui/login?next=/ui/…`)
//! posts the token to `POST /ui/login`, which checks it, stores it in the
//! `vcp_token` cookie (HttpOnly, SameSite=Strict, Path=/, and Secure when
//! the API is served over TLS) and redirects (303) to `next` — only a
//! local path under `/ui`, anything else goes to `/ui`. A token never
//! goes in a URL. A post is taken only from this site: the form carries a
//! random check that must match the `vcp_csrf` cookie set with the form
//! (a cross-site post has neither), and a browser's `Origin` must be this
//! host. A one-time sign-in link `GET /ui/login?code=…` (made with
//! `POST /v1/sign-in-codes`, see [`crate::api::signin`]) signs in once
//! within a minute. Signing out is `POST /ui/logout`.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::header::{HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::{html, layout, COOKIE};
use crate::api::ApiState;

/// The cookie holding the sign-in form's check.
const CSRF_COOKIE: &str = "vcp_csrf";

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
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
pub fn encode(s: &str) -> String {
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

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure under TLS;
/// `max_age` 0 clears it.
fn cookie(state: &ApiState, name: &str, value: &str, path: &str, max_age: Option<u32>) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}");
    if state.secure_cookies {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

fn set_cookie(r: &mut Response, value: &str) {
    // The values are ours: `vcp_` and hex, or hex.
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

/// The redirect of a page requested without a valid token.
pub fn to_login(next: &str) -> Response {
    see_other(&format!("/ui/login?next={}", encode(safe_next(Some(next)))))
}

/// The sign-in form with a fresh check; `error` says why the last
/// attempt failed.
fn form(state: &ApiState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = crate::api::signin::random_hex();
    let body = html! {
        h1 { "Sign in" }
        @if let Some(e) = error {
            p id="error" class="no" { (e) }
        }
        form method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            input type="hidden" name="csrf" value=(csrf);
            label { "Token " input type="password" name="token" autocomplete="off" size="72" required; }
            " "
            button type="submit" { "Sign in" }
        }
        p class="muted" { "An operator, customer or vendor token (vcp token create)." }
    };
    let mut r = html(layout::page("Sign in", None, "", body));
    *r.status_mut() = status;
    set_cookie(
        &mut r,
        &cookie(state, CSRF_COOKIE, &csrf, "/ui/login", None),
    );
    r
}

/// Signs in with `token` (already known to be a token): the cookie, and
/// on to `next`.
fn signed_in(state: &ApiState, token: &str, next: &str) -> Response {
    let mut r = see_other(next);
    set_cookie(&mut r, &cookie(state, COOKIE, token, "/", None));
    set_cookie(
        &mut r,
        &cookie(state, CSRF_COOKIE, "", "/ui/login", Some(0)),
    );
    r
}

/// The form, or a one-time sign-in link.
pub async fn get(
    State(state): State<ApiState>,
    params: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let params = params.map(|q| q.0).unwrap_or_default();
    let next = safe_next(params.next.as_deref()).to_owned();
    let Some(code) = params.code else {
        return form(&state, &next, None, StatusCode::OK);
    };
    match state.sign_in_codes.redeem(&code, std::time::Instant::now()) {
        Some(token) if state.accounts.authenticate(&token).is_ok() => {
            signed_in(&state, &token, &next)
        }
        Some(_) => form(
            &state,
            &next,
            Some("the token of this link is no longer valid"),
            StatusCode::UNAUTHORIZED,
        ),
        None => form(
            &state,
            &next,
            Some("unknown, used or expired sign-in code"),
            StatusCode::UNAUTHORIZED,
        ),
    }
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

/// Whether the form's check matches its cookie (which another site can
/// neither read nor send).
fn csrf_matches(headers: &HeaderMap, field: Option<&str>) -> bool {
    matches!((crate::api::auth::cookie(headers, CSRF_COOKIE), field), (Some(c), Some(f)) if !c.is_empty() && c == f)
}

pub async fn post(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let params = params.map(|f| f.0).unwrap_or_default();
    let next = safe_next(params.next.as_deref()).to_owned();
    if !same_origin(&headers) || !csrf_matches(&headers, params.csrf.as_deref()) {
        return form(
            &state,
            &next,
            Some("sign-in refused: the form did not come from this site (load it again)"),
            StatusCode::FORBIDDEN,
        );
    }
    let Some(token) = params.token.filter(|t| !t.is_empty()) else {
        return form(&state, &next, None, StatusCode::OK);
    };
    match state.accounts.authenticate(&token) {
        Ok(p) if p.role == vcp_store::accounts::Role::Enrol => form(
            &state,
            &next,
            Some("a join token only enrols agents"),
            StatusCode::UNAUTHORIZED,
        ),
        Ok(_) => signed_in(&state, &token, &next),
        Err(refused) => form(
            &state,
            &next,
            Some(&refused.to_string()),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// Signs out: clears the cookie (a post from this site only).
pub async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "sign-out from another site refused").into_response();
    }
    let mut r = see_other("/ui/login");
    set_cookie(&mut r, &cookie(&state, COOKIE, "", "/", Some(0)));
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
    fn the_form_check_must_match_its_cookie() {
        let mut h = HeaderMap::new();
        assert!(!csrf_matches(&h, Some("ab")));
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("x=1; vcp_csrf=ab12"),
        );
        assert!(csrf_matches(&h, Some("ab12")));
        assert!(!csrf_matches(&h, Some("ab13")));
        assert!(!csrf_matches(&h, None));
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("vcp_csrf="),
        );
        assert!(!csrf_matches(&h, Some("")));
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
