//! The provisioning API: JSON over HTTP under `/v1` (described by
//! `/v1/openapi.json`), Prometheus metrics at `/metrics` and the dashboard
//! under `/ui`. Every route but the OpenAPI document needs a bearer token;
//! each checks the caller's role and ownership (see `auth`).

mod audit;
pub(crate) mod auth;
mod error;
mod extract;
mod hosts;
pub mod limiter;
mod modules;
mod planes;
mod sets;
pub mod signin;
pub mod statements;
mod tokens;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use auth::{Caller, COOKIE};
pub use error::{ApiError, MAX_BODY};

use crate::overview::Overview;
use crate::workflow::Engine;
use vcp_store::accounts::Accounts;
use vcp_store::audit::Audit;
use vcp_store::planes::PlaneStore;

/// Default listen address of the API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The OpenAPI document of `/v1`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub control: Arc<dyn Overview>,
    pub accounts: Arc<Accounts>,
    pub audit: Arc<Audit>,
    pub planes: Arc<PlaneStore>,
    pub engine: Arc<Engine>,
    /// The ledger's directory (statements are read from it).
    pub data_dir: PathBuf,
    /// Each token's share of the API.
    pub limiter: Arc<limiter::TokenLimiter>,
    /// One-time sign-in links waiting to be used.
    pub sign_in_codes: Arc<signin::SignInCodes>,
    /// Whether cookies are marked `Secure` (the API is served over TLS).
    pub secure_cookies: bool,
}

/// The routes of the API and the metrics.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/control-planes", get(planes::list).post(planes::create))
        .route(
            "/v1/control-planes/{id}",
            get(planes::get_one).delete(planes::delete),
        )
        .route("/v1/service-sets", get(sets::list))
        .route("/v1/service-sets/{id}", get(sets::get_one))
        .route("/v1/workflows", get(planes::workflows))
        .route("/v1/workflows/{id}", get(planes::workflow))
        .route("/v1/modules", get(modules::list))
        .route("/v1/modules/{id}", get(modules::get_one))
        .route("/v1/modules/{id}/feedback", post(modules::feedback))
        .route("/v1/decisions", get(modules::decisions))
        .route("/v1/statements/{account}", get(statements::get_one))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/v1/audit", get(audit::list))
        .route("/v1/sign-in-codes", post(signin::create))
        .route("/v1/hosts", get(hosts::list))
        .route("/v1/hosts/{id}", get(hosts::get_one))
        .route("/metrics", get(metrics))
}

/// Runs `f` (SQLite work) on the blocking pool, off the async runtime;
/// its error is an internal one.
pub(crate) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<ApiState>,
    caller: Caller,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    caller.require_operator()?;
    let ledger = statements::ledger_metrics(&state).await?;
    let text = crate::metrics::render(&*state.control, ledger.as_ref());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    ))
}
