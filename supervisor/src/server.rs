//! The supervisor process: QUIC endpoint, accept loop, and the shared
//! fleet state. Connections are dispatched by ALPN.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use vcp_common::frame::{ALPN_AGENT, ALPN_ENROL, ALPN_MODULE};
use vcp_common::identity::{Role, TlsMaterial};
use vcp_common::protocol::close;

use crate::api::ApiState;
use crate::config::limits::Limits;
use crate::config::SupervisorFile;
use crate::control::Control;
use crate::dispatch::DispatchHandle;
use crate::fleet::{EndpointStats, Fleet};
use crate::http::ApiServer;
use crate::ingest;
use crate::live::Live;
use crate::provisioner::{Provisioner, DEPROVISION, PROVISION};
use crate::remote::{self, ModuleHost};
use crate::tls::{peer, server_config, TlsError};
use crate::workflow::Engine;
use vcp_store::accounts::Accounts;
use vcp_store::ledger::LedgerReader;
use vcp_store::{Store, StoreError};

/// How to run a supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: TlsMaterial,
    /// Accounts, service sets, control planes, modules and limits.
    pub control: SupervisorFile,
    /// The provisioning API, metrics and dashboard (off when `None`).
    pub api: Option<ApiOptions>,
    /// Enrolment and renewal of agents' certificates (off when `None`).
    pub enrolment: Option<EnrolmentOptions>,
}

/// What enrolment needs: the fleet CA's certificate and key (PEM), and
/// how long the certificates it issues live.
#[derive(Clone)]
pub struct EnrolmentOptions {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub validity: std::time::Duration,
}

impl std::fmt::Debug for EnrolmentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("EnrolmentOptions")
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// Where and how the HTTP API runs.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub listen: SocketAddr,
    /// For tests: a provisioning task of this name never finishes, as if
    /// the supervisor died while running it.
    pub hold_task: Option<String>,
    /// HTTPS (see [`crate::tls::https_config`]); plain HTTP without.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ApiOptions {
    pub fn new(listen: SocketAddr) -> ApiOptions {
        ApiOptions {
            listen,
            hold_task: None,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] vcp_store::ledger::LedgerError),
    #[error(transparent)]
    Accounts(#[from] vcp_store::accounts::AccountsError),
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
    #[error(transparent)]
    Enrolment(#[from] crate::enrol::EnrolSetupError),
    #[error("binding the HTTP API on {addr}: {source} (choose another address with --api-listen)")]
    ApiBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running supervisor.
pub struct Supervisor {
    pub fleet: Arc<Fleet>,
    pub control: Arc<Control>,
    pub accounts: Arc<Accounts>,
    /// The dashboard's one-time sign-in links (the demo prints one).
    pub sign_in_codes: Arc<crate::api::signin::SignInCodes>,
    pub engine: Arc<Engine>,
    /// The HTTP API, when configured.
    pub api: Option<ApiServer>,
    /// The live connection of every agent and module.
    pub live: Arc<Live>,
    /// Agents' and modules' certificates, and their revocations.
    pub credentials: vcp_store::credentials::Credentials,
    endpoint: quinn::Endpoint,
    accept: tokio::task::JoinHandle<()>,
    /// Keeps the tokens and revocations in memory fresh.
    fresh: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Opens the store, binds the endpoint and starts accepting agents.
    pub async fn start(config: SupervisorConfig) -> Result<Supervisor, StartError> {
        let (store, records) = Store::open(&config.data_dir)?;
        let fleet = Arc::new(Fleet::new(store.agents(), records));
        let limits = config.control.limits.clone();
        let alpn: &[&[u8]] = match config.enrolment {
            Some(_) => &[ALPN_AGENT, ALPN_MODULE, ALPN_ENROL],
            None => &[ALPN_AGENT, ALPN_MODULE],
        };
        let server = server_config(
            &config.tls,
            alpn,
            limits.agent.max_frame.max(limits.module.max_frame),
            limits.max_incoming,
            config.enrolment.is_some(),
        )?;
        let endpoint =
            quinn::Endpoint::server(server, config.listen).map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        info!(listen = %endpoint.local_addr().map_or(config.listen, |a| a), data_dir = %config.data_dir.display(), "supervisor listening");
        let ledger = (store.ledger(), LedgerReader::open(&config.data_dir)?);
        let planes = Arc::new(store.planes());
        let stored = planes.clone();
        let feedback = move |after| {
            stored.feedback_after(after).unwrap_or_else(|e| {
                warn!(error = %e, "stored feedback cannot be read back");
                Vec::new()
            })
        };
        let control = Control::start(
            config.control,
            fleet.clone(),
            Some(ledger),
            planes.active()?,
            &feedback,
        );
        let accounts = Arc::new(store.accounts());
        // Workflows left unfinished by an earlier run resume here.
        let engine = Engine::open(
            store.workflows(),
            vec![&PROVISION, &DEPROVISION],
            Arc::new(Provisioner {
                control: control.clone(),
                store: planes.clone(),
                hold: config.api.as_ref().and_then(|a| a.hold_task.clone()),
            }),
        )?;
        let sign_in_codes = Arc::new(crate::api::signin::SignInCodes::default());
        let api = match &config.api {
            Some(opts) => Some(
                ApiServer::start(
                    opts.listen,
                    ApiState {
                        control: control.clone(),
                        accounts: accounts.clone(),
                        audit: Arc::new(store.audit()),
                        planes,
                        engine: engine.clone(),
                        data_dir: config.data_dir.clone(),
                        limiter: Arc::new(crate::api::limiter::TokenLimiter::new(&limits.api)),
                        sign_in_codes: sign_in_codes.clone(),
                        secure_cookies: opts.tls.is_some(),
                    },
                    &limits.api,
                    opts.tls.clone(),
                )
                .await
                .map_err(|source| StartError::ApiBind {
                    addr: opts.listen,
                    source,
                })?,
            ),
            None => None,
        };
        let live = Arc::new(Live::default());
        let credentials = store.credentials();
        let enroller = match &config.enrolment {
            Some(e) => {
                info!(validity = ?e.validity, "enrolment on: agents may join with a join token");
                Some(Arc::new(crate::enrol::Enroller::new(
                    &e.ca_pem,
                    &e.ca_key_pem,
                    e.validity,
                    &limits.enrol,
                    (accounts.clone(), credentials.clone()),
                )?))
            }
            None => {
                info!("enrolment off: the supervisor has no CA key (--enrol-ca-key)");
                None
            }
        };
        let fresh =
            crate::freshness::keep_fresh(accounts.clone(), credentials.clone(), live.clone());
        let accept = tokio::spawn(accept_loop(
            endpoint.clone(),
            Shared {
                fleet: fleet.clone(),
                dispatch: control.dispatch.clone(),
                modules: control.clone(),
                live: live.clone(),
                credentials: credentials.clone(),
                enroller,
                limits,
            },
        ));
        Ok(Supervisor {
            fleet,
            control,
            accounts,
            sign_in_codes,
            engine,
            api,
            live,
            endpoint,
            accept,
            fresh,
            credentials,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Closes every connection and stops accepting.
    pub async fn shutdown(self) {
        self.endpoint.close(
            vcp_common::protocol::close::NORMAL.into(),
            b"supervisor shutting down",
        );
        self.accept.abort();
        self.fresh.abort();
        let _ = self.accept.await;
        if let Some(api) = &self.api {
            api.stop();
        }
        self.engine.stop();
        self.control.stop();
        self.live.forget_all();
        self.endpoint.wait_idle().await;
    }
}

/// What every connection task needs: an agent's, the fleet and the
/// dispatcher; a module's, its host (registration, rounds, counters).
#[derive(Clone)]
struct Shared {
    fleet: Arc<Fleet>,
    dispatch: DispatchHandle,
    modules: Arc<dyn ModuleHost>,
    live: Arc<Live>,
    credentials: vcp_store::credentials::Credentials,
    enroller: Option<Arc<crate::enrol::Enroller>>,
    limits: Limits,
}

/// Counts a handshake in progress while alive.
struct Handshaking(Arc<AtomicUsize>);

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connection attempts within the endpoint's limits: at most
/// `max_connections` live and `max_handshakes` in progress (more are
/// refused, counted); past `retry_above` handshakes in progress, an
/// address that has not proved it receives our packets must retry first
/// (QUIC address validation), so a spoofed flood costs one packet each.
async fn accept_loop(endpoint: quinn::Endpoint, shared: Shared) {
    let limits = &shared.limits;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let stats = &shared.fleet.endpoint;
    let mut tasks = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        let in_progress = handshakes.load(Ordering::Relaxed);
        if in_progress >= limits.max_handshakes {
            EndpointStats::bump(&stats.refused_handshakes);
            incoming.refuse();
            continue;
        }
        if in_progress >= limits.retry_above
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            EndpointStats::bump(&stats.retries);
            let _ = incoming.retry();
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            EndpointStats::bump(&stats.refused_connections);
            incoming.refuse();
            continue;
        };
        handshakes.fetch_add(1, Ordering::Relaxed);
        let handshaking = Handshaking(handshakes.clone());
        let shared = shared.clone();
        tasks.spawn(async move {
            connection(incoming, handshaking, shared).await;
            drop(slot);
        });
        // Reap finished connection tasks so the set does not grow forever.
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
}

/// One connection: the handshake within its timeout, the identity its
/// certificate names, one live session per identity, then the protocol's
/// driver.
async fn connection(incoming: quinn::Incoming, handshaking: Handshaking, s: Shared) {
    let remote = incoming.remote_address();
    let stats = &s.fleet.endpoint;
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            debug!(%remote, error = %e, "connection attempt dropped");
            return;
        }
    };
    let timeout = s.limits.handshake_timeout();
    let conn = match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            EndpointStats::bump(&stats.failed_handshakes);
            warn!(%remote, error = %e, "handshake refused");
            return;
        }
        Err(_) => {
            EndpointStats::bump(&stats.failed_handshakes);
            warn!(%remote, ?timeout, "handshake not finished in time");
            return;
        }
    };
    drop(handshaking);
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    let role = match alpn.as_deref() {
        Some(p) if p == ALPN_AGENT => Role::Agent,
        Some(p) if p == ALPN_MODULE => Role::Module,
        Some(p) if p == ALPN_ENROL => return enrol(conn, &s).await,
        other => {
            warn!(%remote, alpn = ?other.map(String::from_utf8_lossy), "unknown application protocol");
            conn.close(close::VERSION.into(), b"unknown application protocol");
            return;
        }
    };
    let peer = match peer(&conn, role) {
        Ok(p) => p,
        Err(e) => {
            EndpointStats::bump(&stats.failed_handshakes);
            warn!(%remote, error = %e, "credential refused");
            conn.close(
                close::AUTH.into(),
                format!("authentication: {e}").as_bytes(),
            );
            return;
        }
    };
    if s.credentials.is_revoked(role, &peer.serial) {
        EndpointStats::bump(&stats.failed_handshakes);
        warn!(%remote, role = role.name(), id = peer.id, serial = peer.serial, "revoked certificate refused");
        conn.close(close::REVOKED.into(), b"certificate revoked");
        return;
    }
    let credentials = s.credentials.clone();
    let seen = peer.clone();
    tokio::spawn(async move {
        if let Err(e) = credentials
            .seen(role, &seen.id, &seen.serial, seen.not_after_ms)
            .await
        {
            warn!(id = seen.id, error = %e, "the certificate seen could not be recorded");
        }
    });
    let claim = s.live.claim(role, &peer.id, &peer.serial, &conn);
    let id = peer.id;
    let started = Instant::now();
    match role {
        Role::Agent => {
            conn.set_receive_window(window(s.limits.agent.max_frame));
            let dispatch = Some(s.dispatch);
            let limits = s.limits.agent_session();
            ingest::serve(s.fleet, dispatch, conn, id, limits, claim).await
        }
        Role::Module => {
            conn.set_receive_window(window(s.limits.module.max_frame));
            let limits = s.limits.module_session();
            remote::serve(s.modules, conn, id, limits, claim).await
        }
    }
    debug!(%remote, lasted = ?started.elapsed(), "connection done");
}

/// An enrolment or renewal: the client's agent or module certificate, if
/// it presented one, must be valid and unrevoked.
async fn enrol(conn: quinn::Connection, s: &Shared) {
    let Some(enroller) = &s.enroller else {
        conn.close(close::VERSION.into(), b"enrolment is off");
        return;
    };
    let presented = match crate::tls::peer_in_any_role(&conn) {
        Ok((role, p)) if s.credentials.is_revoked(role, &p.serial) => {
            conn.close(close::REVOKED.into(), b"certificate revoked");
            return;
        }
        Ok(p) => Some(p),
        Err(crate::tls::PeerError::NoCertificate) => None,
        Err(e) => {
            conn.close(
                close::AUTH.into(),
                format!("authentication: {e}").as_bytes(),
            );
            return;
        }
    };
    enroller.serve(conn, presented, &s.fleet.endpoint).await;
}

fn window(max_frame: usize) -> quinn::VarInt {
    quinn::VarInt::from_u64(max_frame as u64).unwrap_or(quinn::VarInt::MAX)
}
