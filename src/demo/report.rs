//! The demo's JSON report. Field names are a stable interface: later stages
//! add fields, never rename them.

use serde::Serialize;
use vcp_core::mediation::PolicyCount;
use vcp_core::stats::ModuleSummary;
use vcp_store::ledger::{LedgerReader, LedgerTotals, Period, Statement};
use vcp_supervisor::control::Control;
use vcp_supervisor::dispatch::DeliveryCounts;
use vcp_supervisor::fleet::Fleet;
use vcp_supervisor::judge::{GoalRecord, ModuleContribution, ModuleReputation};
use vcp_supervisor::solicit::KindSummary;

#[derive(Debug, Serialize)]
pub struct Report {
    pub agents: Vec<AgentLine>,
    pub totals: Totals,
    pub hosts: Vec<HostLine>,
    /// Per kind: rounds, responses, deadline misses, decisions.
    pub rounds: Vec<KindSummary>,
    /// Per module instance: request statistics.
    pub modules: Vec<ModuleSummary>,
    /// Per mediation policy: decisions.
    pub mediation: Vec<PolicyCount>,
    /// Per module instance: reputation score and its components.
    pub reputation: Vec<ModuleReputation>,
    /// Per module instance: cumulative contribution and reward share.
    pub contribution: Vec<ModuleContribution>,
    /// Per service set with goals: evaluation windows, windows met.
    pub goals: Vec<GoalRecord>,
    /// Per service set with goals: instances in force at each evaluation
    /// window, and the share of windows whose goals were met.
    pub service_sets: Vec<ServiceSetLine>,
    /// Per module: configurations sent, applied, failed, expired.
    pub configurations: Vec<DeliveryCounts>,
    /// Per account in the ledger: its statement for the run.
    pub statements: Vec<Statement>,
    /// Ledger totals; double entry keeps debits equal to credits.
    pub ledger: Option<LedgerTotals>,
}

#[derive(Debug, Serialize)]
pub struct ServiceSetLine {
    pub service_set: String,
    pub instances: Vec<f64>,
    pub goal_met_share: f64,
}

#[derive(Debug, Serialize)]
pub struct AgentLine {
    pub id: String,
    pub batches: u64,
    pub readings: u64,
    pub duplicates: u64,
    /// What the agent could not keep and told the supervisor of.
    pub lost: Lost,
}

#[derive(Debug, Serialize)]
pub struct Lost {
    pub batches: u64,
    pub readings: u64,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub readings: u64,
    /// Application frame bytes of the agents' batches, as received.
    pub wire_bytes: u64,
    /// UDP datagram bytes from the agents, as quinn counted them.
    pub udp_bytes: u64,
    pub bytes_per_reading: f64,
}

#[derive(Debug, Serialize)]
pub struct HostLine {
    pub agent: String,
    pub latest: Vec<LatestLine>,
}

#[derive(Debug, Serialize)]
pub struct LatestLine {
    pub resource: String,
    pub metric: String,
    pub value: f64,
}

pub fn build(
    fleet: &Fleet,
    control: &Control,
    ledger: Option<&LedgerReader>,
) -> anyhow::Result<Report> {
    let judged = control.judge.report.load_full();
    let summaries = fleet.summaries();
    let readings = summaries.iter().map(|a| a.readings).sum::<u64>();
    let wire_bytes = summaries.iter().map(|a| a.wire_bytes).sum::<u64>();
    let udp_bytes = summaries.iter().map(|a| a.udp_bytes).sum::<u64>();
    let hosts_map = fleet.view.hosts();
    let mut hosts: Vec<HostLine> = hosts_map
        .iter()
        .map(|(id, cell)| {
            let snap = cell.load();
            HostLine {
                agent: id.to_string(),
                latest: snap
                    .readings()
                    .map(|(d, l)| LatestLine {
                        resource: d.resource.clone(),
                        metric: d.metric.clone(),
                        value: l.value,
                    })
                    .collect(),
            }
        })
        .collect();
    hosts.sort_by(|a, b| a.agent.cmp(&b.agent));
    Ok(Report {
        agents: summaries
            .into_iter()
            .map(|a| AgentLine {
                id: a.id,
                batches: a.batches,
                readings: a.readings,
                duplicates: a.duplicates,
                lost: Lost {
                    batches: a.lost_batches,
                    readings: a.lost_readings,
                },
            })
            .collect(),
        totals: Totals {
            readings,
            wire_bytes,
            udp_bytes,
            bytes_per_reading: if readings == 0 {
                0.0
            } else {
                wire_bytes as f64 / readings as f64
            },
        },
        hosts,
        rounds: control.rounds(),
        modules: control.modules(),
        mediation: control.policy_counts.summary(),
        reputation: judged.reputation.clone(),
        contribution: judged.contribution.clone(),
        goals: judged.goals.clone(),
        configurations: control.dispatch.counts.load().to_vec(),
        service_sets: judged
            .goals
            .iter()
            .map(|g| ServiceSetLine {
                service_set: g.service_set.clone(),
                instances: g.instances.clone(),
                goal_met_share: if g.windows == 0 {
                    0.0
                } else {
                    g.met as f64 / g.windows as f64
                },
            })
            .collect(),
        statements: match ledger {
            Some(l) => l
                .accounts()?
                .iter()
                .map(|a| l.statement(a, &Period::All))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        },
        ledger: ledger.map(|l| l.totals()).transpose()?,
    })
}
