//! The supervisor process: QUIC endpoint, accept loop, and the shared
//! fleet state. Connections are dispatched by ALPN.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::{info, warn};
use vcp_common::frame::{ALPN_AGENT, ALPN_MODULE};
use vcp_common::identity::TlsMaterial;

use crate::accounts::{Accounts, CONTROL_DB};
use crate::api::{ApiServer, ApiState};
use crate::config::SupervisorFile;
use crate::control::Control;
use crate::fleet::Fleet;
use crate::ingest::{self, IngestLimits};
use crate::ledger::Ledger;
use crate::modules::remote;
use crate::provision::store::PlaneStore;
use crate::provision::tasks::{Provisioner, DEPROVISION, PROVISION};
use crate::store::{Store, StoreError};
use crate::tls::{server_config, TlsError};
use crate::workflow::Engine;

/// How to run a supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: TlsMaterial,
    pub limits: IngestLimits,
    /// Accounts, service sets, control planes and modules.
    pub control: SupervisorFile,
    /// The provisioning API, metrics and dashboard (off when `None`).
    pub api: Option<ApiOptions>,
}

/// Where and how the HTTP API runs.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub listen: SocketAddr,
    /// For tests: a provisioning task of this name never finishes, as if
    /// the supervisor died while running it.
    pub hold_task: Option<String>,
}

impl ApiOptions {
    pub fn new(listen: SocketAddr) -> ApiOptions {
        ApiOptions {
            listen,
            hold_task: None,
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
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Accounts(#[from] crate::accounts::AccountsError),
    #[error(transparent)]
    Planes(#[from] crate::provision::store::PlaneStoreError),
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
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
    pub engine: Arc<Engine>,
    /// The HTTP API, when configured.
    pub api: Option<ApiServer>,
    endpoint: quinn::Endpoint,
    accept: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Opens the store, binds the endpoint and starts accepting agents.
    pub async fn start(config: SupervisorConfig) -> Result<Supervisor, StartError> {
        let (store, records) = Store::open(&config.data_dir)?;
        let fleet = Arc::new(Fleet::new(store, records));
        let server = server_config(&config.tls, &[ALPN_AGENT, ALPN_MODULE])?;
        let endpoint =
            quinn::Endpoint::server(server, config.listen).map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        info!(listen = %endpoint.local_addr().map_or(config.listen, |a| a), data_dir = %config.data_dir.display(), "supervisor listening");
        let (ledger, _) = Ledger::open(&config.data_dir)?;
        let planes = Arc::new(PlaneStore::open(&config.data_dir)?);
        let control = Control::start(
            config.control,
            fleet.clone(),
            Some(ledger),
            planes.active()?,
        );
        let accounts = Arc::new(Accounts::open(&config.data_dir)?);
        // Workflows left unfinished by an earlier run resume here.
        let engine = Engine::open(
            &config.data_dir.join(CONTROL_DB),
            vec![&PROVISION, &DEPROVISION],
            Arc::new(Provisioner {
                control: control.clone(),
                store: planes.clone(),
                hold: config.api.as_ref().and_then(|a| a.hold_task.clone()),
            }),
        )?;
        let api = match &config.api {
            Some(opts) => Some(
                ApiServer::start(
                    opts.listen,
                    ApiState {
                        control: control.clone(),
                        accounts: accounts.clone(),
                        planes,
                        engine: engine.clone(),
                        data_dir: config.data_dir.clone(),
                    },
                )
                .await
                .map_err(|source| StartError::ApiBind {
                    addr: opts.listen,
                    source,
                })?,
            ),
            None => None,
        };
        let accept = tokio::spawn(accept_loop(
            endpoint.clone(),
            fleet.clone(),
            control.clone(),
            config.limits,
        ));
        Ok(Supervisor {
            fleet,
            control,
            accounts,
            engine,
            api,
            endpoint,
            accept,
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
        let _ = self.accept.await;
        if let Some(api) = &self.api {
            api.stop();
        }
        self.engine.stop();
        self.control.stop();
        self.fleet.forget_connections();
        self.endpoint.wait_idle().await;
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    fleet: Arc<Fleet>,
    control: Arc<Control>,
    limits: IngestLimits,
) {
    let mut tasks = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        let fleet = fleet.clone();
        let control = control.clone();
        let limits = limits.clone();
        tasks.spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    warn!(%remote, error = %e, "handshake refused");
                    return;
                }
            };
            let alpn = conn
                .handshake_data()
                .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                .and_then(|d| d.protocol);
            match alpn.as_deref() {
                Some(p) if p == ALPN_AGENT => ingest::serve(fleet, Some(control.dispatch.clone()), conn, limits).await,
                Some(p) if p == ALPN_MODULE => remote::serve(control, conn, limits.max_frame).await,
                other => {
                    warn!(%remote, alpn = ?other.map(String::from_utf8_lossy), "unknown application protocol");
                    conn.close(vcp_common::protocol::close::VERSION.into(), b"unknown application protocol");
                }
            }
        });
        // Reap finished connection tasks so the set does not grow forever.
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
}
