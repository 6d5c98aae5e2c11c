//! `vcp`: the operator's command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// vcp: virtual control planes for physical server fleets.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    Token(TokenCommand),
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

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token for an account and print it (it is stored hashed and
    /// cannot be shown again).
    Create {
        /// The account: `operator`, a customer id or a vendor id.
        #[arg(long)]
        account: String,
        /// operator, customer or vendor.
        #[arg(long)]
        role: vcp_store::accounts::Role,
        /// How long the token lives: `3s`, `1h`, `30d`…, or `never`
        /// (operator only).
        #[arg(long, default_value = "90d")]
        ttl: vcp_store::accounts::Ttl,
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The supervisor's configuration: when given, the account must
        /// exist there with that role.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the tokens (never their secrets).
    List {
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Revoke a token by its id (from `vcp token list`); a running
    /// supervisor refuses it within seconds.
    Revoke {
        id: String,
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Who runs this command, for the audit trail.
fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown user".into());
    format!("cli ({user})")
}

fn accounts(data_dir: Option<PathBuf>) -> anyhow::Result<vcp_store::accounts::Accounts> {
    let dir = data_dir.unwrap_or_else(vcp_supervisor::config::default_data_dir);
    let (store, _) = vcp_store::Store::open(&dir)
        .with_context(|| format!("opening the store in {}", dir.display()))?;
    Ok(store.accounts())
}

fn create_token(
    account: &str,
    role: vcp_store::accounts::Role,
    ttl: vcp_store::accounts::Ttl,
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    use vcp_store::accounts::{Role, Ttl};
    use vcp_supervisor::config::check_account;
    if account == vcp_core::plane::OPERATOR && role != Role::Operator {
        anyhow::bail!("account {account:?} is the operator's: use --role operator");
    }
    if let Some(path) = config {
        let file = vcp_supervisor::config::SupervisorFile::load(&path)?;
        check_account(&file, account, role).map_err(anyhow::Error::msg)?;
    } else if role == Role::Operator {
        check_account(&Default::default(), account, role).map_err(anyhow::Error::msg)?;
    }
    if ttl == Ttl::Never {
        tracing::warn!("this token never expires: revoke it with `vcp token revoke` when done");
    }
    let issued = accounts(data_dir)?.issue(account, role, ttl, &cli_actor())?;
    println!("{}", issued.token);
    Ok(())
}

fn list_tokens(data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use vcp_store::accounts::rfc3339;
    let time = |ms: Option<i64>, none: &str| ms.map_or(none.to_owned(), rfc3339);
    println!(
        "{:<12}  {:<16}  {:<8}  {:<20}  {:<20}  {:<20}  state",
        "id", "account", "role", "created", "expires", "last used"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for t in accounts(data_dir)?.list()? {
        let state = match (t.revoked_ms, t.expires_ms) {
            (Some(at), _) => format!("revoked {}", rfc3339(at)),
            (None, Some(e)) if e <= now => "expired".to_owned(),
            _ => "valid".to_owned(),
        };
        println!(
            "{:<12}  {:<16}  {:<8}  {:<20}  {:<20}  {:<20}  {state}",
            t.id,
            t.account,
            t.role.as_str(),
            rfc3339(t.created_ms),
            time(t.expires_ms, "never"),
            time(t.last_used_ms, "never"),
        );
    }
    Ok(())
}

fn revoke_token(id: &str, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let t = accounts(data_dir)?.revoke(id, &cli_actor())?;
    let at = t
        .revoked_ms
        .map_or_else(String::new, vcp_store::accounts::rfc3339);
    println!("revoked {} ({} {}) at {at}", t.id, t.role, t.account);
    Ok(())
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| quiet.into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
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
        Command::Token(TokenCommand::Create {
            account,
            role,
            ttl,
            data_dir,
            config,
        }) => create_token(&account, role, ttl, data_dir, config),
        Command::Token(TokenCommand::List { data_dir }) => list_tokens(data_dir),
        Command::Token(TokenCommand::Revoke { id, data_dir }) => revoke_token(&id, data_dir),
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
