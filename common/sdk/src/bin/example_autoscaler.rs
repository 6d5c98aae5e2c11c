//! `vcp-example-autoscaler`: an example remote custom module (a predictive
//! autoscaler) run by a vendor as its own process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use vcp_common::identity::{TlsMaterial, SUPERVISOR_NAME};
use vcp_module_sdk::predictive::PredictiveAutoscaler;
use vcp_module_sdk::{run, ModuleConnect};

/// Connects to a vcp supervisor as a custom autoscaling module and answers
/// its solicitations with forecasts-based instance counts.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The module id configured in the supervisor (its credential names it).
    #[arg(long)]
    id: String,
    /// The vendor id configured in the supervisor.
    #[arg(long, default_value = "predictive-labs")]
    vendor: String,
    /// Supervisor address.
    #[arg(long, default_value = "127.0.0.1:4433")]
    supervisor: SocketAddr,
    /// Fleet CA certificate (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The module credential: certificate for `<id>.module.vcp` (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// The credential's private key (PEM).
    #[arg(long)]
    key: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let tls = TlsMaterial::from_pem_files(&cli.ca, &cli.cert, &cli.key)?;
    let connect = ModuleConnect {
        supervisor: cli.supervisor,
        server_name: SUPERVISOR_NAME.into(),
        tls,
        max_frame: 16 << 20,
    };
    let mut module = PredictiveAutoscaler::new(&cli.id, &cli.vendor);
    // Ctrl-C or SIGINT: close the session with a reason, then exit.
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run(&mut module, &connect, stop)
        .await
        .context("the module stopped")
}
