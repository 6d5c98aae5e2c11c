//! The SDK for vendors' control plane modules: implement [`ModuleLogic`]
//! and call [`run`] (reconnecting, until refused or told to stop) or
//! [`serve`] (one session). The module connects to the supervisor over
//! QUIC with its module credential — a certificate for
//! `<module id>.module.vcp`, from the fleet operator or enrolled with a
//! join token ([`enrol`]) — registers its spec, then answers every
//! solicitation with proposals. It speaks `vcp-module/1`
//! ([`vcp_common::wire::v1`]), whose bytes do not change.
//!
//! The SDK links the wire and the transport only — nothing of the agent
//! or the supervisor.

pub mod predictive;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use rand::Rng;
use tracing::{info, warn};
use vcp_common::frame::{Frame, Registered, Response, ALPN_MODULE};
use vcp_common::identity::TlsMaterial;
use vcp_common::protocol::HELLO_TIMEOUT;
use vcp_transport::framed::{Framed, StreamError};
use vcp_transport::tls::{client_config, TlsError};

pub use vcp_common::module::{
    Kind, ModuleLogic, ModuleSpec, Proposal, SensorSelector, Solicitation, Target,
};
pub use vcp_common::view::SensorView;
pub use vcp_transport::enrol;

/// Where and as whom a module connects.
#[derive(Debug, Clone)]
pub struct ModuleConnect {
    pub supervisor: SocketAddr,
    /// Name in the supervisor's certificate.
    pub server_name: String,
    pub tls: TlsMaterial,
    /// Largest frame accepted from the supervisor (solicitations carry views).
    pub max_frame: usize,
    /// [`run`] renews `tls` when it is due, storing the new credential
    /// there (an enrolled module's, [`enrol::Enrolment::credential`]);
    /// `None`: the operator renews the files.
    pub renewal: Option<enrol::Enrolment>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("binding a local socket: {0}")]
    Bind(#[from] std::io::Error),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The supervisor refused the module: bad credential, unknown module,
    /// wrong kind. Retrying will not help.
    #[error("the supervisor refused the module: {0}")]
    Refused(String),
    #[error("the supervisor closed the session: {0}")]
    Closed(String),
    #[error("no answer to the registration within {0:?}")]
    NoAnswer(Duration),
    #[error("unexpected {0} frame from the supervisor")]
    Unexpected(&'static str),
}

impl ModuleError {
    /// Whether reconnecting might succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ModuleError::Refused(_) | ModuleError::Tls(_))
    }
}

fn endpoint(c: &ModuleConnect) -> Result<quinn::Endpoint, ModuleError> {
    let bind: SocketAddr = if c.supervisor.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let mut ep = quinn::Endpoint::client(bind)?;
    ep.set_default_client_config(client_config(&c.tls, ALPN_MODULE, c.max_frame)?);
    Ok(ep)
}

/// How a session ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The supervisor ended the stream (it is shutting down, say).
    Supervisor(Registered),
    /// The shutdown signal fired; the module said so and closed.
    Stopped,
}

/// A shutdown signal that never fires.
pub fn forever() -> std::future::Pending<()> {
    std::future::pending()
}

/// One session: connect, register, answer solicitations until the
/// supervisor ends the session or `shutdown` completes (then the module
/// closes the session with a reason and its endpoint cleanly).
pub async fn serve<M: ModuleLogic + ?Sized, S: Future<Output = ()>>(
    logic: &mut M,
    c: &ModuleConnect,
    shutdown: S,
) -> Result<Ended, ModuleError> {
    let shutdown = std::pin::pin!(shutdown);
    serve_pinned(logic, c, shutdown).await
}

async fn serve_pinned<M: ModuleLogic + ?Sized, S: Future<Output = ()>>(
    logic: &mut M,
    c: &ModuleConnect,
    shutdown: Pin<&mut S>,
) -> Result<Ended, ModuleError> {
    let ep = endpoint(c)?;
    let result = session(&ep, logic, c, shutdown).await;
    ep.close(0u32.into(), b"module stopped");
    ep.wait_idle().await;
    result
}

async fn session<M: ModuleLogic + ?Sized, S: Future<Output = ()>>(
    ep: &quinn::Endpoint,
    logic: &mut M,
    c: &ModuleConnect,
    mut shutdown: Pin<&mut S>,
) -> Result<Ended, ModuleError> {
    let conn = tokio::select! {
        c = async { ep.connect(c.supervisor, &c.server_name)?.await.map_err(ModuleError::from) } => c?,
        _ = shutdown.as_mut() => return Ok(Ended::Stopped),
    };
    let (send, recv) = conn.open_bi().await?;
    let mut framed = Framed::new(send, recv, c.max_frame);
    framed
        .write(&Frame::Register(logic.spec()))
        .await
        .map_err(|e| lost(&conn, e))?;
    let registered = match tokio::time::timeout(HELLO_TIMEOUT, framed.read()).await {
        Err(_) => return Err(ModuleError::NoAnswer(HELLO_TIMEOUT)),
        Ok(r) => match r.map_err(|e| lost(&conn, e))? {
            Some((Frame::Registered(r), _)) => r,
            Some((Frame::Close { reason }, _)) => return Err(ModuleError::Refused(reason)),
            Some((other, _)) => return Err(ModuleError::Unexpected(other.frame_type().name())),
            None => {
                return Err(ModuleError::Refused(
                    "the supervisor ended the stream".into(),
                ))
            }
        },
    };
    info!(control_plane = %registered.control_plane, customer = %registered.customer, "module registered");
    loop {
        let read = tokio::select! {
            r = framed.read() => r,
            _ = shutdown.as_mut() => {
                framed.close_with("module stopped", CLOSE_GRACE).await;
                conn.close(0u32.into(), b"module stopped");
                return Ok(Ended::Stopped);
            }
        };
        match read {
            Ok(Some((Frame::Solicit(s), _))) => {
                let proposals = logic.solicit(&s);
                let respond = Frame::Respond(Response {
                    round: s.round,
                    proposals,
                });
                framed.write(&respond).await.map_err(|e| lost(&conn, e))?;
            }
            Ok(Some((Frame::Close { reason }, _))) => return Err(ModuleError::Closed(reason)),
            Ok(Some((other, _))) => return Err(ModuleError::Unexpected(other.frame_type().name())),
            Ok(None) => return Ok(Ended::Supervisor(registered)),
            Err(e) => return Err(lost(&conn, e)),
        }
    }
}

/// How long a stopping module waits for the supervisor to read its Close.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// A stream error, or — when the connection is gone — the connection's own
/// close reason (a refused certificate, an application close), which says
/// more than "connection lost".
fn lost(conn: &quinn::Connection, e: StreamError) -> ModuleError {
    match conn.close_reason() {
        Some(reason) if e.is_connection_lost() => ModuleError::Connection(reason),
        _ => e.into(),
    }
}

/// Serves until refused or until `shutdown` completes, reconnecting after
/// transient failures with exponential backoff and jitter (200 ms doubling
/// to 30 s), and renewing the credential meanwhile when `c.renewal` says
/// so (each new session uses the latest). `Ok(())` after a clean stop; the
/// error that ended it otherwise.
pub async fn run<M: ModuleLogic + ?Sized, S: Future<Output = ()>>(
    logic: &mut M,
    c: &ModuleConnect,
    shutdown: S,
) -> Result<(), ModuleError> {
    let (renewed, latest) = tokio::sync::watch::channel(c.tls.clone());
    let renewal = async {
        if let Some(e) = c.renewal.clone() {
            enrol::keep_renewed(e, c.tls.clone(), |new| renewed.send(new.clone()).is_ok()).await;
        }
        std::future::pending::<std::convert::Infallible>().await
    };
    tokio::select! {
        r = reconnecting(logic, c, latest, shutdown) => r,
        never = renewal => match never {},
    }
}

async fn reconnecting<M: ModuleLogic + ?Sized, S: Future<Output = ()>>(
    logic: &mut M,
    c: &ModuleConnect,
    latest: tokio::sync::watch::Receiver<TlsMaterial>,
    shutdown: S,
) -> Result<(), ModuleError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    loop {
        let c = ModuleConnect {
            tls: latest.borrow().clone(),
            ..c.clone()
        };
        match serve_pinned(logic, &c, shutdown.as_mut()).await {
            Ok(Ended::Stopped) => return Ok(()),
            Ok(Ended::Supervisor(_)) => backoff = Duration::from_millis(200),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => warn!(error = %e, "module session ended; reconnecting"),
        }
        let pause = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.as_mut() => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
