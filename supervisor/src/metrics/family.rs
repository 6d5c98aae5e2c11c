//! The families of one scrape and their encoding: a prometheus-client
//! [`Collector`] over them, and the conversion of its OpenMetrics output to
//! the classic text format.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub(super) fn encode_openmetrics(families: Families) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(families));
    let mut out = String::new();
    // Writing to a String cannot fail, nor can the collector.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// OpenMetrics (as prometheus-client writes it) to the classic text format:
/// counters are named with their `_total` suffix in `# HELP` and `# TYPE`,
/// and the `# UNIT` and `# EOF` lines go (the classic format has neither).
/// Samples are the same in both.
pub(super) fn to_text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 1024);
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let suffix = if ty == "counter" { "_total" } else { "" };
            if let Some(h) = help.take() {
                let text = h.strip_prefix(name).map_or(h, |t| t.trim_start());
                out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {ty}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub(super) type Labels = Vec<(&'static str, String)>;

/// A label value escaped for both text formats (prometheus-client writes
/// label values as they are).
pub(super) fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

pub(super) fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, escape(v))).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    U(u64),
    I(i64),
    F(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F(v)
    }
}

/// A histogram sample: `buckets` are (upper bound, samples in that bucket
/// alone), the last one `f64::MAX` (`+Inf`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HistogramValue {
    pub(super) sum: f64,
    pub(super) count: u64,
    pub(super) buckets: Vec<(f64, u64)>,
}

#[derive(Debug)]
pub(super) enum Samples {
    Counter(Vec<(Labels, Value)>),
    Gauge(Vec<(Labels, Value)>),
    Histogram(Vec<(Labels, HistogramValue)>),
}

/// One metric family; `name` is the classic name (counters end in `_total`).
#[derive(Debug)]
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) samples: Samples,
}

impl Family {
    pub(super) fn add(&mut self, labels: Labels, v: impl Into<Value>) -> &mut Self {
        let v = v.into();
        // Neither format has a use for a non-finite counter or gauge here.
        if matches!(v, Value::F(f) if !f.is_finite()) {
            return self;
        }
        match &mut self.samples {
            Samples::Counter(s) | Samples::Gauge(s) => s.push((labels, v)),
            Samples::Histogram(_) => debug_assert!(false, "{} is a histogram", self.name),
        }
        self
    }
}

/// A scrape's copy of every value: what the collector encodes.
#[derive(Debug, Default)]
pub(super) struct Families(pub(super) Vec<Family>);

impl Families {
    pub(super) fn family(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: Samples,
    ) -> &mut Family {
        self.0.push(Family {
            name,
            help,
            samples,
        });
        self.0.last_mut().expect("just pushed")
    }

    pub(super) fn counter(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        debug_assert!(name.ends_with("_total"), "{name}");
        self.family(name, help, Samples::Counter(Vec::new()))
    }

    pub(super) fn gauge(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        self.family(name, help, Samples::Gauge(Vec::new()))
    }

    pub(super) fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
    ) -> &mut Vec<(Labels, HistogramValue)> {
        match &mut self
            .family(name, help, Samples::Histogram(Vec::new()))
            .samples
        {
            Samples::Histogram(s) => s,
            _ => unreachable!(),
        }
    }
}

impl Samples {
    pub(super) fn len(&self) -> usize {
        match self {
            Samples::Counter(s) | Samples::Gauge(s) => s.len(),
            Samples::Histogram(s) => s.len(),
        }
    }

    pub(super) fn labels(&self, i: usize) -> &Labels {
        match self {
            Samples::Counter(s) | Samples::Gauge(s) => &s[i].0,
            Samples::Histogram(s) => &s[i].0,
        }
    }

    fn encode(&self, i: usize, mut e: MetricEncoder) -> Result<(), fmt::Error> {
        match self {
            Samples::Counter(s) => match s[i].1 {
                Value::U(v) => ConstCounter::new(v).encode(e),
                Value::I(v) => ConstCounter::new(v.max(0) as u64).encode(e),
                Value::F(v) => ConstCounter::new(v.max(0.0)).encode(e),
            },
            Samples::Gauge(s) => match s[i].1 {
                Value::U(v) => ConstGauge::new(v).encode(e),
                Value::I(v) => ConstGauge::new(v).encode(e),
                Value::F(v) => ConstGauge::new(v).encode(e),
            },
            Samples::Histogram(s) => {
                let h = &s[i].1;
                e.encode_histogram::<Labels>(h.sum, h.count, &h.buckets, None)
            }
        }
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for f in self.0.iter().filter(|f| f.samples.len() > 0) {
            let (name, ty) = match f.samples {
                // OpenMetrics names a counter family without `_total`; the
                // encoder appends it to the samples.
                Samples::Counter(_) => (
                    f.name.strip_suffix("_total").unwrap_or(f.name),
                    MetricType::Counter,
                ),
                Samples::Gauge(_) => (f.name, MetricType::Gauge),
                Samples::Histogram(_) => (f.name, MetricType::Histogram),
            };
            let mut m = encoder.encode_descriptor(name, f.help, None, ty)?;
            for i in 0..f.samples.len() {
                let labels = f.samples.labels(i);
                if labels.is_empty() {
                    // An unlabelled family has this one sample; through
                    // `encode_family` it would be written `name{} v`.
                    f.samples.encode(i, m)?;
                    break;
                }
                f.samples.encode(i, m.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}
