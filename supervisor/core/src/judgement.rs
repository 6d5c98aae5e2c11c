//! Judgement: reputation, contribution and goal windows, and how evidence
//! moves them. Rounds report answers (on time or not) and decisions (with
//! each module's influence); customers rate modules; every evaluation
//! window the goals of each service set are measured on the fleet view and
//! the modules whose decisions were in force are credited. Pure: the
//! supervisor's judge task owns one [`Judgement`] and feeds it, with the
//! time, from a queue.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vcp_common::metric::CPU_UTILIZATION;
use vcp_common::module::{param, Condition, SensorSelector, Target};

use crate::contribution::Contribution;
use crate::module_view;
use crate::plane::ControlPlane;
use crate::reputation::{
    Components, Reputation, ReputationConfig, ReputationState, SharedReputation,
};
use crate::settings::{Decision, SettingsMap};
use crate::view::View;
use crate::ModuleKey;

/// Evaluation windows of instance history kept per service set.
const INSTANCE_HISTORY: usize = 720;

/// A (target, parameter) whose decisions earn contribution.
pub type TargetKey = (Target, String);

/// What moves judgement.
pub enum Evidence {
    Answered {
        key: ModuleKey,
        on_time: bool,
    },
    Decisions(Vec<Arc<Decision>>),
    /// A customer's rating; `number` is the stored rating's, if stored.
    Feedback {
        key: ModuleKey,
        rating: f64,
        number: Option<i64>,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GoalRecord {
    pub service_set: String,
    pub windows: u64,
    pub met: u64,
    /// Instances in force at each evaluation window (the latest 720).
    pub instances: Vec<f64>,
}

/// Everything the judge has learnt, to keep across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Reputation, contribution and goal windows of every module instance.
pub struct Judgement {
    reputation: Reputation<ModuleKey>,
    contribution: Contribution<ModuleKey, TargetKey>,
    goals: Vec<GoalRecord>,
    /// The number of the last stored rating taken.
    feedback: i64,
}

impl Judgement {
    /// Judgement over the service sets of `planes`, from what an earlier
    /// run had learnt if `restored` holds it.
    pub fn new(
        config: ReputationConfig,
        planes: &[Arc<ControlPlane>],
        restored: Option<JudgeState>,
    ) -> Self {
        let (reputation, contribution, mut earlier, feedback) = match restored {
            Some(s) => (
                Reputation::restore(config, s.reputation),
                s.contribution,
                s.goals,
                s.feedback,
            ),
            None => (Reputation::new(config), Contribution::new(), Vec::new(), 0),
        };
        let goals = planes
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
        Judgement {
            reputation,
            contribution,
            goals,
            feedback,
        }
    }

    /// The prior a module without evidence has.
    pub fn prior(&self) -> f64 {
        self.reputation.config().prior
    }

    /// Takes one piece of evidence at `now`; a rating that cannot count
    /// (out of range, not a number) is refused with the reason.
    pub fn take(&mut self, e: Evidence, now: i64) -> Result<(), String> {
        match e {
            Evidence::Answered { key, on_time } => {
                self.reputation.answered(&key, on_time, now);
                Ok(())
            }
            Evidence::Decisions(decisions) => {
                for d in decisions {
                    let target = (d.target.clone(), d.parameter.to_string());
                    if let Err(err) =
                        self.contribution
                            .record_decision(&target, d.round, &d.influences, now)
                    {
                        tracing::warn!(error = %err, "decision not recorded for contribution");
                    }
                }
                Ok(())
            }
            Evidence::Feedback {
                key,
                rating,
                number,
            } => {
                self.feedback = self.feedback.max(number.unwrap_or(0));
                self.reputation
                    .feedback(&key, rating, now)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// One evaluation window: measure each service set's goals and credit
    /// the modules whose decisions for that set were in force.
    pub fn evaluate(
        &mut self,
        planes: &[Arc<ControlPlane>],
        fleet: &View,
        settings: &SettingsMap,
        now: i64,
    ) {
        for plane in planes {
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
            let view = module_view::build(fleet, &plane.scope, &inputs, settings, now);
            for (set, state) in plane
                .scope
                .service_sets
                .iter()
                .zip(view.service_sets.iter())
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
    }

    /// What operators see: every module's reputation components and
    /// contribution, and the goal windows.
    pub fn report(&self, now: i64) -> JudgeReport {
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
        JudgeReport {
            reputation,
            contribution,
            goals: self.goals.clone(),
        }
    }

    /// Everything learnt, to keep across restarts.
    pub fn state(&self) -> JudgeState {
        JudgeState {
            reputation: self.reputation.state(),
            contribution: self.contribution.clone(),
            goals: self.goals.clone(),
            feedback: self.feedback,
        }
    }

    /// [`Self::state`], encoded, without copying it first: the same bytes
    /// as `state().encode()` (the judge encodes it twice a second, and the
    /// contribution history grows with the fleet's targets).
    pub fn encode_state(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            reputation: ReputationState<ModuleKey>,
            contribution: &'a Contribution<ModuleKey, TargetKey>,
            goals: &'a [GoalRecord],
            feedback: i64,
        }
        postcard::to_stdvec(&Borrowed {
            reputation: self.reputation.state(),
            contribution: &self.contribution,
            goals: &self.goals,
            feedback: self.feedback,
        })
        .unwrap_or_default()
    }

    /// Publishes the reputation snapshot rounds read.
    pub fn publish(&self, shared: &SharedReputation<ModuleKey>, now: i64) {
        self.reputation.publish(shared, now);
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

#[cfg(test)]
#[path = "judgement_tests.rs"]
mod tests;
