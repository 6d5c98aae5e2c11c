//! The fleet view: the latest reading of every series of every host, as
//! immutable snapshots swapped atomically. Rounds read it without locks;
//! ingest replaces one host's snapshot per applied batch.
//!
//! No locks here: hot path. The outer host map is replaced only when a host
//! is seen for the first time.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use vcp_common::batch::{Batch, SeriesDef, SeriesId};

/// The latest value of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    /// Unix milliseconds of the reading.
    pub at_ms: i64,
    pub value: f64,
}

/// One host's state at one instant. Immutable once published.
#[derive(Debug, Clone, Default)]
pub struct HostSnapshot {
    pub incarnation: u64,
    /// The agent's series dictionary, indexed by series id.
    pub series: Arc<Vec<SeriesDef>>,
    /// Latest reading per series id (`None` until the first one).
    pub latest: Vec<Option<Latest>>,
}

impl HostSnapshot {
    /// Every series that has a value: (resource, metric, latest).
    pub fn readings(&self) -> impl Iterator<Item = (&SeriesDef, Latest)> {
        self.series
            .iter()
            .zip(&self.latest)
            .filter_map(|(def, l)| l.map(|l| (def, l)))
    }

    /// Latest value of `(resource, metric)`.
    pub fn get(&self, resource: &str, metric: &str) -> Option<Latest> {
        self.readings()
            .find(|(d, _)| d.resource == resource && d.metric == metric)
            .map(|(_, l)| l)
    }

    /// A new snapshot with the batch applied. `new_series` are dictionary
    /// entries that arrived with the batch.
    pub fn with_batch(
        &self,
        incarnation: u64,
        new_series: &[SeriesDef],
        batch: &Batch,
    ) -> HostSnapshot {
        let mut next = if incarnation == self.incarnation {
            self.clone()
        } else {
            HostSnapshot {
                incarnation,
                ..HostSnapshot::default()
            }
        };
        if !new_series.is_empty() {
            let series = Arc::make_mut(&mut next.series);
            for def in new_series {
                place(series, def);
            }
        }
        if next.latest.len() < next.series.len() {
            next.latest.resize(next.series.len(), None);
        }
        for col in &batch.columns {
            let (Some(value), Some(slot)) =
                (col.values.last(), next.latest.get_mut(col.series as usize))
            else {
                continue;
            };
            let at = col.start as usize + col.values.len() - 1;
            if let Some(&at_ms) = batch.timestamps.get(at) {
                *slot = Some(Latest {
                    at_ms,
                    value: *value,
                });
            }
        }
        next
    }
}

// Series ids are dense from 0 within an incarnation; fill any hole so the
// vector stays indexable by id.
fn place(series: &mut Vec<SeriesDef>, def: &SeriesDef) {
    let id = def.id as usize;
    while series.len() <= id {
        let hole = series.len() as SeriesId;
        series.push(SeriesDef {
            id: hole,
            resource: String::new(),
            metric: String::new(),
            exp: 0,
        });
    }
    series[id] = def.clone();
}

/// One host's cell: its snapshot, swapped atomically.
#[derive(Debug, Default)]
pub struct HostCell {
    snapshot: ArcSwap<HostSnapshot>,
}

impl HostCell {
    pub fn load(&self) -> Arc<HostSnapshot> {
        self.snapshot.load_full()
    }

    pub fn store(&self, snapshot: HostSnapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }
}

/// The whole fleet: host id -> cell.
#[derive(Debug, Default)]
pub struct View {
    hosts: ArcSwap<HashMap<Arc<str>, Arc<HostCell>>>,
}

impl View {
    /// The host's cell, created on first sight. Only ingest calls this, one
    /// task per agent, so the rare copy-on-write of the map does not race
    /// with itself for the same host; `rcu` retries if two hosts arrive at
    /// once.
    pub fn host(&self, agent_id: &str) -> Arc<HostCell> {
        if let Some(cell) = self.hosts.load().get(agent_id) {
            return cell.clone();
        }
        let mut created = None;
        self.hosts.rcu(|hosts| {
            let mut next = HashMap::clone(hosts);
            let cell = next
                .entry(Arc::from(agent_id))
                .or_insert_with(|| Arc::new(HostCell::default()))
                .clone();
            created = Some(cell);
            next
        });
        created.unwrap_or_default()
    }

    /// A consistent list of hosts (each host's snapshot is loaded separately).
    pub fn hosts(&self) -> Arc<HashMap<Arc<str>, Arc<HostCell>>> {
        self.hosts.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::batch::Column;

    fn def(id: SeriesId, resource: &str, metric: &str) -> SeriesDef {
        SeriesDef {
            id,
            resource: resource.into(),
            metric: metric.into(),
            exp: 0,
        }
    }

    #[test]
    fn batches_update_latest_and_new_incarnation_resets() {
        let view = View::default();
        let cell = view.host("agent-1");
        let batch = Batch {
            seq: 1,
            timestamps: vec![1000, 2000],
            columns: vec![
                Column {
                    series: 0,
                    start: 0,
                    values: vec![1.0, 2.0],
                },
                Column {
                    series: 1,
                    start: 0,
                    values: vec![5.0],
                },
            ],
        };
        let defs = [
            def(0, "cpu", "cpu.utilization"),
            def(1, "memory", "memory.total"),
        ];
        cell.store(cell.load().with_batch(9, &defs, &batch));
        let snap = view.host("agent-1").load();
        assert_eq!(
            snap.get("cpu", "cpu.utilization"),
            Some(Latest {
                at_ms: 2000,
                value: 2.0
            })
        );
        assert_eq!(
            snap.get("memory", "memory.total"),
            Some(Latest {
                at_ms: 1000,
                value: 5.0
            })
        );
        assert_eq!(view.hosts().len(), 1);

        let reset = snap.with_batch(
            10,
            &[def(0, "nic/lo", "nic.speed")],
            &Batch {
                seq: 1,
                timestamps: vec![3000],
                columns: vec![Column {
                    series: 0,
                    start: 0,
                    values: vec![7.0],
                }],
            },
        );
        assert_eq!(reset.get("cpu", "cpu.utilization"), None);
        assert_eq!(reset.readings().count(), 1);
    }
}
