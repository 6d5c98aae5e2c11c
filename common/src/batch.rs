//! Batches: an agent's readings for one time window, in columnar form.
//!
//! This is the decoded model shared by the agent (which builds batches and
//! keeps them in its spool) and the supervisor (which decodes them). The wire
//! encoding lives in `codec`; it is per connection, so a batch held in the
//! spool can be re-encoded on a new connection after a reconnect.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Agent-wide id of a series; dense from 0, stable for the agent's lifetime.
pub type SeriesId = u32;

/// A series: which resource, which metric, and its wire quantum (10^exp).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeriesDef {
    pub id: SeriesId,
    /// e.g. `cpu`, `cpu/3`, `nic/eth0`, `gpu/0`, `memory`, `host`.
    pub resource: String,
    /// A registry name (`metric::ALL`) or a custom sensor's name.
    pub metric: String,
    pub exp: i8,
}

/// One series' values over consecutive timestamps of its batch:
/// `values[i]` was read at `timestamps[start + i]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Column {
    pub series: SeriesId,
    pub start: u32,
    pub values: Vec<f64>,
}

/// An agent's readings for one window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Per-agent sequence number, contiguous within one agent incarnation.
    pub seq: u64,
    /// Sample instants, unix milliseconds, non-decreasing.
    pub timestamps: Vec<i64>,
    /// Columns ordered by series id; a series may have several columns when
    /// it vanished and came back within the window.
    pub columns: Vec<Column>,
}

impl Batch {
    /// Number of readings (values) in the batch.
    pub fn readings(&self) -> usize {
        self.columns.iter().map(|c| c.values.len()).sum()
    }
}

/// The agent's interning table of series: (resource, metric) -> id.
#[derive(Debug, Default, Clone)]
pub struct SeriesTable {
    defs: Vec<SeriesDef>,
    by_metric: HashMap<String, HashMap<String, SeriesId>>,
}

impl SeriesTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `(resource, metric)`, if defined.
    pub fn lookup(&self, resource: &str, metric: &str) -> Option<SeriesId> {
        self.by_metric.get(metric)?.get(resource).copied()
    }

    /// Returns the id of `(resource, metric)`, defining it on first use.
    pub fn intern(&mut self, resource: &str, metric: &str, exp: i8) -> SeriesId {
        if let Some(id) = self.lookup(resource, metric) {
            return id;
        }
        let id = self.defs.len() as SeriesId;
        self.defs.push(SeriesDef {
            id,
            resource: resource.to_owned(),
            metric: metric.to_owned(),
            exp,
        });
        self.by_metric
            .entry(metric.to_owned())
            .or_default()
            .insert(resource.to_owned(), id);
        id
    }

    pub fn get(&self, id: SeriesId) -> Option<&SeriesDef> {
        self.defs.get(id as usize)
    }

    pub fn len(&self) -> usize {
        self.defs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }
}
