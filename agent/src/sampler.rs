//! The sampler: reads every sensor at each sample instant and closes a
//! columnar batch every window.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::warn;
use vcp_common::batch::{Batch, Column, SeriesDef, SeriesId, SeriesTable};
use vcp_common::metric::Metric;

use crate::sensors::{Emit, Sensor};

/// A closed window: the batch (not yet numbered) and the series it defines
/// for the first time.
#[derive(Debug)]
pub struct Sampled {
    pub batch: Batch,
    pub new_series: Vec<SeriesDef>,
}

pub struct Sampler {
    sensors: Vec<Box<dyn Sensor>>,
    table: SeriesTable,
    max_series: usize,
    refused_series: u64,
    announced: usize,
    timestamps: Vec<i64>,
    /// Columns by series id; a series may have several runs.
    columns: BTreeMap<SeriesId, Vec<Column>>,
    failing: Vec<bool>,
    rejected: u64,
}

struct Sink<'a> {
    table: &'a mut SeriesTable,
    max_series: usize,
    refused_series: &'a mut u64,
    columns: &'a mut BTreeMap<SeriesId, Vec<Column>>,
    at: u32,
    rejected: &'a mut u64,
}

impl Sink<'_> {
    fn refuse(&mut self, why: std::fmt::Arguments<'_>) {
        // Each refusal is counted; the first few are logged.
        *self.refused_series += 1;
        if *self.refused_series <= 8 {
            warn!(reason = %why, "series refused: its readings are not sent");
        }
    }
}

impl Emit for Sink<'_> {
    fn emit(&mut self, resource: &str, metric: &Metric, value: f64) {
        if !value.is_finite() {
            *self.rejected += 1;
            return;
        }
        let id = match self.table.lookup(resource, metric.name) {
            Some(id) => id,
            None => {
                // A new series: its resource must be a valid resource id
                // (the supervisor refuses a connection that defines one
                // that is not), and the table stays within its limit.
                if let Err(e) = vcp_common::resource::validate(resource) {
                    self.refuse(format_args!("{e}"));
                    return;
                }
                if self.table.len() >= self.max_series {
                    let max = self.max_series;
                    self.refuse(format_args!(
                        "the agent's table holds its limit of {max} series"
                    ));
                    return;
                }
                self.table.intern(resource, metric.name, metric.exp)
            }
        };
        let runs = self.columns.entry(id).or_default();
        match runs.last_mut() {
            Some(c) if c.start + c.values.len() as u32 == self.at => c.values.push(value),
            // Emitted twice at one instant: the later value wins.
            Some(c) if c.start + c.values.len() as u32 == self.at + 1 => {
                if let Some(v) = c.values.last_mut() {
                    *v = value;
                }
            }
            _ => runs.push(Column {
                series: id,
                start: self.at,
                values: vec![value],
            }),
        }
    }
}

impl Sampler {
    /// A sampler over `sensors` that defines at most `max_series` series
    /// over its life (readings of further series are refused and counted).
    pub fn new(sensors: Vec<Box<dyn Sensor>>, max_series: usize) -> Self {
        let failing = vec![false; sensors.len()];
        Sampler {
            sensors,
            table: SeriesTable::new(),
            max_series,
            refused_series: 0,
            announced: 0,
            timestamps: Vec::new(),
            columns: BTreeMap::new(),
            failing,
            rejected: 0,
        }
    }

    /// Starts from the series of `table` (restored from the spool), so that
    /// new series continue its numbering and are announced only once.
    pub fn with_table(mut self, table: SeriesTable) -> Self {
        self.announced = table.len();
        self.table = table;
        self
    }

    /// Reads every sensor once. `unix_ms` stamps the readings; `now` drives
    /// rate computations.
    pub fn sample(&mut self, now: Instant, unix_ms: i64) {
        let at = self.timestamps.len() as u32;
        // Keep timestamps non-decreasing even if the wall clock steps back.
        let ts = self.timestamps.last().map_or(unix_ms, |&l| unix_ms.max(l));
        self.timestamps.push(ts);
        let mut sink = Sink {
            table: &mut self.table,
            max_series: self.max_series,
            refused_series: &mut self.refused_series,
            columns: &mut self.columns,
            at,
            rejected: &mut self.rejected,
        };
        for (sensor, failing) in self.sensors.iter_mut().zip(&mut self.failing) {
            match sensor.sample(now, &mut sink) {
                Ok(()) => *failing = false,
                Err(e) => {
                    // Log a failure once, not every second.
                    if !*failing {
                        warn!(sensor = sensor.name(), error = %e, "sensor failed; its readings are missing until it recovers");
                    }
                    *failing = true;
                }
            }
        }
    }

    /// Closes the window; `None` if nothing was sampled.
    pub fn close(&mut self) -> Option<Sampled> {
        if self.timestamps.is_empty() {
            return None;
        }
        let columns = std::mem::take(&mut self.columns)
            .into_values()
            .flatten()
            .collect();
        let batch = Batch {
            seq: 0,
            timestamps: std::mem::take(&mut self.timestamps),
            columns,
        };
        let new_series = (self.announced..self.table.len())
            .filter_map(|id| self.table.get(id as SeriesId).cloned())
            .collect();
        self.announced = self.table.len();
        Some(Sampled { batch, new_series })
    }

    /// Readings refused because they were not finite numbers.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Readings refused because their series could not be defined (an
    /// invalid resource id, or the series limit reached).
    pub fn refused_series(&self) -> u64 {
        self.refused_series
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::SensorError;
    use vcp_common::metric::{CPU_UTILIZATION, MEMORY_TOTAL};

    struct Fake(u32);
    impl Sensor for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn sample(&mut self, _: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
            self.0 += 1;
            out.emit("memory", &MEMORY_TOTAL, 100.0);
            if self.0 != 2 {
                out.emit("cpu", &CPU_UTILIZATION, 0.5);
            }
            out.emit("cpu", &CPU_UTILIZATION, f64::NAN);
            Ok(())
        }
    }

    #[test]
    fn builds_columns_with_runs_and_announces_series_once() {
        let mut s = Sampler::new(vec![Box::new(Fake(0))], 100);
        let now = Instant::now();
        for t in 0..3 {
            s.sample(now, 1000 * t);
        }
        let first = s.close().unwrap();
        assert_eq!(first.batch.timestamps, vec![0, 1000, 2000]);
        assert_eq!(first.new_series.len(), 2);
        // memory: one run of 3; cpu: runs at 0 and at 2.
        let cpu: Vec<_> = first
            .batch
            .columns
            .iter()
            .filter(|c| c.series == 1)
            .collect();
        assert_eq!(cpu.len(), 2);
        assert_eq!((cpu[0].start, cpu[1].start), (0, 2));
        assert_eq!(first.batch.readings(), 5);
        assert_eq!(s.rejected(), 3);
        s.sample(now, 3000);
        assert!(s.close().unwrap().new_series.is_empty());
        assert!(s.close().is_none());
    }

    struct Odd;
    impl Sensor for Odd {
        fn name(&self) -> &'static str {
            "odd"
        }
        fn sample(&mut self, _: Instant, out: &mut dyn Emit) -> Result<(), SensorError> {
            out.emit("cgroup/a\\x2db", &CPU_UTILIZATION, 0.1);
            out.emit("cgroup/../etc", &CPU_UTILIZATION, 0.1);
            for i in 0..5 {
                out.emit(&format!("cgroup/g{i}"), &CPU_UTILIZATION, 0.1);
            }
            Ok(())
        }
    }

    #[test]
    fn invalid_resources_and_series_past_the_limit_are_refused_and_counted() {
        let mut s = Sampler::new(vec![Box::new(Odd)], 3);
        s.sample(Instant::now(), 0);
        let out = s.close().unwrap();
        let names: Vec<_> = out.new_series.iter().map(|d| d.resource.as_str()).collect();
        assert_eq!(names, ["cgroup/g0", "cgroup/g1", "cgroup/g2"]);
        assert_eq!(s.refused_series(), 4);
    }
}
