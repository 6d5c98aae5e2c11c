//! The biller: turns what modules and service sets used since the last run
//! into charges and hands them to the ledger — off the hot path, in its own
//! task. Every `billing_interval_s` it charges, per module instance, the
//! requests, response bytes and supervisor CPU since the last run (split
//! between customer and vendor by contract); per service set, the resources
//! of its instances in force and its measured NIC traffic; and per
//! cost-benefit contract, the vendor's share of the saving against the
//! baseline (prorated to the interval) when every goal window of the
//! interval was met, or the penalty when one was not. At the end of a
//! billing period (and on request) it settles customers' allocations among
//! vendors by contribution weighted by reputation.
//!
//! Idempotency keys name the billing period and the run's start, so a
//! replayed run charges nothing twice. A run's new baselines (the counters
//! it charged up to) take effect only once its charges are durable: a run
//! whose ledger write fails leaves them as they were, and the next run
//! charges the whole interval since the last durable one — once. A
//! customer's allocation is settled at most once per (period, customer,
//! kind), whatever the set of vendors is then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use vcp_common::metric::{NIC_RX_BYTES, NIC_TX_BYTES};
use vcp_common::module::{param, Target};

use crate::checkpoint::{self, BillerState, Checkpoint};
use crate::config::SupervisorFile;
use crate::fleet::Fleet;
use crate::judge::GoalRecord;
use crate::judge::JudgeHandle;
use crate::unix_ms;

mod charges;
use vcp_core::contribution::split_amount;
use vcp_core::plane::OPERATOR;
use vcp_core::plane::{ControlPlane, ServiceSetDef};
use vcp_core::pricing::{
    cost_benefit, customer_account, goals_held, request_charges, resource_charge, resource_cost,
    vendor_account, Baseline, BillingPeriod, ModuleUsage, ParamUsage, Parties, ResourceUsage,
};
use vcp_core::settings::Settings;
use vcp_core::stats::ModuleSummary;
use vcp_store::ledger::{Charge, Granularity, Ledger, LedgerReader, Period, StateRow};

fn granularity(p: BillingPeriod) -> Granularity {
    match p {
        BillingPeriod::Hour => Granularity::Hour,
        BillingPeriod::Day => Granularity::Day,
        BillingPeriod::Month => Granularity::Month,
    }
}

/// Asks the biller to run now; `settle` also settles the current period.
pub struct BillNow {
    pub settle: bool,
    pub done: oneshot::Sender<Result<usize, String>>,
}

/// The module counters and planes in force, as the biller reads them.
pub trait Counters: Send + Sync + 'static {
    /// Every module instance's cumulative request statistics.
    fn modules(&self) -> Vec<ModuleSummary>;
    /// Every module instance's counters, for checkpoints.
    fn usage(&self) -> Vec<checkpoint::Usage>;
    fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>>;
}

/// What the biller reads: the configuration (prices, contracts,
/// settlements), the judge's state, the fleet's traffic, the decisions in
/// force and the modules' counters — nothing else of the supervisor.
pub struct Inputs {
    pub file: Arc<SupervisorFile>,
    pub judge: JudgeHandle,
    pub fleet: Arc<Fleet>,
    pub settings: Arc<Settings>,
    pub counters: Arc<dyn Counters>,
}

/// The biller's memory between runs: cumulative counters seen last time.
struct Biller {
    inputs: Inputs,
    ledger: Ledger,
    reader: LedgerReader,
    last_ms: i64,
    modules: HashMap<(String, String), ModuleSummary>,
    goals: HashMap<String, (u64, u64)>,
    period: String,
}

/// The baselines a run moves to, kept apart until its charges are durable.
#[derive(Default)]
struct Staged {
    modules: Vec<((String, String), ModuleSummary)>,
    goals: Vec<(String, (u64, u64))>,
}

/// Starts the biller task; runs every `interval` and on request, from the
/// baselines of an earlier run if `resumed` holds them, and checkpoints
/// the supervisor's state every second.
pub fn start(
    inputs: Inputs,
    ledger: Ledger,
    reader: LedgerReader,
    interval: Duration,
    resumed: Option<BillerState>,
) -> (mpsc::Sender<BillNow>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<BillNow>(4);
    let now = unix_ms();
    let period = Period::containing(now, granularity(inputs.file.prices.period)).to_string();
    let mut biller = Biller {
        inputs,
        ledger,
        reader,
        last_ms: now,
        modules: HashMap::new(),
        goals: HashMap::new(),
        period,
    };
    if let Some(r) = resumed {
        biller.last_ms = r.last_ms;
        biller.period = r.period;
        biller.modules = r.modules.into_iter().collect();
        biller.goals = r.goals.into_iter().collect();
    }
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        let mut checkpoints = tokio::time::interval(CHECKPOINT);
        loop {
            tokio::select! {
                _ = checkpoints.tick() => {
                    let row = biller.checkpoint(unix_ms(), biller.state());
                    if let Err(e) = biller.ledger.save_state(row) {
                        warn!(error = %e, "checkpoint not saved");
                    }
                }
                _ = ticker.tick() => {
                    if let Err(e) = biller.run(unix_ms(), false).await {
                        warn!(error = %e, "billing run failed; the next run charges its interval");
                    }
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        let r = biller.run(unix_ms(), cmd.settle).await.map_err(|e| e.to_string());
                        let _ = cmd.done.send(r);
                    }
                    None => return,
                },
            }
        }
    });
    (tx, task)
}

/// Usage since `before` (counters only grow while a module is known).
fn delta(now: &ModuleSummary, before: Option<&ModuleSummary>) -> ModuleUsage {
    let per_parameter = now
        .parameters
        .iter()
        .map(|p| {
            let b = before.and_then(|b| b.parameters.iter().find(|q| q.parameter == p.parameter));
            let d = |x: u64, y: Option<u64>| x.saturating_sub(y.unwrap_or(0));
            ParamUsage {
                parameter: p.parameter.clone(),
                requests: d(p.requests, b.map(|b| b.requests)),
                late: d(p.late, b.map(|b| b.late)),
                rejected: d(p.rejected, b.map(|b| b.rejected)),
                over_quota: d(p.over_quota, b.map(|b| b.over_quota)),
                clipped: d(p.clipped, b.map(|b| b.clipped)),
                bytes: d(p.bytes, b.map(|b| b.bytes)),
                fault_bytes: d(p.fault_bytes, b.map(|b| b.fault_bytes)),
            }
        })
        .filter(|p| p.requests > 0 || p.bytes > 0)
        .collect();
    ModuleUsage {
        module: now.id.clone(),
        control_plane: now.control_plane.clone(),
        customer: now.customer.clone(),
        vendor: now.vendor.clone(),
        kind: now.kind,
        per_parameter,
        cpu_ns: now.cpu_ns.saturating_sub(before.map_or(0, |b| b.cpu_ns)),
    }
}

/// How often the supervisor's state is checkpointed between billing runs.
const CHECKPOINT: Duration = Duration::from_secs(1);

impl Biller {
    /// The baselines in force.
    fn state(&self) -> BillerState {
        BillerState {
            last_ms: self.last_ms,
            period: self.period.clone(),
            modules: self
                .modules
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            goals: self.goals.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// The supervisor's state at `now` with `biller`'s baselines.
    fn checkpoint(&self, now: i64, biller: BillerState) -> StateRow {
        let c = Checkpoint {
            at_ms: now,
            judge: self.inputs.judge.state.load().to_vec(),
            usage: self.inputs.counters.usage(),
            biller,
        };
        StateRow {
            name: checkpoint::NAME.into(),
            at_ms: now,
            bytes: c.encode(),
        }
    }

    /// One billing run over [last run, now).
    async fn run(
        &mut self,
        now: i64,
        settle: bool,
    ) -> Result<usize, vcp_store::ledger::LedgerError> {
        let period =
            Period::containing(now, granularity(self.inputs.file.prices.period)).to_string();
        let label = format!("{}@{}", self.period, self.last_ms);
        let secs = (now - self.last_ms).max(0) as f64 / 1000.0;
        let mut staged = Staged::default();
        let mut charges = self.module_charges(&label, now, &mut staged);
        charges.extend(self.resource_and_contract_charges(&label, now, secs, &mut staged));
        // A period ends: settle it. On request: settle the period so far
        // (at most once per period, customer and kind).
        if settle || period != self.period {
            charges.extend(self.settlements(&self.period.clone(), now)?);
        }
        charges.retain(|c| c.debit != c.credit);
        let n = charges.len();
        // The baselines this run moves to go with its charges, in one
        // transaction.
        let mut next = self.state();
        let mut modules: HashMap<_, _> = next.modules.drain(..).collect();
        modules.extend(staged.modules.iter().cloned());
        let mut goals: HashMap<_, _> = next.goals.drain(..).collect();
        goals.extend(staged.goals.iter().cloned());
        next = BillerState {
            last_ms: now,
            period: period.clone(),
            modules: modules.into_iter().collect(),
            goals: goals.into_iter().collect(),
        };
        let row = self.checkpoint(now, next);
        self.ledger.record_durable_with(charges, vec![row]).await?;
        // Durable: the run's baselines now hold.
        self.modules.extend(staged.modules);
        self.goals.extend(staged.goals);
        self.last_ms = now;
        self.period = period;
        Ok(n)
    }

    fn module_charges(&self, label: &str, now: i64, staged: &mut Staged) -> Vec<Charge> {
        let sheet = &self.inputs.file.prices;
        let mut out = Vec::new();
        // The operator does not bill itself for its own control plane.
        for m in self
            .inputs
            .counters
            .modules()
            .into_iter()
            .filter(|m| m.customer != OPERATOR && !m.shadow)
        {
            let key = (m.control_plane.clone(), m.id.clone());
            let usage = delta(&m, self.modules.get(&key));
            let contract = self
                .inputs
                .file
                .contracts
                .iter()
                .find(|c| c.control_plane == m.control_plane && c.module == m.id);
            out.extend(request_charges(sheet, contract, &usage, label, now));
            staged.modules.push((key, m));
        }
        out
    }
}

#[cfg(test)]
mod tests;
