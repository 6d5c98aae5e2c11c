//! The HTTP server: the API under `/v1`, `/metrics` and the dashboard
//! under `/ui` on one listener, with one body limit and one fallback.

use std::net::SocketAddr;

use axum::Router;

use crate::api::{self, ApiError, ApiState};

/// Every route of the supervisor's HTTP server.
pub fn router(state: ApiState) -> Router {
    api::routes()
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .with_state(state)
}

/// A running HTTP server.
pub struct ApiServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Binds `listen` and serves `state` until stopped.
    pub async fn start(listen: SocketAddr, state: ApiState) -> std::io::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let app = router(state);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "API server stopped");
            }
        });
        tracing::info!(%addr, "API listening");
        Ok(ApiServer { addr, task })
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}
