//! The spool: batches produced and not yet acknowledged, oldest first —
//! on disk in the agent's state directory when it has one, in memory
//! otherwise — and the gaps: batches it could not keep, with their exact
//! reading counts, until the supervisor has been told of them.
//!
//! On disk (see [`disk`] for the files) every batch is appended as it is
//! produced and made durable once per window; a restarted agent keeps its
//! incarnation and its sequence, and resends what the supervisor did not
//! acknowledge. The spool holds at most `max_bytes` (the oldest segment is
//! dropped past it); in memory, at most `memory_batches` batches. What is
//! dropped becomes a [`Gap`]: the uplink tells the supervisor (a `Dropped`
//! frame with the readings of the batches it does not have) before it sends
//! anything after it, so a loss is never silent. A directory that cannot
//! be used — missing and not creatable, read-only, full, failing — is said
//! once in the log, and the agent goes on in memory.

pub mod disk;
pub mod record;
mod state;

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;

use tracing::{error, warn};
use vcp_common::batch::{Batch, SeriesDef, SeriesTable};

use disk::Disk;

/// Where and how much the spool keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolConfig {
    /// The state directory; `None`: memory only.
    pub dir: Option<PathBuf>,
    /// Bytes of segment files at most (default 256 MiB).
    pub max_bytes: u64,
    /// Batches held in memory at most, when there is no usable directory.
    pub memory_batches: usize,
    /// Bytes per segment file before a new one starts.
    pub segment_bytes: u64,
}

impl SpoolConfig {
    /// Memory only, `batches` at most.
    pub fn memory(batches: usize) -> Self {
        SpoolConfig {
            dir: None,
            max_bytes: DEFAULT_MAX_BYTES,
            memory_batches: batches.max(1),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 20;

/// Consecutive batches the spool dropped: (seq, readings) each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gap {
    pub batches: VecDeque<(u64, u64)>,
}

/// What [`Spool::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub seq: u64,
    /// Batches dropped to make room (oldest first), and their readings.
    pub dropped: u64,
    pub dropped_readings: u64,
    /// The oldest batch dropped, if any.
    pub first_dropped: Option<u64>,
}

pub struct Spool {
    cfg: SpoolConfig,
    incarnation: u64,
    next_seq: u64,
    acked: u64,
    /// Memory mode: every held batch. Disk mode: empty.
    mem: VecDeque<Batch>,
    disk: Option<Disk>,
    gaps: Vec<Gap>,
    dropped_readings: u64,
    /// What the push under way did.
    pushed: Pushed,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("incarnation", &self.incarnation)
            .field("next_seq", &self.next_seq)
            .field("acked", &self.acked)
            .field("durable", &self.durable())
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens the spool of `cfg`, with the series table its batches use. A
    /// new incarnation comes from `new` (a fresh directory, or none).
    pub fn open(cfg: SpoolConfig, new: impl FnOnce() -> u64) -> (Spool, SeriesTable) {
        let mut table = SeriesTable::new();
        let mut new = Some(new);
        let mut spool = Spool {
            incarnation: 0,
            next_seq: 1,
            acked: 0,
            mem: VecDeque::new(),
            disk: None,
            gaps: Vec::new(),
            dropped_readings: 0,
            pushed: Pushed {
                seq: 0,
                dropped: 0,
                dropped_readings: 0,
                first_dropped: None,
            },
            cfg,
        };
        if let Some(dir) = spool.cfg.dir.clone() {
            let opened = std::fs::create_dir_all(&dir)
                .and_then(|()| state::incarnation(&dir, || (new.take().expect("called once"))()))
                .and_then(|inc| Ok((inc, Disk::open(&dir, spool.cfg.segment_bytes)?)));
            match opened {
                Ok((incarnation, (disk, rec))) => {
                    for d in &rec.defs {
                        table.intern(&d.resource, &d.metric, d.exp);
                    }
                    spool.incarnation = incarnation;
                    spool.next_seq = rec.next_seq;
                    spool.acked = rec.acked;
                    spool.gaps = state::load_gaps(&dir);
                    spool.disk = Some(disk);
                    let held = spool.len();
                    if held > 0 || !spool.gaps.is_empty() {
                        tracing::info!(dir = %dir.display(), held, next_seq = spool.next_seq, "spool: resuming");
                    }
                    return (spool, table);
                }
                Err(e) => {
                    error!(dir = %dir.display(), error = %e, "spool: the state directory cannot be used; batches are kept in memory only")
                }
            }
        }
        spool.incarnation = new.map_or(0, |f| f());
        (spool, table)
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Whether batches are kept on disk.
    pub fn durable(&self) -> bool {
        self.disk.is_some()
    }

    /// Readings dropped since start.
    pub fn dropped_readings(&self) -> u64 {
        self.dropped_readings
    }

    /// The disk failed: go on in memory with what it still holds.
    fn fall_back(&mut self, e: io::Error) {
        let Some(disk) = self.disk.take() else { return };
        error!(error = %e, "spool: the state directory failed; batches are kept in memory from now on");
        for b in disk.batches(self.acked) {
            match b {
                Ok(b) => self.mem.push_back(b),
                Err(e) => warn!(error = %e, "spool: a segment could not be read back"),
            }
        }
        // Whatever could not be read back is lost: say so.
        let kept: std::collections::BTreeSet<u64> = self.mem.iter().map(|b| b.seq).collect();
        let lost: VecDeque<(u64, u64)> = disk
            .segments
            .iter()
            .flat_map(|s| s.held.iter().copied())
            .filter(|(seq, _)| !kept.contains(seq))
            .collect();
        if !lost.is_empty() {
            self.dropped(lost);
        }
        self.trim_memory();
    }

    fn trim_memory(&mut self) {
        let mut lost = VecDeque::new();
        while self.mem.len() > self.cfg.memory_batches {
            if let Some(b) = self.mem.pop_front() {
                lost.push_back((b.seq, b.readings() as u64));
            }
        }
        if !lost.is_empty() {
            self.dropped(lost);
        }
    }

    /// Records dropped batches as a gap (merged with the last when they
    /// follow it).
    fn dropped(&mut self, batches: VecDeque<(u64, u64)>) {
        let readings: u64 = batches.iter().map(|(_, r)| r).sum();
        self.dropped_readings += readings;
        self.pushed.dropped += batches.len() as u64;
        self.pushed.dropped_readings += readings;
        if let Some((first, _)) = batches.front() {
            self.pushed.first_dropped.get_or_insert(*first);
        }
        warn!(
            batches = batches.len(),
            readings, "spool full: dropped the oldest unacknowledged batches"
        );
        match self.gaps.last_mut() {
            Some(g) if g.batches.back().map(|(s, _)| s + 1) == batches.front().map(|(s, _)| *s) => {
                g.batches.extend(batches)
            }
            _ => self.gaps.push(Gap { batches }),
        }
        self.save_gaps();
    }

    fn save_gaps(&mut self) {
        let Some(dir) = self.cfg.dir.clone().filter(|_| self.disk.is_some()) else {
            return;
        };
        if let Err(e) = state::save_gaps(&dir, &self.gaps) {
            self.fall_back(e);
        }
    }

    /// Keeps a new series definition (the batches that use it follow).
    pub fn define(&mut self, def: &SeriesDef) {
        if let Some(d) = &mut self.disk {
            if let Err(e) = d.append_def(def) {
                self.fall_back(e);
            }
        }
    }

    /// Numbers `batch` with the next sequence number and keeps it (a copy,
    /// in memory; on disk, its record), dropping the oldest batches past
    /// the spool's bounds.
    pub fn push(&mut self, batch: &mut Batch) -> Pushed {
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.seq = seq;
        self.pushed = Pushed {
            seq,
            dropped: 0,
            dropped_readings: 0,
            first_dropped: None,
        };
        let mut in_memory = true;
        if let Some(d) = &mut self.disk {
            match d.append_batch(batch) {
                Ok(()) => {
                    in_memory = false;
                    self.enforce_bytes();
                }
                Err(e) => self.fall_back(e),
            }
        }
        if in_memory {
            self.mem.push_back(batch.clone());
            self.trim_memory();
        }
        self.pushed
    }

    fn enforce_bytes(&mut self) {
        loop {
            let Some(d) = &mut self.disk else { return };
            if d.bytes() <= self.cfg.max_bytes {
                return;
            }
            match d.drop_oldest() {
                Ok(Some(held)) if !held.is_empty() => self.dropped(held),
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => return self.fall_back(e),
            }
        }
    }

    /// Makes what was pushed durable (once per window).
    pub fn sync(&mut self) {
        if let Some(d) = &mut self.disk {
            if let Err(e) = d.sync() {
                self.fall_back(e);
            }
        }
    }

    /// Forgets every batch and gap with `seq <= up_to`.
    pub fn ack(&mut self, up_to: u64) {
        if up_to <= self.acked {
            return;
        }
        self.acked = up_to;
        while self.mem.front().is_some_and(|b| b.seq <= up_to) {
            self.mem.pop_front();
        }
        if let Some(d) = &mut self.disk {
            if let Err(e) = d.ack(up_to) {
                self.fall_back(e);
            }
        }
        let before = self.gaps.len();
        for g in &mut self.gaps {
            while g.batches.front().is_some_and(|(s, _)| *s <= up_to) {
                g.batches.pop_front();
            }
        }
        self.gaps.retain(|g| !g.batches.is_empty());
        if self.gaps.len() != before {
            self.save_gaps();
        }
    }

    /// What to tell a supervisor that has applied everything up to
    /// `applied`: for each gap, the last batch it covers and the readings
    /// of its batches past `applied` — as `Dropped` frames, in order,
    /// before any later batch.
    pub fn gaps_after(&mut self, applied: u64) -> Vec<(u64, u64)> {
        self.ack(applied);
        self.gaps
            .iter()
            .filter_map(|g| {
                let last = g.batches.back()?.0;
                let readings = g
                    .batches
                    .iter()
                    .filter(|(s, _)| *s > applied)
                    .map(|(_, r)| r)
                    .sum();
                Some((last, readings))
            })
            .collect()
    }

    /// The oldest sequence number held (a batch or a gap), or the next one.
    pub fn first_seq(&self) -> u64 {
        let gap = self
            .gaps
            .first()
            .and_then(|g| g.batches.front())
            .map(|(s, _)| *s);
        let batch = match &self.disk {
            Some(d) => d
                .segments
                .iter()
                .find_map(|s| s.held.front())
                .map(|(s, _)| *s),
            None => self.mem.front().map(|b| b.seq),
        };
        gap.or(batch).unwrap_or(self.next_seq)
    }

    /// The last sequence number handed out (0 before the first batch).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Batches held, not yet acknowledged.
    pub fn len(&self) -> usize {
        match &self.disk {
            Some(d) => d.segments.iter().map(|s| s.held.len()).sum(),
            None => self.mem.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The held batches with seq > `after`, oldest first (read back from
    /// disk segment by segment as the iterator goes; it does not borrow the
    /// spool).
    pub fn backlog(&self, after: u64) -> Box<dyn Iterator<Item = io::Result<Batch>> + Send> {
        let after = after.max(self.acked);
        match &self.disk {
            Some(d) => Box::new(d.batches(after)),
            None => {
                let held: Vec<Batch> = self.mem.iter().filter(|b| b.seq > after).cloned().collect();
                Box::new(held.into_iter().map(Ok))
            }
        }
    }
}

#[cfg(test)]
mod tests;
