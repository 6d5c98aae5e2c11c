//! The judge: the single writer of reputation and contribution. Rounds send
//! it evidence on a channel (answers on time or not, decisions with each
//! module's influence); every evaluation window it measures each service
//! set's goals from the view and credits the modules whose decisions were in
//! force. It publishes an immutable reputation snapshot for the mediators
//! and a report for operators — nobody else touches its state, so there are
//! no locks, and nothing here runs on a round's path.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use vcp_common::metric::CPU_UTILIZATION;
use vcp_common::module::{param, Condition, SensorSelector, Target};

use crate::fleet::Fleet;
use crate::queue::Lossy;
use crate::unix_ms;
use vcp_core::contribution::Contribution;
use vcp_core::plane::Planes;
use vcp_core::reputation::{
    shared, Components, Reputation, ReputationConfig, ReputationSnapshot, ReputationState,
    SharedReputation,
};
use vcp_core::settings::{Decision, Settings};

pub use vcp_core::{module_key, ModuleKey};

/// Evaluation windows of instance history kept per service set.
const INSTANCE_HISTORY: usize = 720;

/// A (target, parameter) whose decisions earn contribution.
pub type TargetKey = (Target, String);

pub enum Evidence {
    Answered {
        key: ModuleKey,
        on_time: bool,
    },
    Decisions(Vec<Arc<Decision>>),
    Feedback {
        key: ModuleKey,
        rating: f64,
        /// The stored rating's number, if it was stored.
        number: Option<i64>,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModuleReputation {
    pub module: String,
    pub control_plane: String,
    #[serde(flatten)]
    pub components: Components,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModuleContribution {
    pub module: String,
    pub control_plane: String,
    pub cumulative: f64,
    pub reward_share: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct GoalRecord {
    pub service_set: String,
    pub windows: u64,
    pub met: u64,
    /// Instances in force at each evaluation window (the latest 720).
    pub instances: Vec<f64>,
}

/// Everything the judge has learnt, to keep across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct JudgeState {
    pub reputation: ReputationState<ModuleKey>,
    pub contribution: Contribution<ModuleKey, TargetKey>,
    pub goals: Vec<GoalRecord>,
    /// The number of the last stored rating taken: those after it are
    /// replayed at start.
    pub feedback: i64,
}

impl JudgeState {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<JudgeState> {
        postcard::from_bytes(bytes).ok()
    }
}

/// What the judge publishes for reports.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct JudgeReport {
    pub reputation: Vec<ModuleReputation>,
    pub contribution: Vec<ModuleContribution>,
    pub goals: Vec<GoalRecord>,
}

fn split_key(k: &ModuleKey) -> (String, String) {
    match k.split_once('/') {
        Some((p, m)) => (p.to_owned(), m.to_owned()),
        None => (String::new(), k.to_string()),
    }
}

/// Evidence queued for the judge at most.
pub const QUEUE: usize = 16_384;

/// The handle rounds and the API use.
#[derive(Clone)]
pub struct JudgeHandle {
    pub queue: Lossy<Evidence>,
    /// The judge's state ([`JudgeState::encode`]), republished with the
    /// report, for checkpoints.
    pub state: Arc<ArcSwap<Vec<u8>>>,
    pub reputation: Arc<SharedReputation<ModuleKey>>,
    pub report: Arc<ArcSwap<JudgeReport>>,
}

impl JudgeHandle {
    /// Evidence from a round: never waits; dropped (and counted) when the
    /// judge is [`QUEUE`] messages behind.
    pub fn send(&self, e: Evidence) {
        self.queue.send(e);
    }

    /// Records a customer's rating (1–5) of a module instance, stored as
    /// `number` if it was stored; waits for room in the queue (feedback is
    /// never dropped).
    pub async fn feedback(
        &self,
        key: ModuleKey,
        rating: f64,
        number: Option<i64>,
    ) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send_wait(Evidence::Feedback {
                key,
                rating,
                number,
                done: Some(done),
            })
            .await;
        wait.await
            .map_err(|_| "the judge has stopped".to_string())?
    }
}

struct Judge {
    reputation: Reputation<ModuleKey>,
    contribution: Contribution<ModuleKey, TargetKey>,
    shared: Arc<SharedReputation<ModuleKey>>,
    report: Arc<ArcSwap<JudgeReport>>,
    state: Arc<ArcSwap<Vec<u8>>>,
    planes: Planes,
    fleet: Arc<Fleet>,
    settings: Arc<Settings>,
    goals: Vec<GoalRecord>,
    /// The number of the last stored rating taken.
    feedback: i64,
}

/// Starts the judge task, from what an earlier run had learnt if
/// `restored` holds it.
pub fn start(
    config: ReputationConfig,
    window: Duration,
    planes: Planes,
    fleet: Arc<Fleet>,
    settings: Arc<Settings>,
    restored: Option<JudgeState>,
) -> (JudgeHandle, tokio::task::JoinHandle<()>) {
    let (queue, rx) = crate::queue::lossy("judge", QUEUE);
    let (reputation, contribution, mut earlier, feedback) = match restored {
        Some(s) => (
            Reputation::restore(config, s.reputation),
            s.contribution,
            s.goals,
            s.feedback,
        ),
        None => (Reputation::new(config), Contribution::new(), Vec::new(), 0),
    };
    let shared = Arc::new(shared(ReputationSnapshot::empty(
        reputation.config().prior,
        unix_ms(),
    )));
    let report = Arc::new(ArcSwap::from_pointee(JudgeReport::default()));
    let goals = planes
        .load()
        .iter()
        .flat_map(|p| p.scope.service_sets.iter())
        .filter(|s| !s.goals.is_empty())
        .map(
            |s| match earlier.iter().position(|g| g.service_set == s.id) {
                Some(i) => earlier.swap_remove(i),
                None => GoalRecord {
                    service_set: s.id.clone(),
                    windows: 0,
                    met: 0,
                    instances: Vec::new(),
                },
            },
        )
        .collect();
    let state = Arc::new(ArcSwap::from_pointee(Vec::new()));
    let mut judge = Judge {
        reputation,
        contribution,
        shared: shared.clone(),
        report: report.clone(),
        state: state.clone(),
        planes,
        fleet,
        settings,
        goals,
        feedback,
    };
    judge.publish(unix_ms());
    let task = tokio::spawn(judge.run(rx, window));
    (
        JudgeHandle {
            queue,
            state,
            reputation: shared,
            report,
        },
        task,
    )
}

impl Judge {
    async fn run(mut self, mut rx: mpsc::Receiver<Evidence>, window: Duration) {
        let mut windows = tokio::time::interval(window);
        windows.tick().await;
        let mut publish = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => self.take(e, unix_ms()),
                    None => return,
                },
                _ = windows.tick() => self.evaluate(unix_ms()),
                _ = publish.tick() => self.publish(unix_ms()),
            }
        }
    }

    fn take(&mut self, e: Evidence, now: i64) {
        match e {
            Evidence::Answered { key, on_time } => self.reputation.answered(&key, on_time, now),
            Evidence::Decisions(decisions) => {
                for d in decisions {
                    let target = (d.target.clone(), d.parameter.to_string());
                    if let Err(err) =
                        self.contribution
                            .record_decision(&target, d.round, &d.influences, now)
                    {
                        warn!(error = %err, "decision not recorded for contribution");
                    }
                }
            }
            Evidence::Feedback {
                key,
                rating,
                number,
                done,
            } => {
                let r = self
                    .reputation
                    .feedback(&key, rating, now)
                    .map_err(|e| e.to_string());
                self.feedback = self.feedback.max(number.unwrap_or(0));
                if let Some(done) = done {
                    let _ = done.send(r);
                }
            }
        }
    }

    /// One evaluation window: measure each service set's goals and credit
    /// the modules whose decisions for that set were in force.
    fn evaluate(&mut self, now: i64) {
        let settings = self.settings.snapshot();
        for plane in self.planes.load().iter() {
            // One view per plane, with every metric its sets' goals name.
            let mut inputs: Vec<SensorSelector> = Vec::new();
            for g in plane.scope.service_sets.iter().flat_map(|s| &s.goals) {
                if !inputs.iter().any(|i| i.metric == g.metric) {
                    inputs.push(SensorSelector::metric(&g.metric));
                }
            }
            if inputs.is_empty() {
                continue;
            }
            let view = vcp_core::module_view::build(
                &self.fleet.view,
                &plane.scope,
                &inputs,
                &settings,
                now,
            );
            for (set, state) in plane
                .scope
                .service_sets
                .iter()
                .zip(&view.service_sets)
                .filter(|(s, _)| !s.goals.is_empty())
            {
                // The view lists the scope's sets in order.
                if state.id != set.id {
                    continue;
                }
                let met = match goals_met(&view, state, &set.goals) {
                    Some(m) => m,
                    None => continue, // no readings: no verdict
                };
                let instances = f64::from(state.instances);
                if let Some(g) = self.goals.iter_mut().find(|g| g.service_set == set.id) {
                    g.windows += 1;
                    g.met += u64::from(met);
                    g.instances.push(instances);
                    if g.instances.len() > INSTANCE_HISTORY {
                        g.instances.remove(0);
                    }
                }
                let target = (
                    Target::ServiceSet(set.id.clone()),
                    param::INSTANCES.to_owned(),
                );
                let _ = self
                    .contribution
                    .record_window(&target, if met { 1.0 } else { 0.0 }, now);
                let Some(decision) = settings.get(&target.0, &target.1) else {
                    continue;
                };
                for (key, influence) in &decision.influences {
                    if *influence <= 0.0 {
                        continue;
                    }
                    self.reputation.goal_window(key, met, now);
                    let baseline = f64::from(set.instances.max);
                    let _ = self.reputation.efficiency(
                        key,
                        if met { 1.0 } else { 0.0 },
                        instances,
                        baseline,
                        now,
                    );
                }
            }
        }
        self.publish(now);
    }

    fn publish(&mut self, now: i64) {
        self.reputation.publish(&self.shared, now);
        let shares: std::collections::HashMap<_, _> =
            self.contribution.reward_shares().into_iter().collect();
        let reputation = self
            .reputation
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|k| {
                let (control_plane, module) = split_key(&k);
                ModuleReputation {
                    module,
                    control_plane,
                    components: self.reputation.components(&k, now),
                }
            })
            .collect();
        let contribution = self
            .contribution
            .contributions()
            .into_iter()
            .map(|(k, cumulative, _)| {
                let (control_plane, module) = split_key(&k);
                ModuleContribution {
                    reward_share: shares.get(&k).copied().unwrap_or(0.0),
                    module,
                    control_plane,
                    cumulative,
                }
            })
            .collect();
        self.report.store(Arc::new(JudgeReport {
            reputation,
            contribution,
            goals: self.goals.clone(),
        }));
        let state = JudgeState {
            reputation: self.reputation.state(),
            contribution: self.contribution.clone(),
            goals: self.goals.clone(),
            feedback: self.feedback,
        };
        self.state.store(Arc::new(state.encode()));
    }
}

/// Whether every condition holds for the set, from the view: utilisation
/// conditions use the set's mean utilisation; others the mean of the metric
/// over the set's member resources. `None` when a metric has no reading.
fn goals_met(
    view: &vcp_common::view::SensorView,
    set: &vcp_common::view::ServiceSetState,
    goals: &[Condition],
) -> Option<bool> {
    let mut all = true;
    for g in goals {
        let observed = if g.metric == CPU_UTILIZATION.name {
            view.set_utilization(set)?
        } else {
            let values: Vec<f64> = view
                .hosts
                .iter()
                .flat_map(|h| {
                    h.readings.iter().filter(move |r| {
                        r.metric == g.metric
                            && set.members.iter().any(|m| m.covers(&h.host, &r.resource))
                    })
                })
                .map(|r| r.value)
                .collect();
            if values.is_empty() {
                return None;
            }
            values.iter().sum::<f64>() / values.len() as f64
        };
        all &= g.holds(observed);
    }
    Some(all)
}
