//! The dashboard: server-rendered HTML pages under `/ui`, no script and
//! no separate front-end build. Each page shows what the JSON API returns
//! to the same caller (it calls the same view functions, which filter by
//! caller), with the numbers printed as `format` documents and marked with
//! stable hooks for tests (`data-host`, `data-plane`, `data-module`,
//! `data-field`, `id="total"`, …).
//!
//! | route                      | page                                              |
//! |----------------------------|---------------------------------------------------|
//! | `GET /ui/login`            | sign-in form (`?next=/ui/…`); `?code=…` signs in once |
//! | `POST /ui/login`           | the form's target (fields `token`, `next`, `csrf`) |
//! | `POST /ui/logout`          | clears the cookie                                 |
//! | `GET /ui`                  | the fleet: hosts and their utilisation            |
//! | `GET /ui/control-planes`   | control planes, modules per kind, service sets   |
//! | `GET /ui/modules`          | the catalog: reputation and contribution per plane|
//! | `GET /ui/decisions`        | recent mediated decisions (`?limit=`, default 100)|
//! | `GET /ui/statement`        | cost statement, chart, a page of lines (`?account=&period=&after=`) |
//!
//! Signing in (see `login`) sets the `vcp_token` cookie (HttpOnly,
//! SameSite=Strict, Path=/, Secure under TLS), which the API's `Caller` extractor accepts like a bearer
//! token. A page requested without a valid token redirects (303) to the
//! sign-in form, which returns to the page afterwards.

mod chart;
pub mod format;
mod layout;
mod login;
mod pages;
mod statement;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::{ApiError, ApiState, Caller};
use vcp_store::accounts::Principal;

pub use chart::cost_chart;
pub use statement::{CHART_POINTS, MAX_LINES};

/// The cookie holding the dashboard's token (the API's `Caller` reads it).
pub use crate::api::COOKIE;

/// The dashboard's routes, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/ui/login", get(login::get).post(login::post))
        .route("/ui/logout", axum::routing::post(login::logout))
        .route("/ui", get(pages::fleet))
        .route("/ui/", get(pages::fleet))
        .route("/ui/control-planes", get(pages::planes))
        .route("/ui/modules", get(pages::modules))
        .route("/ui/decisions", get(pages::decisions))
        .route("/ui/statement", get(statement::page))
}

/// The signed-in caller of a page. Without a valid token the request is
/// redirected to the sign-in form (coming back to the page afterwards).
pub struct Viewer(pub Caller);

impl std::ops::Deref for Viewer {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl Viewer {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        match Caller::from_request_parts(parts, state).await {
            Ok(c) => Ok(Viewer(c)),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/ui", |p| p.as_str())
                    .to_owned();
                Err(login::to_login(&next))
            }
            Err(e) => Err(error_page(None, e)),
        }
    }
}

/// What every page is sent with: not cached (the pages show an account's
/// data), no framing, nothing loaded from elsewhere (the pages have no
/// script; the style is inline), forms only to this site.
const PAGE_HEADERS: [(HeaderName, &str); 3] = [
    (header::CACHE_CONTROL, "no-store"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// `r` with [`PAGE_HEADERS`].
fn with_page_headers(mut r: Response) -> Response {
    for (name, value) in PAGE_HEADERS {
        r.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    r
}

/// An HTML page with status 200.
fn html(page: maud::Markup) -> Response {
    with_page_headers(Html(page.into_string()).into_response())
}

/// A page's query parameters; a malformed query is a 400.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|q| q.0)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// An error as an HTML page with the error's status.
fn error_page(viewer: Option<&Principal>, e: ApiError) -> Response {
    let title = e.status.canonical_reason().unwrap_or("Error").to_owned();
    let body = maud::html! {
        h1 { (e.status.as_u16()) " " (title) }
        p id="error" { (e.message) }
    };
    let mut r = html(layout::page(&title, viewer, "", body));
    *r.status_mut() = e.status;
    r
}
