//! `vcp bench-fleet`: one real `vcp-supervisor` (a process of its own)
//! against N SIMULATED hosts, each with its own certificate and agent id,
//! over real QUIC with mutual TLS through the agent's own sampler, encoder,
//! spool and uplink (which reconnects as an agent does). Only the sensors
//! are simulated (see [`host`]). Hosts connect gradually; once all are in,
//! the supervisor's figures (from its `/metrics`, its `process_*`
//! families included) are printed every 10 s and at the end. With
//! `--supervisor` it targets a running supervisor instead.

mod child;
pub mod host;
mod report;
mod scrape;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use vcp_agent::uplink::UplinkConfig;
use vcp_agent::{Agent, AgentOptions};
use vcp_common::identity::SUPERVISOR_NAME;
use vcp_store::accounts::Role;

pub use child::serve as serve_supervisor;
pub use host::Profile;
pub use report::Figures;

use crate::certs::FleetCa;
use report::Mark;

#[derive(Debug, Clone, clap::Args)]
pub struct FleetBenchArgs {
    /// SIMULATED hosts to run.
    #[arg(long, default_value_t = 1000)]
    pub hosts: usize,
    /// What each host looks like: `small` (this machine's series) or
    /// `large` (64 cores, 8 NICs, 8 GPUs, 24 services: ~400 series).
    #[arg(long, value_enum, default_value_t = Profile::Small)]
    pub series: Profile,
    /// Seconds to measure once every host is connected.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Hosts started per second while the fleet ramps up.
    #[arg(long, default_value_t = 500)]
    pub connect_rate: u32,
    /// Also write the final figures to this file as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Target the running supervisor whose agents' (QUIC) address this is,
    /// instead of starting one.
    #[arg(long, requires_all = ["certs", "api", "token"])]
    pub supervisor: Option<SocketAddr>,
    /// With `--supervisor`: the directory `vcp certs` wrote; its `ca.pem`
    /// and `ca.key` issue the hosts' certificates.
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// With `--supervisor`: its HTTP API address (figures come from its
    /// `/metrics`).
    #[arg(long)]
    pub api: Option<SocketAddr>,
    /// With `--supervisor`: an operator's token (`vcp token create
    /// --account operator --role operator`).
    #[arg(long)]
    pub token: Option<String>,
}

/// The supervisor under test and how to reach it.
struct Target {
    ca: FleetCa,
    quic: SocketAddr,
    api: SocketAddr,
    token: String,
    /// The process the bench started, and its directory.
    own: Option<(child::Child, tempfile::TempDir)>,
}

impl Target {
    fn open(args: &FleetBenchArgs) -> anyhow::Result<Target> {
        if let (Some(quic), Some(certs), Some(api), Some(token)) =
            (args.supervisor, &args.certs, args.api, &args.token)
        {
            return Ok(Target {
                ca: FleetCa::load(certs)?,
                quic,
                api,
                token: token.clone(),
                own: None,
            });
        }
        let dir = tempfile::tempdir().context("creating the bench's directory")?;
        let ca = FleetCa::new("vcp bench-fleet CA")?;
        let supervisor = ca.supervisor()?;
        std::fs::write(dir.path().join(child::CA), &ca.cert_pem)?;
        std::fs::write(dir.path().join(child::CERT), &supervisor.cert_pem)?;
        std::fs::write(dir.path().join(child::KEY), &supervisor.key_pem)?;
        let token = {
            let (store, _) = vcp_store::Store::open(&dir.path().join("store"))?;
            store.accounts().create_token("operator", Role::Operator)?
        };
        let child = child::Child::start(dir.path())?;
        Ok(Target {
            ca,
            quic: child.quic,
            api: child.api,
            token,
            own: Some((child, dir)),
        })
    }

    fn describe(&self) -> String {
        match &self.own {
            Some((child, _)) => format!("pid {}, {}", child.pid(), self.quic),
            None => format!("at {}", self.quic),
        }
    }
}

const PROGRESS: Duration = Duration::from_secs(10);

async fn mark(target: &Target) -> anyhow::Result<Mark> {
    Ok(Mark {
        scrape: scrape::scrape(target.api, &target.token).await?,
        bench_cpu_seconds: own_cpu_seconds(),
        at: Instant::now(),
    })
}

/// CPU time (user and system) this process used so far, seconds.
fn own_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is handed; it is read only on
    // success.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return 0.0;
    }
    // SAFETY: initialised by the successful call above.
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

pub async fn run(args: FleetBenchArgs) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.hosts > 0, "--hosts must be at least 1");
    let target = Target::open(&args)?;
    let real = host::this_machine();
    let series = Arc::new(host::profile(args.series, &real));
    println!(
        "SIMULATED fleet: {} hosts of {} series ({:?}) against a real supervisor ({})",
        args.hosts,
        series.len(),
        args.series,
        target.describe()
    );
    let started = Instant::now();
    let step = Duration::from_secs_f64(1.0 / f64::from(args.connect_rate.max(1)));
    let mut agents = Vec::with_capacity(args.hosts);
    for i in 0..args.hosts {
        let id = format!("sim-{}", i + 1);
        let tls = target.ca.material(&target.ca.agent(&id)?);
        let opts = options(&id, target.quic, tls);
        let sensor = host::SimulatedHost::new(series.clone(), i as u64);
        agents.push(Agent::start_with(opts, |_| vec![Box::new(sensor)])?);
        tokio::time::sleep_until((started + step * (i as u32 + 1)).into()).await;
    }
    // Every host in, or as many as came within a minute of the ramp.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connected = scrape::scrape(target.api, &target.token)
            .await?
            .sum("vcp_agents_connected") as usize;
        if connected >= args.hosts || Instant::now() >= deadline {
            println!(
                "{connected} of {} hosts connected after {:.1} s",
                args.hosts,
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let first = mark(&target).await?;
    let end = first.at + Duration::from_secs(args.duration);
    let figures = loop {
        let next = (Instant::now() + PROGRESS).min(end);
        tokio::time::sleep_until(next.into()).await;
        let now = mark(&target).await?;
        let figures = Figures::between(args.series, args.hosts, series.len(), &first, &now);
        if now.at >= end {
            break figures;
        }
        println!("{}", figures.line());
    };
    println!("{}", figures.line());
    println!("{}", figures.rounds_line());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The hosts stop first (each delivers what it holds), then the
    // supervisor.
    let mut stopping = tokio::task::JoinSet::new();
    for agent in agents {
        stopping.spawn(agent.stop());
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), stopping.join_all()).await;
    if let Some((child, _dir)) = target.own {
        child.stop()?;
    }
    Ok(figures)
}

fn options(
    id: &str,
    supervisor: SocketAddr,
    tls: vcp_common::identity::TlsMaterial,
) -> AgentOptions {
    AgentOptions {
        uplink: UplinkConfig {
            agent_id: id.to_owned(),
            hostname: format!("{id} (SIMULATED)"),
            supervisor,
            server_name: SUPERVISOR_NAME.into(),
            spool: vcp_agent::spool::SpoolConfig::memory(600),
            zstd_level: 3,
            max_frame: vcp_common::protocol::DEFAULT_MAX_FRAME,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
        },
        tls,
        sample_interval: Duration::from_secs(1),
        window: Duration::from_secs(1),
        roots: Default::default(),
        actuator: Default::default(),
        sensors: Default::default(),
        max_series: vcp_common::codec::DEFAULT_MAX_SERIES,
        renewal: None,
    }
}
