//! Goals: an objective on a metric and the conditions that must hold.

use serde::{Deserialize, Serialize};

/// A comparison in a goal condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmp {
    Below,
    Above,
}

/// `metric` must stay below/above `value` (e.g. p95 latency below 0.1 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub metric: String,
    pub cmp: Cmp,
    pub value: f64,
}

impl Condition {
    pub fn holds(&self, observed: f64) -> bool {
        match self.cmp {
            Cmp::Below => observed < self.value,
            Cmp::Above => observed > self.value,
        }
    }
}

/// What a goal drives a metric towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Minimise,
    Maximise,
    /// Hold the metric at the target.
    Track,
}

/// A goal: an objective on a metric, a target, and conditions that must hold
/// (e.g. minimise `instances` while `app.latency.p95` is below 0.1 and
/// `service.idle` below 0.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub metric: String,
    pub objective: Objective,
    pub target: Option<f64>,
    pub conditions: Vec<Condition>,
}
