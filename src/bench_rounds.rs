//! `vcp bench-rounds`: the supervisor's real round loop — solicitor,
//! module runners, admission, mediation, settings, judge — driven by N
//! SIMULATED modules (each answers every round with an instance count for
//! every service set; no agents, an empty fleet view). Prints rounds,
//! deadline misses, and percentiles of the supervisor's own round time
//! (the round less the time it waited for answers).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use vcp_common::module::{param, Kind, ModuleLogic, ModuleSpec, Proposal, Solicitation, Target};
use vcp_core::plane::DEFAULT_PLANE;
use vcp_store::Store;
use vcp_supervisor::config::SupervisorFile;
use vcp_supervisor::control::Control;
use vcp_supervisor::fleet::Fleet;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Simulated modules competing for every target.
    #[arg(long, default_value_t = 4)]
    pub modules: usize,
    /// Service sets (targets), each asked for by every module every round.
    #[arg(long, default_value_t = 10_000)]
    pub targets: usize,
    /// Rounds to run.
    #[arg(long, default_value_t = 100)]
    pub rounds: u64,
    /// Milliseconds between rounds.
    #[arg(long, default_value_t = 200)]
    pub cadence_ms: u64,
    /// Deadline of each round, milliseconds.
    #[arg(long, default_value_t = 50)]
    pub deadline_ms: u64,
}

/// A simulated autoscaler: proposes a deterministic instance count for
/// every service set in its view.
struct Simulated {
    id: String,
    salt: usize,
}

impl ModuleLogic for Simulated {
    fn spec(&self) -> ModuleSpec {
        ModuleSpec {
            id: self.id.clone(),
            kind: Kind::Autoscaling,
            vendor: "simulated".into(),
            version: "0".into(),
            inputs: vec![],
            outputs: vec![param::INSTANCES.into()],
            goals: vec![],
            deadline_ms: 50,
            custom_sensors: vec![],
        }
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        s.view
            .service_sets
            .iter()
            .enumerate()
            .map(|(i, set)| Proposal {
                target: Target::ServiceSet(set.id.clone()),
                parameter: param::INSTANCES.into(),
                value: ((i + self.salt + s.round as usize) % 16 + 1) as f64,
            })
            .collect()
    }
}

fn config(args: &BenchArgs) -> anyhow::Result<SupervisorFile> {
    let mut text = format!(
        "default_modules = false\n[solicitation.autoscaling]\ncadence_ms = {}\ndeadline_ms = {}\n[module_limits]\nrate_per_second = 1e12\nmax_requests_per_round = {}\n",
        args.cadence_ms,
        args.deadline_ms,
        args.targets.max(1)
    );
    for i in 0..args.targets {
        text.push_str(&format!(
            "[[service_sets]]\nid = \"set-{i}\"\ncustomer = \"operator\"\ninstances = {{ min = 1, max = 64, initial = 2 }}\nmembers = [{{ host = \"host-{}\" }}]\n",
            i % 500
        ));
    }
    Ok(SupervisorFile::parse(&text, Path::new("<bench-rounds>"))?)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.modules >= 1 && args.rounds >= 1,
        "--modules and --rounds must be at least 1"
    );
    let dir = tempfile::tempdir().context("creating a temporary store")?;
    let (store, records) = Store::open(dir.path())?;
    let fleet = Arc::new(Fleet::new(store.agents(), records));
    let control = Control::start(config(&args)?, fleet, None, Vec::new(), &|_| Vec::new());
    let plane = control
        .plane(DEFAULT_PLANE)
        .context("the default control plane")?;
    for m in 0..args.modules {
        let make = move || -> Box<dyn ModuleLogic> {
            Box::new(Simulated {
                id: format!("simulated-{m}"),
                salt: m * 7,
            })
        };
        control.add_builtin(plane.clone(), Box::new(make), m == 0, false);
    }
    println!(
        "bench-rounds: {} simulated modules x {} targets, a round every {} ms with a {} ms deadline, {} rounds",
        args.modules, args.targets, args.cadence_ms, args.deadline_ms, args.rounds
    );
    let stats = control
        .kinds
        .iter()
        .find(|(k, _)| *k == Kind::Autoscaling)
        .map(|(_, s)| s.clone())
        .context("autoscaling rounds")?;
    let started = Instant::now();
    while stats.rounds.load(Ordering::Relaxed) < args.rounds {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control.stop();
    let s = stats.summary(Kind::Autoscaling);
    let q = |p| {
        stats
            .own
            .quantile_us(p)
            .map_or("-".into(), |us| format!("{:.3} ms", us as f64 / 1000.0))
    };
    println!(
        "rounds {} in {:.1} s, responses {}, deadline misses {}, decisions {}",
        s.rounds,
        started.elapsed().as_secs_f64(),
        s.responses,
        s.deadline_misses,
        s.decisions
    );
    println!(
        "supervisor's own round time: p50 {}  p99 {}  p99.9 {}  (whole round, waiting included, max {:.3} ms)",
        q(0.5),
        q(0.99),
        q(0.999),
        s.max_round_us as f64 / 1000.0
    );
    Ok(())
}
