//! Remote custom modules: a vendor's process connects over QUIC (ALPN
//! `vcp-module/1`) with its module credential, registers its spec, and is
//! then solicited like a built-in module. The credential must name the
//! module; the module must be configured and used by its customer's
//! virtual control plane for the kind it registers. A module that errs,
//! hangs or disconnects loses only its own rounds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn, Instrument};
use vcp_client::framed::{Framed, StreamError};
use vcp_common::frame::{Frame, Registered, PROTOCOL_VERSION};
use vcp_common::module::ModuleSpec;
use vcp_common::protocol::{close, HELLO_TIMEOUT};

use crate::control::Control;
use crate::control_plane::ModuleRef;
use crate::modules::instance::{Ask, Fault, ModuleInstance};
use crate::tls::{check_module, PeerError};

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("no stream opened within {0:?}")]
    NoStream(Duration),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("expected {expected}, got {got}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    #[error("credential: {0}")]
    Auth(#[from] PeerError),
    #[error("module {0:?} is not configured on this supervisor")]
    Unknown(String),
    #[error("module {id:?} is configured as {configured}, but registered as {registered}")]
    WrongKind {
        id: String,
        configured: String,
        registered: String,
    },
    #[error("module {0:?} is not used by any control plane")]
    Unused(String),
    #[error("bad spec: {0}")]
    BadSpec(String),
    #[error("the module answered round {got} while round {expected} was pending")]
    WrongRound { expected: u64, got: u64 },
    #[error("the module ended the stream")]
    Ended,
    #[error("control plane {0:?} was taken out of force")]
    Retired(String),
}

impl RemoteError {
    fn is_connection_lost(&self) -> bool {
        match self {
            RemoteError::Connection(_) => true,
            RemoteError::Stream(e) => e.is_connection_lost(),
            _ => false,
        }
    }

    fn close_code(&self) -> u32 {
        match self {
            RemoteError::Auth(_)
            | RemoteError::Unknown(_)
            | RemoteError::WrongKind { .. }
            | RemoteError::Unused(_) => close::AUTH,
            RemoteError::Retired(_) => close::NORMAL,
            _ => close::PROTOCOL,
        }
    }
}

const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Serves one module connection until it ends.
pub async fn serve(control: Arc<Control>, conn: quinn::Connection, max_frame: usize) {
    let span = tracing::info_span!("module", remote = %conn.remote_address(), module = tracing::field::Empty);
    async move {
        let result = run(&control, &conn, max_frame).await;
        match result {
            Ok(()) => info!("module disconnected"),
            Err(e) if e.is_connection_lost() => info!(reason = %e, "module connection ended"),
            Err(e @ RemoteError::Retired(_)) => {
                info!(reason = %e, "closing module connection");
                conn.close(e.close_code().into(), e.to_string().as_bytes());
            }
            Err(e) => {
                warn!(error = %e, "closing module connection");
                conn.close(e.close_code().into(), e.to_string().as_bytes());
            }
        }
    }
    .instrument(span)
    .await
}

async fn run(
    control: &Control,
    conn: &quinn::Connection,
    max_frame: usize,
) -> Result<(), RemoteError> {
    let (send, recv) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| RemoteError::NoStream(HELLO_TIMEOUT))??;
    let mut framed = Framed::new(send, recv, max_frame);
    let result = session(control, conn, &mut framed).await;
    if let Err(e) = &result {
        if !e.is_connection_lost() {
            framed.close_with(&e.to_string(), CLOSE_GRACE).await;
        }
    }
    result
}

fn check_spec(spec: &ModuleSpec) -> Result<(), RemoteError> {
    if spec.outputs.is_empty() {
        return Err(RemoteError::BadSpec("declares no output parameters".into()));
    }
    if spec.outputs.len() > 64 || spec.inputs.len() > 256 {
        return Err(RemoteError::BadSpec(
            "more than 64 outputs or 256 inputs".into(),
        ));
    }
    Ok(())
}

async fn session(
    control: &Control,
    conn: &quinn::Connection,
    framed: &mut Framed,
) -> Result<(), RemoteError> {
    let spec = match tokio::time::timeout(HELLO_TIMEOUT, framed.read()).await {
        Err(_) => return Err(RemoteError::NoStream(HELLO_TIMEOUT)),
        Ok(r) => match r? {
            Some((Frame::Register(spec), _)) => spec,
            Some((other, _)) => {
                return Err(RemoteError::Unexpected {
                    expected: "Register",
                    got: other.frame_type().name(),
                })
            }
            None => return Err(RemoteError::Ended),
        },
    };
    check_module(conn, &spec.id)?;
    tracing::Span::current().record("module", spec.id.as_str());
    let configured = control
        .custom(&spec.id)
        .ok_or_else(|| RemoteError::Unknown(spec.id.clone()))?;
    if configured.kind != spec.kind {
        return Err(RemoteError::WrongKind {
            id: spec.id.clone(),
            configured: configured.kind.to_string(),
            registered: spec.kind.to_string(),
        });
    }
    check_spec(&spec)?;
    let plane = control
        .planes()
        .iter()
        .find(|p| {
            p.modules(spec.kind)
                .contains(&ModuleRef::Custom(spec.id.clone()))
        })
        .cloned()
        .ok_or_else(|| RemoteError::Unused(spec.id.clone()))?;
    let limits = configured.limits.unwrap_or(control.file.module_limits);
    let known = control.known_stats(&spec.id, &plane.id);
    let (instance, mut inbox) =
        ModuleInstance::new(spec, plane.clone(), false, true, limits, known);
    let instance = Arc::new(instance);
    let stats = instance.stats.clone();
    // One live session per module: a reconnect replaces the old one.
    control.register(instance.clone());
    framed
        .write(&Frame::Registered(Registered {
            protocol: PROTOCOL_VERSION,
            control_plane: plane.id.clone(),
            customer: plane.customer.clone(),
        }))
        .await?;
    info!(control_plane = %plane.id, kind = %instance.kind(), "module registered");

    let mut pending: Option<Ask> = None;
    let result = loop {
        tokio::select! {
            ask = inbox.recv(), if pending.is_none() => {
                let Some(ask) = ask else { break Ok(()) };
                let left = ask.deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    continue; // stale: the round already counted the miss
                }
                let mut s = (*ask.solicitation).clone();
                s.budget_ms = left.as_millis() as u32;
                if let Err(e) = framed.write(&Frame::Solicit(s)).await {
                    pending = Some(ask);
                    break Err(e.into());
                }
                pending = Some(ask);
            }
            _ = instance.retired() => break Err(RemoteError::Retired(instance.plane.id.clone())),
            frame = framed.read() => match frame {
                Ok(Some((Frame::Respond(r), _))) => match pending.take() {
                    Some(ask) if ask.solicitation.round == r.round => ask.deliver(Ok(r.proposals), &stats),
                    Some(ask) => {
                        let expected = ask.solicitation.round;
                        pending = Some(ask);
                        break Err(RemoteError::WrongRound { expected, got: r.round });
                    }
                    None => stats.record_late(&r.proposals),
                },
                Ok(Some((Frame::Close { reason }, _))) => {
                    info!(%reason, "module closed its session");
                    break Ok(());
                }
                Ok(Some((other, _))) => break Err(RemoteError::Unexpected { expected: "Respond or Close", got: other.frame_type().name() }),
                Ok(None) => break Err(RemoteError::Ended),
                Err(e) => break Err(e.into()),
            },
        }
    };
    control.registry.remove(instance.kind(), instance.uid);
    if let Err(e) = result
        .as_ref()
        .err()
        .filter(|e| !matches!(e, RemoteError::Retired(_)))
        .map_or(Ok(()), Err)
    {
        stats.faults.fetch_add(1, Ordering::Relaxed);
        stats.last_fault.store(Some(Arc::new(e.to_string())));
        if let Some(ask) = pending {
            ask.deliver(Err(Fault::Disconnected(e.to_string())), &stats);
        }
    }
    result
}
