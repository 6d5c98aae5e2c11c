//! `vcp`: the operator's command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod admin;

/// vcp: virtual control planes for physical server fleets.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` (colours only on a terminal) or `json`
    /// (one object per line, for log shippers).
    #[arg(long, global = true, default_value = "text")]
    log_format: vcp_common::log::LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a supervisor and N agents on loopback, all reading this machine.
    Demo(vcp::demo::DemoArgs),
    /// Run the supervisor's real round loop against simulated modules and
    /// print round counts, deadline misses and round-time percentiles.
    BenchRounds(vcp::bench_rounds::BenchArgs),
    /// Run a real supervisor (its own process) against N SIMULATED hosts
    /// over QUIC and print its CPU, memory, ingest rate and latency,
    /// rounds and losses.
    BenchFleet(vcp::fleet_bench::FleetBenchArgs),
    /// The supervisor process `bench-fleet` starts (not for direct use).
    #[command(hide = true)]
    BenchFleetSupervisor {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print an account's cost statement for a billing period from the
    /// ledger in the supervisor's data directory.
    Statement {
        /// Account: `customer:ID`, `vendor:ID` or `operator`.
        #[arg(long)]
        account: String,
        /// `all`, a month `2026-11`, a day `2026-11-26` or an hour `2026-11-26T10` (UTC).
        #[arg(long, default_value = "all")]
        period: String,
        #[arg(long, value_enum, default_value_t = StatementFormat::Table)]
        format: StatementFormat,
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage the bearer tokens of the HTTP API.
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Agents' certificates: list them, revoke an agent's.
    #[command(subcommand)]
    Agent(admin::CredentialCommand),
    /// Remote modules' certificates: list them, revoke a module's.
    #[command(subcommand)]
    Module(admin::CredentialCommand),
    /// Write a fleet CA, the supervisor's certificate and one client
    /// certificate per agent, as PEM files.
    Certs {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Number of agents: ids host-1 … host-N.
        #[arg(long, default_value_t = 1, conflicts_with = "agent_id")]
        agents: usize,
        /// Explicit agent ids instead of host-1 … host-N (repeatable).
        #[arg(long = "agent-id")]
        agent_id: Vec<String>,
        /// Also issue a module credential for this custom module id
        /// (repeatable): `<id>.pem`/`<id>.key` for `<id>.module.vcp`.
        #[arg(long = "module")]
        module: Vec<String>,
        /// How long the supervisor's, agents' and modules' certificates
        /// live (`90d`, `1y`, …); the CA lives 10 years.
        #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
        validity: std::time::Duration,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatementFormat {
    Table,
    Json,
    Csv,
}

fn statement(
    account: &str,
    period: &str,
    format: StatementFormat,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    use vcp_store::ledger::{render, Format, LedgerReader, Period};
    let dir = data_dir.unwrap_or_else(vcp_supervisor::config::default_data_dir);
    let reader = LedgerReader::open(&dir)
        .with_context(|| format!("opening the ledger in {}", dir.display()))?;
    let statement = reader.statement(account, &Period::parse(period)?)?;
    let format = match format {
        StatementFormat::Table => Format::Table,
        StatementFormat::Json => Format::Json,
        StatementFormat::Csv => Format::Csv,
    };
    print!("{}", render(&statement, format));
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A simulated fleet's hosts retry as agents do; ten thousand of them
    // warning about each retry would bury the bench's report.
    let quiet = match cli.command {
        Command::BenchFleet(_) => "warn,vcp_agent=error",
        _ => "warn",
    };
    vcp_common::log::init(cli.log_format, quiet);
    match cli.command {
        Command::Demo(args) => runtime()?.block_on(vcp::demo::run(args)),
        Command::BenchRounds(args) => runtime()?.block_on(vcp::bench_rounds::run(args)),
        Command::BenchFleet(args) => runtime()?.block_on(vcp::fleet_bench::run(args)).map(drop),
        Command::BenchFleetSupervisor { dir } => {
            runtime()?.block_on(vcp::fleet_bench::serve_supervisor(dir))
        }
        Command::Statement {
            account,
            period,
            format,
            data_dir,
        } => statement(&account, &period, format, data_dir),
        Command::Token(command) => admin::tokens(command),
        Command::Agent(command) => admin::credentials(vcp_common::identity::Role::Agent, command),
        Command::Module(command) => admin::credentials(vcp_common::identity::Role::Module, command),
        Command::Certs {
            out,
            agents,
            agent_id,
            module,
            validity,
        } => {
            let ids = if agent_id.is_empty() {
                (1..=agents).map(|i| format!("host-{i}")).collect()
            } else {
                agent_id
            };
            for f in vcp::certs::write_fleet_valid(&out, &ids, &module, validity)? {
                println!("{}", f.display());
            }
            Ok(())
        }
    }
}
