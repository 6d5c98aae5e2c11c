//! `vcp-supervisor`: the central supervisor of a vcp fleet.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use vcp_common::identity::TlsMaterial;
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::{ApiOptions, Supervisor, SupervisorConfig};

/// Accepts agents over QUIC (mutual TLS against the fleet CA), ingests
/// their telemetry exactly once and keeps the fleet view.
///
/// Certificates come from `vcp certs --out DIR`.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Log format on stderr: `text` (colours only on a terminal) or `json`
    /// (one object per line, for log shippers).
    #[arg(long, default_value = "text")]
    log_format: vcp_common::log::LogFormat,
    /// UDP address to listen on for agents.
    #[arg(long, default_value = "127.0.0.1:4433")]
    listen: SocketAddr,
    /// Directory of the embedded store (SQLite). Default: the user's data
    /// directory, e.g. ~/.local/share/vcp.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Fleet CA certificate (PEM): agents must chain to it.
    #[arg(long)]
    ca: PathBuf,
    /// The supervisor's certificate (PEM), valid for supervisor.vcp.
    #[arg(long)]
    cert: PathBuf,
    /// The supervisor's private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// Customers, service sets, control planes and custom modules (TOML;
    /// see supervisor/supervisor.example.toml). Without it the supervisor
    /// only ingests telemetry.
    #[arg(long)]
    config: Option<PathBuf>,
    /// TCP address of the HTTP API, metrics and dashboard (create tokens
    /// with `vcp token create`).
    #[arg(long, default_value = vcp_supervisor::api::DEFAULT_LISTEN)]
    api_listen: SocketAddr,
    /// Serve the HTTP API and dashboard over TLS with this certificate
    /// (PEM; the supervisor's own from `vcp certs` will do, for clients
    /// that trust the fleet CA). Without it the API is plain HTTP: keep it
    /// on 127.0.0.1.
    #[arg(long, requires = "api_tls_key")]
    api_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--api-tls-cert`.
    #[arg(long, requires = "api_tls_cert")]
    api_tls_key: Option<PathBuf>,
    /// Run without the HTTP API.
    #[arg(long)]
    no_api: bool,
    /// The fleet CA's private key (PEM; `ca.key` from `vcp certs`): turns
    /// on enrolment (agents join with a join token, and renew their
    /// certificates). Without it enrolment is off. The key is read from
    /// here and kept nowhere else.
    #[arg(long)]
    enrol_ca_key: Option<PathBuf>,
    /// How long the certificates enrolment and renewal issue live (`90d`,
    /// `12h`…); agents renew them when two thirds have passed.
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
    cert_validity: std::time::Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    vcp_common::log::init(cli.log_format, "info");
    let tls = TlsMaterial::from_pem_files(&cli.ca, &cli.cert, &cli.key)?;
    let control = match &cli.config {
        Some(path) => SupervisorFile::load(path)?,
        None => SupervisorFile::default(),
    };
    let api_tls = match (&cli.api_tls_cert, &cli.api_tls_key) {
        (Some(cert), Some(key)) => Some(vcp_supervisor::tls::https_config(cert, key)?),
        _ => {
            if !cli.no_api && !cli.api_listen.ip().is_loopback() {
                tracing::warn!(listen = %cli.api_listen, "the API is plain HTTP on a non-loopback address: tokens cross the network in clear text (use --api-tls-cert/--api-tls-key)");
            }
            None
        }
    };
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let enrolment = match &cli.enrol_ca_key {
        Some(key) => Some(vcp_supervisor::EnrolmentOptions {
            ca_pem: read(&cli.ca)?,
            ca_key_pem: read(key)?,
            validity: cli.cert_validity,
        }),
        None => None,
    };
    let supervisor = Supervisor::start(SupervisorConfig {
        listen: cli.listen,
        data_dir: cli
            .data_dir
            .unwrap_or_else(vcp_supervisor::config::default_data_dir),
        tls,
        control,
        api: (!cli.no_api).then(|| ApiOptions {
            tls: api_tls,
            ..ApiOptions::new(cli.api_listen)
        }),
        enrolment,
    })
    .await
    .context("starting the supervisor")?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    supervisor.shutdown().await;
    Ok(())
}
