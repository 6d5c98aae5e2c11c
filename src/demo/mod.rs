//! `vcp demo`: a supervisor and N agents on loopback, all reading this
//! machine, with one live line a second and an optional JSON report.

pub mod closed_loop;
pub mod report;
pub mod scenario;
pub mod simulated;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use vcp_common::metric;
use vcp_common::module::{param, Target};
use vcp_core::view::HostSnapshot;
use vcp_supervisor::control::Control;
use vcp_supervisor::fleet::Fleet;

use crate::loopback::LoopbackOptions;
use vcp_module_sdk::predictive::PredictiveAutoscaler;
use vcp_store::ledger::{render, Format, LedgerReader, Period};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Number of loopback agents.
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// Seconds to run; without it the demo runs until Ctrl-C.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Write a JSON report here at the end.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Store directory; a temporary one is used (and removed) by default.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Milliseconds between samples.
    #[arg(long, default_value_t = 1000)]
    pub sample_interval_ms: u64,
    /// Milliseconds per batch.
    #[arg(long, default_value_t = 1000)]
    pub window_ms: u64,
    /// TCP address of the HTTP API, metrics and dashboard.
    #[arg(long, default_value = vcp_supervisor::api::DEFAULT_LISTEN)]
    pub api_listen: std::net::SocketAddr,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.agents >= 1, "--agents must be at least 1");
    let temp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary data directory")?;
            temp.path().to_owned()
        }
    };
    let opts = LoopbackOptions {
        agents: args.agents,
        data_dir: data_dir.clone(),
        sample_interval: Duration::from_millis(args.sample_interval_ms),
        window: Duration::from_millis(args.window_ms),
        spool_batches: 3600,
        // Each agent's durable spool, beside the supervisor's store.
        state_dir: Some(data_dir.join("agents")),
        control: scenario::control(args.agents)?,
        api: Some(vcp_supervisor::ApiOptions::new(args.api_listen)),
    };
    // agent-1 and agent-2 each host a SIMULATED service (load curve,
    // queueing latency) whose instances the autoscalers set.
    let (fleet, _services) = closed_loop::start_scenario(&data_dir, args.agents, opts).await?;
    // The customer's vendor module runs as its own client over QUIC.
    let mut module = if args.agents >= 2 {
        Some(fleet.spawn_module(PredictiveAutoscaler::new(
            scenario::CUSTOM_MODULE,
            "predictive-labs",
        ))?)
    } else {
        None
    };
    println!(
        "vcp demo: supervisor on {} (QUIC, mutual TLS), {} agents reading this machine, SIMULATED services {}, store in {}",
        fleet.addr,
        args.agents,
        ["ops-web", scenario::CUSTOMER_SET, scenario::GLOBEX_SET][..args.agents.min(3)].join(", "),
        data_dir.display()
    );
    print_api(&fleet, args.agents)?;
    // Globex's module runs once Globex has provisioned its plane.
    let mut globex_module = None;
    let started = Instant::now();
    let deadline = args.duration.map(|s| started + Duration::from_secs(s));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    // Rates over the last few seconds: batches arrive once a window, so a
    // one-second difference would flicker between 0 and two windows.
    let mut history = std::collections::VecDeque::from([(Instant::now(), (0, 0))]);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let f = &fleet.supervisor().fleet;
        let now = (Instant::now(), totals(f));
        if history.len() > RATE_WINDOW {
            history.pop_front();
        }
        let (then, old) = history[0];
        let secs = now.0.duration_since(then).as_secs_f64().max(1e-3);
        let recent = (now.1 .0 - old.0, now.1 .1 - old.1);
        let control = &fleet.supervisor().control;
        // (Again after a removal and a new provisioning: a removed plane's
        // module is refused and stops.)
        let stopped = globex_module
            .as_ref()
            .is_none_or(|m: &crate::loopback::RemoteModule| m.is_finished());
        if stopped && control.provisioned("globex").is_some() {
            globex_module = Some(fleet.spawn_module(PredictiveAutoscaler::new(
                scenario::GLOBEX_MODULE,
                "predictive-labs",
            ))?);
        }
        let mut line = live_line(f, started.elapsed(), recent, secs);
        line.push_str(&instances_line(&fleet.supervisor().control));
        println!("{line}");
        history.push_back(now);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    // Bill what the run used and settle the allocations, then stop.
    let charged = fleet.supervisor().control.bill_now(true).await;
    if let Err(e) = &charged {
        eprintln!("final billing run failed: {e}");
    }
    for m in [module.take(), globex_module.take()].into_iter().flatten() {
        m.stop();
    }
    let stopped = fleet.stop().await;
    let ledger = LedgerReader::open(&data_dir)?;
    let report = report::build(&stopped.fleet, &stopped.control, Some(&ledger))?;
    println!(
        "done: {} readings in {} batches, {:.3} wire bytes/reading, {} UDP bytes",
        report.totals.readings,
        report.agents.iter().map(|a| a.batches).sum::<u64>(),
        report.totals.bytes_per_reading,
        report.totals.udp_bytes
    );
    for account in ["customer:acme", "vendor:predictive-labs"] {
        if report.statements.iter().any(|s| s.account == account) {
            println!();
            print!(
                "{}",
                render(&ledger.statement(account, &Period::All)?, Format::Table)
            );
        }
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

/// Creates a token per demo account and prints how to reach the API.
fn print_api(fleet: &crate::loopback::Loopback, agents: usize) -> anyhow::Result<()> {
    use vcp_store::accounts::Role;
    let addr = fleet.api_addr();
    let accounts = &fleet.supervisor().accounts;
    let mut who = vec![("operator", Role::Operator), ("acme", Role::Customer)];
    if agents >= 3 {
        who.push(("globex", Role::Customer));
    }
    who.push(("predictive-labs", Role::Vendor));
    println!(
        "HTTP API on http://{addr}/v1 (plain HTTP, on loopback only; OpenAPI: /v1/openapi.json), metrics on /metrics; tokens:"
    );
    let mut operator = String::new();
    for (account, role) in who {
        let token = accounts.create_token(account, role)?;
        println!("  {:<9} {account:<16} {token}", role.as_str());
        if role == Role::Operator {
            operator = token;
        }
    }
    let code = fleet
        .supervisor()
        .sign_in_codes
        .mint(&operator, std::time::Instant::now())
        .context("minting the dashboard's sign-in link")?;
    let minute = vcp_supervisor::api::signin::CODE_TTL.as_secs();
    println!("dashboard: http://{addr}/ui/login?code={code} (signs the operator in once, within {minute} s; after that, paste a token at /ui/login)");
    Ok(())
}

/// (readings, wire bytes) received so far from all agents.
fn totals(fleet: &Fleet) -> (u64, u64) {
    let agents = fleet.summaries();
    (
        agents.iter().map(|a| a.readings).sum(),
        agents.iter().map(|a| a.wire_bytes).sum(),
    )
}

/// Seconds over which the live line computes its rates.
const RATE_WINDOW: usize = 5;

/// One status line; `recent` is (readings, wire bytes) received in the last
/// `secs` seconds.
fn live_line(fleet: &Fleet, elapsed: Duration, recent: (u64, u64), secs: f64) -> String {
    let agents = fleet.summaries();
    let connected = agents.iter().filter(|a| a.connected).count();
    let (readings, wire) = recent;
    let per_reading = if readings == 0 {
        0.0
    } else {
        wire as f64 / readings as f64
    };
    let mut line = format!(
        "[{:>4}s] agents {connected}/{} | {:.0} readings/s | {per_reading:.2} wire B/reading",
        elapsed.as_secs(),
        agents.len(),
        readings as f64 / secs
    );
    let hosts = fleet.view.hosts();
    if let Some((id, cell)) = hosts.iter().min_by(|a, b| a.0.cmp(b.0)) {
        line.push_str(&format!(" | {id}: {}", host_line(&cell.load())));
    }
    line
}

/// Instances in force per service set, and the module that decided them.
fn instances_line(control: &Control) -> String {
    let settings = control.settings.snapshot();
    let mut sets: Vec<_> = settings
        .iter()
        .filter(|d| &*d.parameter == param::INSTANCES)
        .filter_map(|d| match &d.target {
            Target::ServiceSet(id) => Some(format!("{id} {} ({})", d.value, d.module)),
            _ => None,
        })
        .collect();
    sets.sort();
    let mut line = if sets.is_empty() {
        String::new()
    } else {
        format!(" | instances: {}", sets.join(", "))
    };
    // Reputation of the autoscalers; a default module outside the default
    // plane is named with its plane.
    let judged = control.judge.report.load();
    let reps: Vec<_> = judged
        .reputation
        .iter()
        .filter(|r| r.module.contains("autoscal") || r.module.ends_with("-predictive"))
        .map(|r| {
            let plane = if r.module.starts_with("default-") && r.control_plane != "default" {
                format!("@{}", r.control_plane)
            } else {
                String::new()
            };
            format!("{}{plane} {:.2}", r.module, r.components.score)
        })
        .collect();
    if !reps.is_empty() {
        line.push_str(&format!(" | reputation: {}", reps.join(", ")));
    }
    line
}

fn host_line(s: &HostSnapshot) -> String {
    let val = |r: &str, m: &metric::Metric| s.get(r, m.name).map(|l| l.value);
    let mut parts = Vec::new();
    if let Some(cpu) = val("cpu", &metric::CPU_UTILIZATION) {
        parts.push(format!("cpu {:.1}%", cpu * 100.0));
    }
    if let (Some(used), Some(total)) = (
        val("memory", &metric::MEMORY_USED),
        val("memory", &metric::MEMORY_TOTAL),
    ) {
        let gib = (1u64 << 30) as f64;
        parts.push(format!("mem {:.1}/{:.1} GiB", used / gib, total / gib));
    }
    // The busiest interface, by received plus sent bytes.
    let busiest = s
        .readings()
        .filter(|(d, _)| d.metric == metric::NIC_RX_BYTES.name)
        .map(|(d, rx)| {
            let tx = val(&d.resource, &metric::NIC_TX_BYTES).unwrap_or(0.0);
            (d.resource.clone(), rx.value, tx)
        })
        .max_by(|a, b| (a.1 + a.2).total_cmp(&(b.1 + b.2)));
    if let Some((nic, rx, tx)) = busiest {
        parts.push(format!(
            "{} rx {:.1} kB/s tx {:.1} kB/s",
            nic.trim_start_matches("nic/"),
            rx / 1e3,
            tx / 1e3
        ));
    }
    parts.join(", ")
}
