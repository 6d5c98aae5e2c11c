//! Default traffic anomaly detection: an EWMA baseline per interface.
//!
//! For every host interface (`nic/IF` resources, `lo` skipped by default)
//! the module keeps, separately for rx bytes/s and rx packets/s, an
//! exponentially weighted mean and variance (Finch 2009):
//!
//! ```text
//! δ = x − mean;  mean += α·δ;  var = (1 − α)·(var + α·δ²)
//! sd = max(√var, min_sd_fraction · mean, min_sd_<metric>)
//! z  = (x − mean) / sd                      (against the baseline before x)
//! ```
//!
//! After `warmup` samples of a metric, `z > threshold` on either metric
//! makes the interface anomalous, and the module proposes
//!
//! ```text
//! traffic.excess = max(0, x_bytes − (mean_bytes + threshold·sd_bytes))
//! ```
//!
//! bytes/s on `Target::Resource { host, "nic/IF" }`, every round while it
//! lasts; when it ends, `0` once. A packet-only anomaly (a flood of small
//! packets) whose bytes stay under their bound is converted to bytes at the
//! current mean packet size: `(x_pkts − bound_pkts) × x_bytes / x_pkts`,
//! so that it is not reported as 0.
//!
//! Anomalous samples are **not** absorbed into the baseline by default
//! (`anomaly_alpha = 0`): the baseline freezes, and a sustained attack stays
//! detected for as long as it lasts. An operator who wants a lasting level
//! shift to become the new normal sets a small `anomaly_alpha` (e.g. 0.01),
//! with which anomalous samples are absorbed heavily damped. The floors on
//! `sd` keep a flat baseline (idle link, `var = 0`) from flagging noise.
//!
//! Only new samples update the baseline: a reading whose timestamp is not
//! newer than the last one absorbed is re-evaluated but not counted again.
//! So a host's readings judged again give what they gave — the positive
//! excesses again, a `0` not twice — and the module answers the same
//! readings (the supervisor hands a host's readings unchanged to every
//! round until its next batch) from what it kept, without judging them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vcp_common::metric::{NIC_RX_BYTES, NIC_RX_PACKETS};
use vcp_common::module::{
    param, Kind, ModuleLogic, ModuleSpec, Proposal, SensorSelector, Solicitation, Target,
};
use vcp_common::resource::ResourceId;
use vcp_common::view::HostReadings;

use super::{builtin_spec, usable};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficDetectionConfig {
    /// EWMA weight of a new normal sample, in (0, 1].
    pub alpha: f64,
    /// EWMA weight of an anomalous sample, in [0, alpha]; 0 = not absorbed.
    pub anomaly_alpha: f64,
    /// Samples absorbed before anything is judged.
    pub warmup: u32,
    /// z-score above which a sample is anomalous.
    pub threshold: f64,
    /// Least standard deviation, as a fraction of the mean.
    pub min_sd_fraction: f64,
    /// Least standard deviation of rx bytes/s.
    pub min_sd_bytes: f64,
    /// Least standard deviation of rx packets/s.
    pub min_sd_packets: f64,
    /// Interfaces (without `nic/`) never judged.
    pub ignore: Vec<String>,
}

impl Default for TrafficDetectionConfig {
    fn default() -> Self {
        TrafficDetectionConfig {
            alpha: 0.1,
            anomaly_alpha: 0.0,
            warmup: 10,
            threshold: 3.0,
            min_sd_fraction: 0.05,
            // 1 Mbit/s and 100 packets/s: below this nothing is an attack.
            min_sd_bytes: 125_000.0,
            min_sd_packets: 100.0,
            ignore: vec!["lo".to_owned()],
        }
    }
}

impl TrafficDetectionConfig {
    fn is_valid(&self) -> bool {
        self.alpha > 0.0
            && self.alpha <= 1.0
            && (0.0..=self.alpha).contains(&self.anomaly_alpha)
            && self.threshold.is_finite()
            && self.threshold > 0.0
            && usable(self.min_sd_fraction).is_some()
            && usable(self.min_sd_bytes).is_some()
            && usable(self.min_sd_packets).is_some()
    }
}

/// EWMA baseline of one metric of one interface.
#[derive(Debug, Clone, Default, PartialEq)]
struct Baseline {
    mean: f64,
    var: f64,
    samples: u32,
    /// Timestamp of the last sample absorbed.
    last_at_ms: Option<i64>,
}

impl Baseline {
    fn sd(&self, fraction: f64, min: f64) -> f64 {
        self.var.sqrt().max(fraction * self.mean).max(min)
    }

    fn absorb(&mut self, x: f64, alpha: f64) {
        if self.samples == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let delta = x - self.mean;
            let incr = alpha * delta;
            self.mean += incr;
            self.var = (1.0 - alpha) * (self.var + delta * incr);
        }
        self.samples = self.samples.saturating_add(1);
    }
}

#[derive(Debug, Clone, Default)]
struct Interface {
    bytes: Baseline,
    packets: Baseline,
    /// Whether the last proposal was a positive excess.
    reported: bool,
}

/// Latest usable sample of a metric: `(value, at_ms)`.
type Sample = Option<(f64, i64)>;

/// One warmed-up metric's judgement of a sample.
struct Verdict {
    anomalous: bool,
    /// How far the sample is above the bound `mean + threshold·sd`, ≥ 0.
    over: f64,
}

/// What the module keeps of one host.
#[derive(Debug, Clone, Default)]
struct HostState {
    /// Per resource.
    interfaces: BTreeMap<String, Interface>,
    /// The readings last judged and the positive excesses they gave:
    /// what judging them again would give.
    judged: Option<(Arc<HostReadings>, Vec<Proposal>)>,
}

/// The default traffic detection module; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct TrafficDetection {
    config: TrafficDetectionConfig,
    hosts: HashMap<String, HostState>,
}

impl TrafficDetection {
    pub fn new(config: TrafficDetectionConfig) -> Self {
        TrafficDetection {
            config,
            hosts: HashMap::new(),
        }
    }
}

/// Judges sample `(x, at_ms)` against `b`, then absorbs it if new.
fn judge(
    c: &TrafficDetectionConfig,
    b: &mut Baseline,
    sample: Sample,
    min_sd: f64,
) -> Option<Verdict> {
    let (x, at_ms) = sample?;
    let warm = b.samples >= c.warmup;
    let bound = b.mean + c.threshold * b.sd(c.min_sd_fraction, min_sd);
    let anomalous = warm && x > bound;
    if b.last_at_ms.is_none_or(|last| at_ms > last) {
        b.last_at_ms = Some(at_ms);
        let alpha = if anomalous { c.anomaly_alpha } else { c.alpha };
        if alpha > 0.0 {
            b.absorb(x, alpha);
        }
    }
    warm.then_some(Verdict {
        anomalous,
        over: (x - bound).max(0.0),
    })
}

impl ModuleLogic for TrafficDetection {
    fn spec(&self) -> ModuleSpec {
        let nic = |metric: &str| SensorSelector {
            metric: metric.to_owned(),
            resource_prefix: Some("nic/".to_owned()),
        };
        builtin_spec(
            Kind::TrafficDetection,
            vec![nic(NIC_RX_BYTES.name), nic(NIC_RX_PACKETS.name)],
            &[param::TRAFFIC_EXCESS],
            Vec::new(),
            10,
        )
    }

    fn solicit(&mut self, s: &Solicitation) -> Vec<Proposal> {
        if !self.config.is_valid() {
            return Vec::new();
        }
        let c = &self.config;
        let mut out = Vec::new();
        // resource → (bytes sample, packets sample); a host has few NICs.
        let mut samples: Vec<(&str, (Sample, Sample))> = Vec::new();
        for h in &s.view.hosts {
            if let Some((last, positive)) = self.hosts.get(&h.host).and_then(|s| s.judged.as_ref())
            {
                if Arc::ptr_eq(last, h) {
                    out.extend(positive.iter().cloned());
                    continue;
                }
            }
            samples.clear();
            for r in &h.readings {
                let Some(ifname) = r.resource.strip_prefix("nic/") else {
                    continue;
                };
                if ifname.is_empty() || c.ignore.iter().any(|i| i == ifname) {
                    continue;
                }
                let Some(x) = usable(r.value) else { continue };
                let at = match samples.iter().position(|(res, _)| *res == r.resource) {
                    Some(at) => at,
                    None => {
                        samples.push((r.resource.as_str(), Default::default()));
                        samples.len() - 1
                    }
                };
                let slot = &mut samples[at].1;
                if r.metric == NIC_RX_BYTES.name {
                    slot.0.get_or_insert((x, r.at_ms));
                } else if r.metric == NIC_RX_PACKETS.name {
                    slot.1.get_or_insert((x, r.at_ms));
                }
            }
            // Interfaces of this host with state: judged, or gone.
            let state = match self.hosts.get_mut(&h.host) {
                Some(state) => state,
                None if samples.is_empty() => continue,
                None => self.hosts.entry(h.host.clone()).or_default(),
            };
            let known = &mut state.interfaces;
            let first = out.len();
            for (resource, _) in &samples {
                if !known.contains_key(*resource) {
                    known.insert((*resource).to_owned(), Interface::default());
                }
            }
            for (resource, st) in known.iter_mut() {
                let (bytes, packets) = samples
                    .iter()
                    .find(|(r, _)| r == resource)
                    .map_or_else(Default::default, |(_, s)| *s);
                let vb = judge(c, &mut st.bytes, bytes, c.min_sd_bytes);
                let vp = judge(c, &mut st.packets, packets, c.min_sd_packets);
                let anomalous = vb.as_ref().is_some_and(|v| v.anomalous)
                    || vp.as_ref().is_some_and(|v| v.anomalous);
                let mut excess = vb.as_ref().map_or(0.0, |v| v.over);
                if let (Some(v), Some((xb, _)), Some((xp, _))) = (&vp, bytes, packets) {
                    if v.anomalous && xp > 0.0 {
                        excess = excess.max(v.over * xb / xp);
                    }
                }
                let value = if anomalous && excess > 0.0 && excess.is_finite() {
                    st.reported = true;
                    Some(excess)
                } else if st.reported {
                    st.reported = false;
                    Some(0.0)
                } else {
                    None
                };
                if let (Some(value), Ok(resource)) = (value, ResourceId::new(resource.as_str())) {
                    out.push(Proposal {
                        target: Target::Resource {
                            host: h.host.clone(),
                            resource,
                        },
                        parameter: param::TRAFFIC_EXCESS.to_owned(),
                        value,
                    });
                }
            }
            let positive = out.get(first..).unwrap_or_default();
            let positive = positive.iter().filter(|p| p.value > 0.0).cloned().collect();
            state.judged = Some((h.clone(), positive));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use vcp_common::view::SensorView;

    /// Exact arithmetic: α = 0.5, warm after 2 samples, no sd floors.
    fn exact() -> TrafficDetectionConfig {
        TrafficDetectionConfig {
            alpha: 0.5,
            warmup: 2,
            min_sd_fraction: 0.0,
            min_sd_bytes: 0.0,
            min_sd_packets: 0.0,
            ..Default::default()
        }
    }

    fn nic_view(at_ms: i64, iface: &str, bytes: Option<f64>, packets: Option<f64>) -> SensorView {
        let res = format!("nic/{iface}");
        let mut rs = Vec::new();
        if let Some(b) = bytes {
            rs.push(reading(&res, NIC_RX_BYTES, b, at_ms));
        }
        if let Some(p) = packets {
            rs.push(reading(&res, NIC_RX_PACKETS, p, at_ms));
        }
        view(at_ms, vec![host("h1", rs)], vec![])
    }

    /// Excess values proposed for `h1:nic/eth0`.
    fn run(m: &mut TrafficDetection, v: SensorView) -> Vec<f64> {
        m.solicit(&solicitation(0, Kind::TrafficDetection, v))
            .into_iter()
            .map(|p| {
                assert_eq!(p.parameter, param::TRAFFIC_EXCESS);
                let want = Target::Resource {
                    host: "h1".into(),
                    resource: vcp_common::resource::ResourceId::new("nic/eth0").unwrap(),
                };
                assert_eq!(p.target, want);
                p.value
            })
            .collect()
    }

    fn bytes(m: &mut TrafficDetection, at_ms: i64, x: f64) -> Vec<f64> {
        run(m, nic_view(at_ms, "eth0", Some(x), None))
    }

    #[test]
    fn the_same_readings_answered_again_give_what_judging_them_gives() {
        // Three rounds between batches: one module is handed the same
        // readings three times (as the supervisor does), the other equal
        // copies, which it judges each time.
        let (mut kept, mut judged) = (
            TrafficDetection::new(exact()),
            TrafficDetection::new(exact()),
        );
        for (t, x) in [
            (1, 100.0),
            (2, 200.0),
            (3, 400.0),
            (4, 400.0),
            (5, 160.0),
            (6, 160.0),
        ] {
            let same = nic_view(t, "eth0", Some(x), None);
            for round in 0..3 {
                let copy = nic_view(t, "eth0", Some(x), None);
                assert_eq!(
                    run(&mut kept, same.clone()),
                    run(&mut judged, copy),
                    "t {t} round {round}"
                );
            }
        }
        let burst = |m: &mut TrafficDetection| run(m, nic_view(7, "eth0", Some(500.0), None));
        let (a, b) = (burst(&mut kept), burst(&mut judged));
        assert!(a.len() == 1 && a == b, "{a:?} {b:?}");
    }

    #[test]
    fn detects_a_sustained_burst_and_clears_once() {
        let mut m = TrafficDetection::new(exact());
        // Warm-up: mean 100 → 150, var 0 → 0.5 × 100 × 50 = 2500, sd 50.
        assert!(bytes(&mut m, 1, 100.0).is_empty());
        assert!(bytes(&mut m, 2, 200.0).is_empty());
        // Bound 150 + 3 × 50 = 300.
        assert_eq!(bytes(&mut m, 3, 400.0), vec![100.0]);
        // Not absorbed: the same bound holds, as long as it lasts.
        for t in 4..50 {
            assert_eq!(bytes(&mut m, t, 400.0), vec![100.0]);
        }
        assert_eq!(bytes(&mut m, 50, 450.0), vec![150.0]);
        // Back to normal: 0 once, then silence; the normal sample is absorbed.
        assert_eq!(bytes(&mut m, 51, 160.0), vec![0.0]);
        assert!(bytes(&mut m, 52, 160.0).is_empty());
        let b = &m.hosts["h1"].interfaces["nic/eth0"].bytes;
        // 160: δ 10 → mean 155, var 0.5 × (2500 + 50) = 1275; again δ 5.
        assert_eq!(b.mean, 157.5);
        assert_eq!(b.var, 0.5 * (1275.0 + 5.0 * 2.5));
        assert_eq!(b.samples, 4);
    }

    #[test]
    fn damped_absorption_lets_a_level_shift_become_normal() {
        let mut m = TrafficDetection::new(TrafficDetectionConfig {
            anomaly_alpha: 0.05,
            ..exact()
        });
        bytes(&mut m, 1, 100.0);
        bytes(&mut m, 2, 200.0);
        // t = 3: bound 300, excess 100, 400 absorbed at 0.05: δ 250 →
        // mean 162.5, var 0.95 × (2500 + 250 × 12.5) = 5343.75.
        assert_eq!(bytes(&mut m, 3, 400.0), vec![100.0]);
        let bound = 162.5 + 3.0 * 5343.75f64.sqrt();
        let e = bytes(&mut m, 4, 400.0);
        assert_eq!(e.len(), 1);
        close(e[0], 400.0 - bound);
        // t = 5: mean 174.375, var 0.95 × (5343.75 + 237.5 × 11.875):
        // bound ≈ 438.6 > 400, the shift has become normal.
        assert_eq!(bytes(&mut m, 5, 400.0), vec![0.0]);
        assert!(bytes(&mut m, 6, 400.0).is_empty());
    }

    #[test]
    fn stale_samples_are_not_counted_twice() {
        let mut m = TrafficDetection::new(exact());
        bytes(&mut m, 1, 100.0);
        bytes(&mut m, 1, 100.0);
        assert!(bytes(&mut m, 1, 900.0).is_empty(), "still warming up");
        let b = &m.hosts["h1"].interfaces["nic/eth0"].bytes;
        assert_eq!((b.samples, b.mean), (1, 100.0));
    }

    #[test]
    fn packet_floods_are_converted_to_bytes() {
        let mut m = TrafficDetection::new(exact());
        let mut step = |t, b, p| run(&mut m, nic_view(t, "eth0", Some(b), Some(p)));
        assert!(step(1, 1000.0, 10.0).is_empty());
        assert!(step(2, 1000.0, 20.0).is_empty());
        // Bytes flat (sd 0, bound 1000 = x). Packets: mean 15, var 25,
        // bound 15 + 3 × 5 = 30; 40 pkt/s of 25 bytes → (40 − 30) × 25.
        assert_eq!(step(3, 1000.0, 40.0), vec![250.0]);
        assert_eq!(step(4, 1000.0, 15.0), vec![0.0]);
    }

    #[test]
    fn floors_keep_flat_baselines_quiet() {
        let mut m = TrafficDetection::default();
        for t in 0..10 {
            assert!(bytes(&mut m, t, 1e6).is_empty());
        }
        // sd = max(0, 5 % of 1e6, 125000) = 125000: bound 1.375e6.
        assert!(bytes(&mut m, 10, 1.3e6).is_empty());
        // Absorbed: mean 1.03e6, sd √(0.9 × 3e5 × 3e4) = 90000 < 125000,
        // bound 1.405e6.
        let e = bytes(&mut m, 11, 2e6);
        assert_eq!(e.len(), 1);
        close(e[0], 595_000.0);
    }

    #[test]
    fn lo_odd_values_and_vanished_interfaces() {
        let mut m = TrafficDetection::new(exact());
        for t in 1..5 {
            let v = nic_view(t, "lo", Some(if t < 3 { 1.0 } else { 1e9 }), None);
            assert!(run(&mut m, v).is_empty());
            assert!(run(&mut m, nic_view(t, "eth0", Some(f64::NAN), Some(-1.0))).is_empty());
        }
        assert!(m
            .hosts
            .values()
            .all(|h| !h.interfaces.contains_key("nic/lo")));
        bytes(&mut m, 10, 100.0);
        bytes(&mut m, 11, 200.0);
        assert_eq!(bytes(&mut m, 12, 400.0), vec![100.0]);
        // The interface disappears from a host still in the view: 0 once.
        let gone = view(13, vec![host("h1", vec![])], vec![]);
        assert_eq!(run(&mut m, gone.clone()), vec![0.0]);
        assert!(run(&mut m, gone).is_empty());
        assert!(run(&mut m, SensorView::default()).is_empty());
        let mut bad = TrafficDetection::new(TrafficDetectionConfig {
            alpha: f64::NAN,
            ..exact()
        });
        assert!(bytes(&mut bad, 1, 1.0).is_empty());
    }
}
