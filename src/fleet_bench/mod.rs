//! `vcp bench-fleet`: one real `vcp-supervisor` (a process of its own)
//! against N SIMULATED hosts, each with its own certificate and agent id,
//! over real QUIC with mutual TLS through the agent's own sampler, encoder,
//! spool and uplink (which reconnects as an agent does). Only the sensors
//! are simulated (see [`host`]). Hosts connect gradually; once all are in,
//! the supervisor's figures are printed every 10 s and at the end.

mod child;
mod host;
mod report;
mod scrape;

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
}

const PROGRESS: Duration = Duration::from_secs(10);

async fn mark(child: &child::Child, token: &str) -> anyhow::Result<Mark> {
    Ok(Mark {
        scrape: scrape::scrape(child.api, token).await?,
        cpu_seconds: child.cpu_seconds()?,
        bench_cpu_seconds: child::cpu_seconds("/proc/self/stat")?,
        at: Instant::now(),
    })
}

pub async fn run(args: FleetBenchArgs) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.hosts > 0, "--hosts must be at least 1");
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
    let real = host::this_machine();
    let series = Arc::new(host::profile(args.series, &real));
    println!(
        "SIMULATED fleet: {} hosts of {} series ({:?}) against a real supervisor (pid {}, {})",
        args.hosts,
        series.len(),
        args.series,
        child.pid(),
        child.quic
    );
    let started = Instant::now();
    let step = Duration::from_secs_f64(1.0 / f64::from(args.connect_rate.max(1)));
    let mut agents = Vec::with_capacity(args.hosts);
    for i in 0..args.hosts {
        let id = format!("sim-{}", i + 1);
        let tls = ca.material(&ca.agent(&id)?);
        let opts = options(&id, child.quic, tls);
        let sensor = host::SimulatedHost::new(series.clone(), i as u64);
        agents.push(Agent::start_with(opts, |_| vec![Box::new(sensor)])?);
        tokio::time::sleep_until((started + step * (i as u32 + 1)).into()).await;
    }
    // Every host in, or as many as came within a minute of the ramp.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connected = scrape::scrape(child.api, &token)
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
    let first = mark(&child, &token).await?;
    let end = first.at + Duration::from_secs(args.duration);
    let figures = loop {
        let next = (Instant::now() + PROGRESS).min(end);
        tokio::time::sleep_until(next.into()).await;
        let now = mark(&child, &token).await?;
        let figures = Figures::between(
            args.series,
            args.hosts,
            series.len(),
            &first,
            &now,
            child.rss_kb()?,
        );
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
    child.stop()?;
    Ok(figures)
}

fn options(
    id: &str,
    supervisor: std::net::SocketAddr,
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
    }
}
