//! `vcp-agent`: runs on every server of the fleet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use vcp_agent::config::AgentFile;
use vcp_agent::uplink::UplinkConfig;
use vcp_agent::{Agent, AgentOptions};
use vcp_transport::enrol::Enrolment;

/// Reads this server's CPU, memory, NIC, GPU and status telemetry and
/// streams it to the vcp supervisor over QUIC (mutual TLS).
///
/// Every option can also be set in the TOML file given with --config;
/// flags win over the file. Certificates come from `vcp certs`.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Log format on stderr: `text` (colours only on a terminal) or `json`
    /// (one object per line, for log shippers).
    #[arg(long, default_value = "text")]
    log_format: vcp_common::log::LogFormat,
    /// TOML configuration file (see agent/agent.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This agent's id; must match its certificate name `<id>.agent.vcp`.
    #[arg(long)]
    agent_id: Option<String>,
    /// Supervisor address, host:port (default 127.0.0.1:4433).
    #[arg(long)]
    supervisor: Option<String>,
    /// Fleet CA certificate (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// This agent's certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// This agent's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// A join token (`vcp token create --role enrol`): without --cert and
    /// --key, the agent makes its key here, enrols once and keeps its
    /// certificate in the state directory, renewing it when due.
    #[arg(long)]
    enrol_token: Option<String>,
    /// Milliseconds between samples (>= 100).
    #[arg(long)]
    sample_interval_ms: Option<u64>,
    /// Milliseconds per batch.
    #[arg(long)]
    window_ms: Option<u64>,
    /// Directory of the agent's spool and identity (default
    /// /var/lib/vcp-agent for root, else ~/.local/state/vcp-agent).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    vcp_common::log::init(cli.log_format, "info");
    let mut file = match &cli.config {
        Some(p) => AgentFile::load(p)?,
        None => AgentFile::default(),
    };
    macro_rules! flag {
        ($($f:ident),*) => { $( if let Some(v) = cli.$f.clone() { file.$f = v.into(); } )* };
    }
    flag!(
        agent_id,
        supervisor,
        ca,
        cert,
        key,
        enrol_token,
        sample_interval_ms,
        window_ms
    );
    if let Some(d) = cli.state_dir.clone() {
        file.state_dir = Some(d);
    }
    file.validate()?;
    let Some(agent_id) = file.agent_id.clone() else {
        bail!("no agent id: pass --agent-id or set agent_id in the config file");
    };
    let Some(ca) = file.ca.clone() else {
        bail!("no fleet CA: pass --ca (ca.pem from `vcp certs`)");
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let supervisor: SocketAddr = tokio::net::lookup_host(&file.supervisor)
            .await
            .with_context(|| format!("resolving supervisor address {}", file.supervisor))?
            .next()
            .with_context(|| format!("{} resolves to no address", file.supervisor))?;
        let enrolment = Enrolment {
            role: vcp_common::identity::Role::Agent,
            id: agent_id.clone(),
            supervisor,
            server_name: file.server_name.clone(),
            ca: vcp_common::identity::certs_from_pem_file(&ca)?,
            state_dir: file.state_dir(),
        };
        let files = file.cert.as_deref().zip(file.key.as_deref());
        let (tls, renew) = enrolment
            .credential(files, file.enrol_token.as_deref())
            .await
            .context("the agent's credential")?;
        let renewal = renew.then_some(enrolment);
        let opts = AgentOptions {
            uplink: UplinkConfig {
                agent_id,
                hostname: hostname(),
                supervisor,
                server_name: file.server_name.clone(),
                spool: vcp_agent::spool::SpoolConfig {
                    dir: Some(file.state_dir()),
                    max_bytes: file.spool_max_bytes,
                    memory_batches: file.spool_batches,
                    segment_bytes: vcp_agent::spool::DEFAULT_SEGMENT_BYTES,
                },
                zstd_level: file.zstd_level,
                max_frame: vcp_common::protocol::DEFAULT_MAX_FRAME,
                backoff_min: Duration::from_millis(200),
                backoff_max: Duration::from_secs(30),
            },
            tls,
            sample_interval: Duration::from_millis(file.sample_interval_ms),
            window: Duration::from_millis(file.window_ms),
            roots: Default::default(),
            actuator: file.actuator.clone(),
            sensors: file.sensors.clone(),
            max_series: file.max_series,
            renewal,
        };
        let agent = Agent::start(opts)?;
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        tracing::info!("stopping");
        agent.stop().await;
        Ok(())
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
