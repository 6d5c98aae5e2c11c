//! The HTTP server: the API under `/v1`, `/metrics` and the dashboard
//! under `/ui` on one listener, with one body limit and one fallback, and
//! the limits of `[limits.api]` ([`HttpLimits`]): at most
//! `max_connections` open (the next is accepted when one closes), headers
//! within `header_read_timeout` or the connection is closed (a client that
//! trickles its headers holds nothing for long), each request answered
//! within `request_timeout` or 408, and at most `max_in_flight` handled at
//! once: one more is answered 503 at once rather than queued. Each token's
//! own share (`per_token_*`) is taken when it authenticates
//! (`api::limiter`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{BoxError, ServiceBuilder};

use crate::api::{self, ApiError, ApiState};
use crate::config::limits::HttpLimits;

/// Every route of the supervisor's HTTP server.
pub fn router(state: ApiState) -> Router {
    api::routes()
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .with_state(state)
}

/// `app` within the request limits: a timeout per request, and a global
/// bound on requests in flight that sheds the excess.
fn bounded(app: Router, limits: &HttpLimits) -> Router {
    app.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                limits.max_in_flight,
            ))
            .timeout(limits.request_timeout()),
    )
}

/// What a request gets when the server refused to finish it.
async fn overloaded(e: BoxError) -> Response {
    if e.is::<tower::timeout::error::Elapsed>() {
        (StatusCode::REQUEST_TIMEOUT, "request timed out").into_response()
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            "too many requests in flight",
        )
            .into_response()
    } else {
        tracing::warn!(error = %e, "API request failed");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

/// A running HTTP server.
pub struct ApiServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Binds `listen` and serves `state` within `limits` until stopped.
    pub async fn start(
        listen: SocketAddr,
        state: ApiState,
        limits: &HttpLimits,
    ) -> std::io::Result<ApiServer> {
        Self::serve(listen, router(state), limits).await
    }

    /// Binds `listen` and serves `app` within `limits`.
    pub async fn serve(
        listen: SocketAddr,
        app: Router,
        limits: &HttpLimits,
    ) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, bounded(app, limits), limits.clone()));
        tracing::info!(%addr, "API listening");
        Ok(ApiServer { addr, task })
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Accepts connections while fewer than `max_connections` are open and
/// serves each on its own task.
async fn accept_loop(listener: TcpListener, app: Router, limits: HttpLimits) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    loop {
        let Ok(slot) = open.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: the connections that are open
                // go on; try again shortly.
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "API connection ended");
            }
        });
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
