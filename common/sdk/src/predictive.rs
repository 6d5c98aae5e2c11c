//! The example custom module: a predictive autoscaler. Where the default
//! autoscaler reacts to the utilisation it sees, this one fits a line to
//! each service set's recent utilisation and sizes the set for the
//! utilisation it forecasts `horizon_s` ahead, so it scales out earlier on
//! a rising load. It scales in only when the forecast and the present both
//! allow it. Vendors can start from this file.

use std::collections::{HashMap, VecDeque};

use vcp_common::metric::{APP_UTILIZATION, CPU_UTILIZATION};
use vcp_common::module::{
    param, Cmp, Condition, Goal, Kind, ModuleLogic, ModuleSpec, Objective, Proposal,
    SensorSelector, Solicitation, Target,
};

#[derive(Debug, Clone)]
pub struct PredictiveAutoscaler {
    pub id: String,
    pub vendor: String,
    /// Utilisation each instance should run at.
    pub target_utilization: f64,
    /// How far ahead to forecast, seconds.
    pub horizon_s: f64,
    /// Samples kept per service set for the fit.
    pub window: usize,
    history: HashMap<String, VecDeque<(f64, f64)>>,
}

impl PredictiveAutoscaler {
    pub fn new(id: &str, vendor: &str) -> Self {
        PredictiveAutoscaler {
            id: id.to_owned(),
            vendor: vendor.to_owned(),
            target_utilization: 0.6,
            horizon_s: 30.0,
            window: 10,
            history: HashMap::new(),
        }
    }

    /// Least-squares slope of (t, u) samples, per second.
    fn slope(samples: &VecDeque<(f64, f64)>) -> f64 {
        let n = samples.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let (mt, mu) = samples
            .iter()
            .fold((0.0, 0.0), |(a, b), (t, u)| (a + t / n, b + u / n));
        let (num, den) = samples.iter().fold((0.0, 0.0), |(num, den), (t, u)| {
            (num + (t - mt) * (u - mu), den + (t - mt) * (t - mt))
        });
        if den > 0.0 {
            num / den
        } else {
            0.0
        }
    }
}

impl ModuleLogic for PredictiveAutoscaler {
    fn spec(&self) -> ModuleSpec {
        ModuleSpec {
            id: self.id.clone(),
            kind: Kind::Autoscaling,
            vendor: self.vendor.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            inputs: vec![
                SensorSelector::metric(CPU_UTILIZATION.name),
                SensorSelector::metric(APP_UTILIZATION.name),
            ],
            outputs: vec![param::INSTANCES.into()],
            goals: vec![Goal {
                metric: param::INSTANCES.into(),
                objective: Objective::Minimise,
                target: None,
                conditions: vec![Condition {
                    metric: CPU_UTILIZATION.name.into(),
                    cmp: Cmp::Below,
                    value: 0.9,
                }],
            }],
            deadline_ms: 50,
            custom_sensors: vec![],
        }
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let t = s.view.at_ms as f64 / 1000.0;
        let mut out = Vec::new();
        for set in s.view.service_sets.iter() {
            let Some(u) = s.view.set_utilization(set).filter(|u| u.is_finite()) else {
                continue;
            };
            let h = self.history.entry(set.id.clone()).or_default();
            h.push_back((t, u));
            while h.len() > self.window.max(2) {
                h.pop_front();
            }
            let forecast = (u + Self::slope(h) * self.horizon_s).clamp(0.0, 1.0);
            let current = f64::from(set.instances.max(1));
            let need = |util: f64| (current * util / self.target_utilization).ceil();
            // Out on the forecast; in only when now and the forecast agree.
            let desired = need(forecast.max(u)).max(if forecast < u { need(u) } else { 0.0 });
            let desired = desired.clamp(
                f64::from(set.min_instances),
                f64::from(set.max_instances.max(set.min_instances)),
            );
            out.push(Proposal {
                target: Target::ServiceSet(set.id.clone()),
                parameter: param::INSTANCES.into(),
                value: desired,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::view::{HostReadings, Member, Reading, SensorView, ServiceSetState};

    fn ask(at_s: i64, util: f64) -> Solicitation {
        Solicitation {
            round: at_s as u64,
            kind: Kind::Autoscaling,
            budget_ms: 50,
            view: SensorView {
                at_ms: at_s * 1000,
                hosts: vec![HostReadings {
                    host: "h".into(),
                    readings: vec![Reading {
                        resource: "cpu".into(),
                        metric: CPU_UTILIZATION.name.into(),
                        value: util,
                        at_ms: 0,
                    }],
                }
                .into()],
                service_sets: vec![ServiceSetState {
                    id: "shop".into(),
                    customer: "acme".into(),
                    members: vec![Member {
                        host: "h".into(),
                        resource: None,
                    }],
                    instances: 4,
                    min_instances: 1,
                    max_instances: 20,
                    goals: vec![],
                }]
                .into(),
                settings: vec![].into(),
            },
        }
    }

    #[test]
    fn scales_out_ahead_of_a_rising_load() {
        let mut m = PredictiveAutoscaler::new("p", "v");
        // Utilisation rises 1 point a second: at 0.5 now, 0.8 in 30 s.
        let mut last = 0.0;
        for i in 0..10 {
            let p = m.solicit(&ask(i, 0.41 + 0.01 * i as f64));
            last = p[0].value;
        }
        // Reactive sizing would ask ceil(4 × 0.5 / 0.6) = 4; the forecast
        // 0.8 asks ceil(4 × 0.8 / 0.6) = 6.
        assert_eq!(last, 6.0);
    }

    #[test]
    fn steady_load_sizes_like_the_reactive_rule() {
        let mut m = PredictiveAutoscaler::new("p", "v");
        let mut last = 0.0;
        for i in 0..5 {
            last = m.solicit(&ask(i, 0.3))[0].value;
        }
        assert_eq!(last, 2.0); // ceil(4 × 0.3 / 0.6)
    }
}
