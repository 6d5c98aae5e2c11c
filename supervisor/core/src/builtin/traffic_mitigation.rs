//! Default traffic mitigation: ask for mitigation capacity in proportion to
//! the detected excess.
//!
//! For every target with a `traffic.excess` setting in force (as mediated
//! from the detection modules' requests):
//!
//! ```text
//! mitigation.capacity = factor × excess      while excess > 0
//!                     = 0, once              when the excess went back to 0
//! ```
//!
//! "Once" is tracked per target: the module remembers the targets it asked
//! capacity for. A remembered target whose excess setting vanished from the
//! view gets its 0 when its host is in the view (so capacity is not left
//! allocated); while the host is absent it is remembered but not addressed.
//! Excess values that are NaN, infinite or negative count as 0. If the
//! setting appears twice, the first one counts, as in [`SensorView::setting`].
//!
//! [`SensorView::setting`]: vcp_common::view::SensorView::setting

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vcp_common::metric::NIC_RX_BYTES;
use vcp_common::module::{
    param, Goal, Kind, ModuleLogic, ModuleSpec, Objective, Proposal, SensorSelector, Solicitation,
    Target,
};

use super::{builtin_spec, usable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficMitigationConfig {
    /// Capacity asked per byte/s of excess.
    pub factor: f64,
}

impl Default for TrafficMitigationConfig {
    fn default() -> Self {
        TrafficMitigationConfig { factor: 1.0 }
    }
}

/// The default traffic mitigation module; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct TrafficMitigation {
    config: TrafficMitigationConfig,
    /// Targets the last proposal for which was a positive capacity.
    asked: BTreeSet<Target>,
}

impl TrafficMitigation {
    pub fn new(config: TrafficMitigationConfig) -> Self {
        TrafficMitigation {
            config,
            asked: BTreeSet::new(),
        }
    }

    fn proposal(target: Target, value: f64) -> Proposal {
        Proposal {
            target,
            parameter: param::MITIGATION.to_owned(),
            value,
        }
    }
}

/// The host a target lives on, if it names one.
fn host_of(t: &Target) -> Option<&str> {
    match t {
        Target::ServiceSet(_) => None,
        Target::Member { host, .. } | Target::Resource { host, .. } => Some(host),
    }
}

impl ModuleLogic for TrafficMitigation {
    fn spec(&self) -> ModuleSpec {
        let goal = Goal {
            metric: param::TRAFFIC_EXCESS.to_owned(),
            objective: Objective::Minimise,
            target: Some(0.0),
            conditions: Vec::new(),
        };
        // Reads settings; the NIC input keeps its hosts in the view.
        let input = SensorSelector {
            metric: NIC_RX_BYTES.name.to_owned(),
            resource_prefix: Some("nic/".to_owned()),
        };
        builtin_spec(
            Kind::TrafficMitigation,
            vec![input],
            &[param::MITIGATION],
            vec![goal],
            10,
        )
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        let Some(factor) = usable(self.config.factor) else {
            return Vec::new();
        };
        let mut excess: BTreeMap<&Target, f64> = BTreeMap::new();
        for st in s.view.settings.iter() {
            if st.parameter == param::TRAFFIC_EXCESS {
                excess.entry(&st.target).or_insert(st.value);
            }
        }
        let mut out = Vec::new();
        for (&target, &x) in &excess {
            let ask = usable(x).map(|x| x * factor).filter(|v| v.is_finite());
            match ask {
                Some(v) if v > 0.0 => {
                    self.asked.insert(target.clone());
                    out.push(Self::proposal(target.clone(), v));
                }
                _ => {
                    if self.asked.remove(target) {
                        out.push(Self::proposal(target.clone(), 0.0));
                    }
                }
            }
        }
        // Vanished settings on hosts still in view: withdraw.
        let view = &s.view;
        let withdrawn: Vec<Target> = self
            .asked
            .iter()
            .filter(|t| !excess.contains_key(t))
            .filter(|t| host_of(t).is_some_and(|h| view.host(h).is_some()))
            .cloned()
            .collect();
        for t in withdrawn {
            self.asked.remove(&t);
            out.push(Self::proposal(t, 0.0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use vcp_common::view::{SensorView, Setting};

    fn nic(host: &str, iface: &str) -> Target {
        Target::Resource {
            host: host.into(),
            resource: vcp_common::resource::ResourceId::new(format!("nic/{iface}")).unwrap(),
        }
    }

    fn with_excess(hosts: &[&str], excess: &[(Target, f64)]) -> SensorView {
        let mut v = view(0, hosts.iter().map(|h| host(h, vec![])).collect(), vec![]);
        for (t, x) in excess {
            std::sync::Arc::make_mut(&mut v.settings).push(Setting {
                target: t.clone(),
                parameter: param::TRAFFIC_EXCESS.into(),
                value: *x,
            });
        }
        // Unrelated settings are ignored.
        std::sync::Arc::make_mut(&mut v.settings).push(Setting {
            target: nic("h1", "eth0"),
            parameter: param::CPU_SHARE.into(),
            value: 0.5,
        });
        v
    }

    fn run(m: &mut TrafficMitigation, v: SensorView) -> Vec<(Target, f64)> {
        m.solicit(&solicitation(0, Kind::TrafficMitigation, v))
            .into_iter()
            .map(|p| {
                assert_eq!(p.parameter, param::MITIGATION);
                (p.target, p.value)
            })
            .collect()
    }

    #[test]
    fn asks_in_proportion_then_withdraws_once() {
        let mut m = TrafficMitigation::new(TrafficMitigationConfig { factor: 1.5 });
        let (e0, e1) = (nic("h1", "eth0"), nic("h1", "eth1"));
        let v = with_excess(&["h1"], &[(e0.clone(), 2e6), (e1.clone(), 0.0)]);
        assert_eq!(run(&mut m, v.clone()), vec![(e0.clone(), 3e6)]);
        assert_eq!(run(&mut m, v), vec![(e0.clone(), 3e6)]);
        let v = with_excess(&["h1"], &[(e0.clone(), 0.0), (e1.clone(), 0.0)]);
        assert_eq!(run(&mut m, v.clone()), vec![(e0.clone(), 0.0)]);
        assert!(run(&mut m, v).is_empty());
    }

    #[test]
    fn vanished_settings_are_withdrawn_when_the_host_is_in_view() {
        let mut m = TrafficMitigation::default();
        let (a, b) = (nic("h1", "eth0"), nic("h2", "eth0"));
        let v = with_excess(&["h1", "h2"], &[(a.clone(), 10.0), (b.clone(), 20.0)]);
        assert_eq!(run(&mut m, v), vec![(a.clone(), 10.0), (b.clone(), 20.0)]);
        // Both settings gone; only h1 is in view.
        assert_eq!(run(&mut m, with_excess(&["h1"], &[])), vec![(a, 0.0)]);
        assert!(run(&mut m, with_excess(&["h1"], &[])).is_empty());
        // h2 is back: now it is withdrawn.
        assert_eq!(run(&mut m, with_excess(&["h2"], &[])), vec![(b, 0.0)]);
        assert!(m.asked.is_empty());
    }

    #[test]
    fn odd_values_ask_nothing() {
        let mut m = TrafficMitigation::default();
        let t = nic("h1", "eth0");
        for x in [f64::NAN, f64::INFINITY, -5.0, 0.0] {
            assert!(run(&mut m, with_excess(&["h1"], &[(t.clone(), x)])).is_empty());
        }
        // The first of duplicated settings counts.
        let v = with_excess(&["h1"], &[(t.clone(), 7.0), (t.clone(), 9.0)]);
        assert_eq!(run(&mut m, v), vec![(t.clone(), 7.0)]);
        assert_eq!(
            run(&mut m, with_excess(&["h1"], &[(t.clone(), f64::NAN)])),
            vec![(t, 0.0)]
        );
        assert!(run(&mut m, SensorView::default()).is_empty());
        for factor in [f64::NAN, -1.0] {
            let mut m = TrafficMitigation::new(TrafficMitigationConfig { factor });
            let v = with_excess(&["h1"], &[(nic("h1", "eth0"), 7.0)]);
            assert!(run(&mut m, v).is_empty());
        }
    }
}
