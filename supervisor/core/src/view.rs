//! The fleet view: the latest reading of every series of every host, as
//! immutable snapshots swapped atomically. Rounds read it without locks;
//! ingest replaces one host's snapshot per applied batch.
//!
//! No locks here: hot path. The outer host map is replaced only when a host
//! is seen for the first time.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use vcp_common::batch::{Batch, SeriesDef};

/// The latest value of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    /// Unix milliseconds of the reading.
    pub at_ms: i64,
    pub value: f64,
}

/// One host's state at one instant. Immutable once published.
///
/// Its dictionary is that of one agent session (connection): series are
/// indexed by the session's dense series ids, which are the decoder's
/// slots, never a number a peer chose. So the snapshot holds at most the
/// series one connection may define (`max_series`).
#[derive(Debug, Clone, Default)]
pub struct HostSnapshot {
    /// The supervisor's number of the agent session this dictionary is of.
    pub session: u64,
    /// The session's series dictionary, indexed by series id.
    pub series: Arc<Vec<SeriesDef>>,
    /// Latest reading per series id (`None` until the first one).
    pub latest: Vec<Option<Latest>>,
}

/// The latest values of a host's earlier session, by name: a new session
/// starts its dictionary afresh and takes each series' last value from
/// here when it defines the series again. Bounded by the earlier
/// session's dictionary.
#[derive(Debug, Default)]
pub struct Carry(HashMap<(String, String), Latest>);

impl Carry {
    /// What `previous` holds, to carry into a new session.
    pub fn from_snapshot(previous: &HostSnapshot) -> Carry {
        Carry(
            previous
                .readings()
                .map(|(d, l)| ((d.resource.clone(), d.metric.clone()), l))
                .collect(),
        )
    }

    fn take(&mut self, def: &SeriesDef) -> Option<Latest> {
        if self.0.is_empty() {
            return None;
        }
        self.0.remove(&(def.resource.clone(), def.metric.clone()))
    }
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

    /// A new snapshot with the batch of agent session `session` applied.
    /// `new_series` are dictionary entries that arrived with the batch;
    /// each must take the next id (the decoder guarantees it; an entry
    /// that does not is ignored). A new session starts a fresh dictionary,
    /// taking earlier values from `carry`.
    pub fn with_batch(
        &self,
        session: u64,
        new_series: &[SeriesDef],
        batch: &Batch,
        carry: &mut Carry,
    ) -> HostSnapshot {
        let mut next = if session == self.session {
            self.clone()
        } else {
            HostSnapshot {
                session,
                ..HostSnapshot::default()
            }
        };
        if !new_series.is_empty() {
            let series = Arc::make_mut(&mut next.series);
            for def in new_series {
                if def.id as usize == series.len() {
                    series.push(def.clone());
                    next.latest.push(carry.take(def));
                }
            }
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
    use vcp_common::batch::{Column, SeriesId};

    fn def(id: SeriesId, resource: &str, metric: &str) -> SeriesDef {
        SeriesDef {
            id,
            resource: resource.into(),
            metric: metric.into(),
            exp: 0,
        }
    }

    fn one(series: SeriesId, at: i64, value: f64) -> Batch {
        Batch {
            seq: 1,
            timestamps: vec![at],
            columns: vec![Column {
                series,
                start: 0,
                values: vec![value],
            }],
        }
    }

    #[test]
    fn batches_update_latest_and_a_new_session_starts_a_fresh_dictionary() {
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
        let mut none = Carry::default();
        cell.store(cell.load().with_batch(1, &defs, &batch, &mut none));
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

        // Session 2 defines memory first (id 0) and cpu never: memory keeps
        // its last value until a new one comes, cpu is gone.
        let mut carry = Carry::from_snapshot(&snap);
        let next = snap.with_batch(
            2,
            &[
                def(0, "memory", "memory.total"),
                def(1, "nic/lo", "nic.speed"),
            ],
            &one(1, 3000, 7.0),
            &mut carry,
        );
        assert_eq!(next.get("cpu", "cpu.utilization"), None);
        assert_eq!(
            next.get("memory", "memory.total").map(|l| l.value),
            Some(5.0)
        );
        assert_eq!(next.get("nic/lo", "nic.speed").map(|l| l.value), Some(7.0));
        assert_eq!(next.readings().count(), 2);
    }

    #[test]
    fn the_view_is_indexed_by_slot_and_ignores_ids_out_of_order() {
        let mut none = Carry::default();
        let snap = HostSnapshot::default().with_batch(
            1,
            &[
                def(0, "cpu", "a"),
                def(10_000_000, "cpu", "b"),
                def(1, "cpu", "c"),
            ],
            &one(1, 1, 1.0),
            &mut none,
        );
        assert_eq!(snap.series.len(), 2);
        assert_eq!(snap.latest.len(), 2);
        assert_eq!(snap.get("cpu", "c").map(|l| l.value), Some(1.0));
    }
}
