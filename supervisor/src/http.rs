//! The HTTP server: the API under `/v1`, `/metrics` and the dashboard
//! under `/ui` on one listener, with one body limit and one fallback, and
//! the limits of `[limits.api]` ([`HttpLimits`]): at most
//! `max_connections` open (the next is accepted when one closes), headers
//! within `header_read_timeout` or the connection is closed (a client that
//! trickles its headers holds nothing for long), each request answered
//! within `request_timeout` or 408, and at most `max_in_flight` handled at
//! once: one more is answered 503 at once rather than queued. Each token's
//! own share (`per_token_*`) is taken when it authenticates
//! (`api::limiter`). With a TLS configuration every connection is HTTPS,
//! its handshake done within `header_read_timeout` too.
//!
//! The server runs on a runtime of its own (`worker_threads` threads named
//! `vcp-api`, at most `blocking_threads` more for its database reads),
//! every thread of it `nice` steps below the rest of the supervisor: no
//! request shares a thread with ingest or the rounds, and when the CPU is
//! contended the rounds get it first.

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

/// A running HTTP server, on its own runtime.
pub struct ApiServer {
    pub addr: SocketAddr,
    runtime: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
}

impl ApiServer {
    /// Binds `listen` and serves `state` within `limits` until stopped,
    /// over TLS with `tls`.
    pub async fn start(
        listen: SocketAddr,
        state: ApiState,
        limits: &HttpLimits,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<ApiServer> {
        Self::serve(listen, router(state), limits, tls).await
    }

    /// Binds `listen` and serves `app` within `limits`.
    pub async fn serve(
        listen: SocketAddr,
        app: Router,
        limits: &HttpLimits,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(listen).await?.into_std()?;
        let addr = listener.local_addr()?;
        let runtime = runtime(limits)?;
        let listener = {
            let _in = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        let app = bounded(app, limits);
        runtime.spawn(accept_loop(listener, app, limits.clone(), tls));
        tracing::info!(%addr, scheme, "API listening");
        Ok(ApiServer {
            addr,
            runtime: std::sync::Mutex::new(Some(runtime)),
        })
    }

    /// Stops serving: the listener and every connection are dropped.
    pub fn stop(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rt) = runtime {
            rt.shutdown_background();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The API's own runtime: `worker_threads` and at most
/// `blocking_threads`, each `nice` steps nicer than the thread that
/// starts it.
fn runtime(limits: &HttpLimits) -> std::io::Result<tokio::runtime::Runtime> {
    let nice = limits.nice;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(limits.worker_threads)
        .max_blocking_threads(limits.blocking_threads)
        .thread_name("vcp-api")
        .on_thread_start(move || lower_priority(nice))
        .enable_all()
        .build()
}

/// Makes the calling thread (only it: on Linux a nice value is a thread's)
/// `by` steps nicer. Raising one's niceness needs no privilege; if it
/// fails anyway the thread runs at the usual priority, which is only
/// worth a debug line.
fn lower_priority(by: i32) {
    if by == 0 {
        return;
    }
    // SAFETY: plain system calls on the calling thread's id, no memory.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if libc::setpriority(libc::PRIO_PROCESS, tid, (now + by).min(19)) != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "API thread priority unchanged");
        }
    }
}

/// Accepts connections while fewer than `max_connections` are open and
/// serves each on its own task.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
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
        let (http, tls) = (http.clone(), tls.clone());
        let handshake = limits.header_read_timeout();
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => http.serve_connection(TokioIo::new(stream), service).await,
                Some(tls) => match tokio::time::timeout(handshake, tls.accept(stream)).await {
                    Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "API TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("API TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "API connection ended");
            }
        });
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
