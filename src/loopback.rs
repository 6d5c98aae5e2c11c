//! A supervisor and N agents on 127.0.0.1 in one process, with certificates
//! made in memory: what `vcp demo` runs and what the loopback tests drive.
//! Every agent reads this machine's real sensors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use vcp_agent::uplink::UplinkConfig;
use vcp_agent::{Agent, AgentOptions};
use vcp_common::identity::{TlsMaterial, SUPERVISOR_NAME};
use vcp_common::module::ModuleLogic;
use vcp_module_sdk::ModuleConnect;
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::{ApiOptions, Supervisor, SupervisorConfig};

use crate::certs::FleetCa;

#[derive(Debug, Clone)]
pub struct LoopbackOptions {
    pub agents: usize,
    pub data_dir: PathBuf,
    pub sample_interval: Duration,
    pub window: Duration,
    pub spool_batches: usize,
    /// A directory under which each agent keeps its spool (`<dir>/<id>`);
    /// `None`: in memory.
    pub state_dir: Option<PathBuf>,
    /// Control planes and modules; `SupervisorFile::default()` runs
    /// telemetry only.
    pub control: SupervisorFile,
    /// The HTTP API (off when `None`).
    pub api: Option<ApiOptions>,
}

/// A running loopback fleet.
pub struct Loopback {
    pub ca: FleetCa,
    pub supervisor: Option<Supervisor>,
    pub addr: SocketAddr,
    pub agents: Vec<(String, Agent)>,
    supervisor_tls: TlsMaterial,
    /// What the fleet was started with; a restarted supervisor takes the
    /// options as they are then.
    pub opts: LoopbackOptions,
}

/// What a stopped loopback fleet leaves for reports.
pub struct Stopped {
    pub fleet: std::sync::Arc<vcp_supervisor::fleet::Fleet>,
    pub control: std::sync::Arc<vcp_supervisor::control::Control>,
}

/// A remote module running on its own thread and runtime.
pub struct RemoteModule {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<String>>,
}

impl RemoteModule {
    pub fn spawn<M: ModuleLogic + 'static>(mut logic: M, connect: ModuleConnect) -> RemoteModule {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return e.to_string(),
            };
            // A stop (or a dropped handle) closes the session cleanly.
            let stop = async {
                let _ = stopped.await;
            };
            rt.block_on(async {
                match vcp_module_sdk::run(&mut logic, &connect, stop).await {
                    Ok(()) => "stopped".to_string(),
                    Err(e) => e.to_string(),
                }
            })
        });
        RemoteModule {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Whether the module gave up by itself (it was refused).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the module; returns why it ended.
    pub fn stop(mut self) -> String {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.thread
            .take()
            .map(|t| t.join().unwrap_or_else(|_| "module thread panicked".into()))
            .unwrap_or_default()
    }
}

impl Drop for RemoteModule {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Options of a loopback agent `id` reaching the supervisor at `addr`.
pub fn agent_options(
    id: &str,
    addr: SocketAddr,
    tls: TlsMaterial,
    opts: &LoopbackOptions,
) -> AgentOptions {
    AgentOptions {
        uplink: UplinkConfig {
            agent_id: id.to_owned(),
            hostname: format!("{id} (loopback)"),
            supervisor: addr,
            server_name: SUPERVISOR_NAME.into(),
            spool: vcp_agent::spool::SpoolConfig {
                dir: opts.state_dir.as_ref().map(|d| d.join(id)),
                ..vcp_agent::spool::SpoolConfig::memory(opts.spool_batches)
            },
            zstd_level: 3,
            max_frame: vcp_common::protocol::DEFAULT_MAX_FRAME,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
        },
        tls,
        sample_interval: opts.sample_interval,
        window: opts.window,
        roots: Default::default(),
        actuator: Default::default(),
        sensors: Default::default(),
        max_series: vcp_common::codec::DEFAULT_MAX_SERIES,
        renewal: None,
    }
}

/// Agent ids of a loopback fleet: agent-1 … agent-N.
pub fn agent_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("agent-{i}")).collect()
}

impl Loopback {
    pub async fn start(opts: LoopbackOptions) -> anyhow::Result<Loopback> {
        let ca = FleetCa::new("vcp demo CA")?;
        let supervisor_tls = ca.material(&ca.supervisor()?);
        let supervisor = start_supervisor(&supervisor_tls, "127.0.0.1:0".parse()?, &opts).await?;
        let addr = supervisor.local_addr()?;
        let mut fleet = Loopback {
            ca,
            supervisor: Some(supervisor),
            addr,
            agents: Vec::new(),
            supervisor_tls,
            opts,
        };
        for id in agent_ids(fleet.opts.agents) {
            let agent =
                Agent::start(fleet.agent_options(&id, fleet.ca.material(&fleet.ca.agent(&id)?)))
                    .with_context(|| format!("starting {id}"))?;
            fleet.agents.push((id, agent));
        }
        Ok(fleet)
    }

    /// Starts one more agent `id`, with its options adjusted by `customize`.
    pub fn add_agent(
        &mut self,
        id: &str,
        customize: impl FnOnce(&mut AgentOptions),
    ) -> anyhow::Result<()> {
        let mut opts = self.agent_options(id, self.ca.material(&self.ca.agent(id)?));
        customize(&mut opts);
        let agent = Agent::start(opts).with_context(|| format!("starting {id}"))?;
        self.agents.push((id.to_owned(), agent));
        Ok(())
    }

    /// Options for an agent of this fleet presenting `tls`.
    pub fn agent_options(&self, id: &str, tls: TlsMaterial) -> AgentOptions {
        agent_options(id, self.addr, tls, &self.opts)
    }

    /// Connection settings for a remote module holding the credential of
    /// module `id` issued by this fleet's CA.
    pub fn module_connect(&self, id: &str) -> anyhow::Result<ModuleConnect> {
        let credential = self.ca.module(id)?;
        Ok(ModuleConnect {
            supervisor: self.addr,
            server_name: SUPERVISOR_NAME.into(),
            tls: self.ca.material(&credential),
            max_frame: 16 << 20,
            renewal: None,
        })
    }

    /// Runs `logic` as a remote module over QUIC, on its own thread and
    /// runtime as a vendor's process would, reconnecting until refused or
    /// stopped.
    pub fn spawn_module<M: ModuleLogic + 'static>(&self, logic: M) -> anyhow::Result<RemoteModule> {
        let connect = self.module_connect(&logic.spec().id)?;
        Ok(RemoteModule::spawn(logic, connect))
    }

    /// The address of the supervisor's HTTP API (panics if it has none).
    pub fn api_addr(&self) -> SocketAddr {
        self.supervisor()
            .api
            .as_ref()
            .expect("the supervisor runs its HTTP API")
            .addr
    }

    pub fn supervisor(&self) -> &Supervisor {
        self.supervisor
            .as_ref()
            .expect("the supervisor runs except inside restart")
    }

    /// Stops the supervisor and starts a new one on the same address and
    /// data directory, as after a crash and restart.
    pub async fn restart_supervisor(&mut self, down_for: Duration) -> anyhow::Result<()> {
        if let Some(s) = self.supervisor.take() {
            s.shutdown().await;
        }
        tokio::time::sleep(down_for).await;
        self.supervisor =
            Some(start_supervisor(&self.supervisor_tls, self.addr, &self.opts).await?);
        Ok(())
    }

    /// Stops every agent (each delivers what it can), then the supervisor.
    /// Returns the stopped supervisor's state for reporting.
    pub async fn stop(mut self) -> Stopped {
        for (_, agent) in self.agents.drain(..) {
            agent.stop().await;
        }
        let sup = self.supervisor.take().expect("running");
        let stopped = Stopped {
            fleet: sup.fleet.clone(),
            control: sup.control.clone(),
        };
        sup.shutdown().await;
        stopped
    }
}

async fn start_supervisor(
    tls: &TlsMaterial,
    listen: SocketAddr,
    opts: &LoopbackOptions,
) -> anyhow::Result<Supervisor> {
    Supervisor::start(SupervisorConfig {
        listen,
        data_dir: opts.data_dir.clone(),
        tls: tls.clone(),
        control: opts.control.clone(),
        api: opts.api.clone(),
        enrolment: None,
    })
    .await
    .context("starting the supervisor")
}
