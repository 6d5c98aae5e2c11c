//! `vcp-example-autoscaler`: an example remote custom module (a predictive
//! autoscaler) run by a vendor as its own process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use vcp_common::identity::{certs_from_pem_file, Role, SUPERVISOR_NAME};
use vcp_module_sdk::enrol::Enrolment;
use vcp_module_sdk::predictive::PredictiveAutoscaler;
use vcp_module_sdk::{run, ModuleConnect};

/// Connects to a vcp supervisor as a custom autoscaling module and answers
/// its solicitations with forecasts-based instance counts.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Log format on stderr: `text` (colours only on a terminal) or `json`
    /// (one object per line, for log shippers).
    #[arg(long, default_value = "text")]
    log_format: vcp_common::log::LogFormat,
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
    /// The module credential: certificate for `<id>.module.vcp` (PEM,
    /// from `vcp certs`; with --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The credential's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// A join token for modules (`vcp token create --role enrol --account
    /// 'module:<id>'`): without --cert and --key, the module makes its key
    /// here, enrols once, keeps its certificate in --state-dir and renews
    /// it when due.
    #[arg(long)]
    enrol_token: Option<String>,
    /// Where an enrolled credential is kept (`module.pem`).
    #[arg(long, default_value = ".")]
    state_dir: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    vcp_common::log::init(cli.log_format, "info");
    let enrolment = Enrolment {
        role: Role::Module,
        id: cli.id.clone(),
        supervisor: cli.supervisor,
        server_name: SUPERVISOR_NAME.into(),
        ca: certs_from_pem_file(&cli.ca)?,
        state_dir: cli.state_dir.clone(),
    };
    let files = cli.cert.as_deref().zip(cli.key.as_deref());
    let (tls, renew) = enrolment
        .credential(files, cli.enrol_token.as_deref())
        .await
        .context("the module's credential")?;
    let connect = ModuleConnect {
        supervisor: cli.supervisor,
        server_name: SUPERVISOR_NAME.into(),
        tls,
        max_frame: 16 << 20,
        renewal: renew.then_some(enrolment),
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
