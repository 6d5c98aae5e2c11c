//! The supervisor's registry of agents: each agent's persisted record and
//! its live counters (atomics, read by reports and the live line).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use vcp_core::histogram::Histogram;
use vcp_core::view::View;
use vcp_store::agents::{AgentRecord, AgentTotals, Agents};

/// Live per-agent counters; lock-free.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub batches: AtomicU64,
    pub readings: AtomicU64,
    pub duplicates: AtomicU64,
    pub lost_batches: AtomicU64,
    pub lost_readings: AtomicU64,
    pub wire_bytes: AtomicU64,
    /// UDP bytes received on this agent's connections, as quinn counted them.
    pub udp_bytes: AtomicU64,
    /// UDP bytes sent on them (acknowledgements, configurations, QUIC's own).
    pub udp_sent_bytes: AtomicU64,
    /// Highest applied sequence number.
    pub last_seq: AtomicU64,
    pub connected: AtomicBool,
    /// Unix ms of the last frame received.
    pub last_seen_ms: AtomicI64,
    pub connections: AtomicU64,
}

impl AgentStats {
    pub fn set_totals(&self, t: &AgentTotals) {
        self.batches.store(t.batches, Ordering::Relaxed);
        self.readings.store(t.readings, Ordering::Relaxed);
        self.duplicates.store(t.duplicates, Ordering::Relaxed);
        self.lost_batches.store(t.lost_batches, Ordering::Relaxed);
        self.lost_readings.store(t.lost_readings, Ordering::Relaxed);
        self.wire_bytes.store(t.wire_bytes, Ordering::Relaxed);
    }
}

/// The endpoint's refusals, for the operator (`/metrics`).
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Attempts refused because `max_connections` were live.
    pub refused_connections: AtomicU64,
    /// Attempts refused because `max_handshakes` were in progress.
    pub refused_handshakes: AtomicU64,
    /// Attempts asked to prove their address first (QUIC retry).
    pub retries: AtomicU64,
    /// Handshakes that failed, timed out, or named no identity.
    pub failed_handshakes: AtomicU64,
    /// Enrolments closed because `[limits.enrol] max_in_flight` were served.
    pub enrol_busy: AtomicU64,
    /// Enrolments without a certificate closed because their address had
    /// made `per_source_per_minute` attempts.
    pub enrol_source: AtomicU64,
}

impl EndpointStats {
    pub fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}

/// A point-in-time copy of an agent's counters, for reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AgentSummary {
    pub id: String,
    pub batches: u64,
    pub readings: u64,
    pub duplicates: u64,
    /// Batches the agent could not keep (declared by the agent).
    pub lost_batches: u64,
    /// The readings they held.
    pub lost_readings: u64,
    pub wire_bytes: u64,
    pub udp_bytes: u64,
    pub udp_sent_bytes: u64,
    pub last_seq: u64,
    pub connected: bool,
    pub last_seen_ms: i64,
}

/// One agent known to the supervisor.
#[derive(Debug)]
pub struct AgentEntry {
    pub id: String,
    pub stats: AgentStats,
    /// The persisted record; held by the agent's live connection task for
    /// its whole life, so two connections of one agent never interleave.
    pub record: tokio::sync::Mutex<AgentRecord>,
}

impl AgentEntry {
    fn new(id: &str, record: AgentRecord) -> Self {
        let stats = AgentStats::default();
        stats.set_totals(&record.totals);
        stats
            .last_seq
            .store(record.cursor.last_seq, Ordering::Relaxed);
        AgentEntry {
            id: id.to_owned(),
            stats,
            record: tokio::sync::Mutex::new(record),
        }
    }

    pub fn summary(&self) -> AgentSummary {
        let s = &self.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AgentSummary {
            id: self.id.clone(),
            batches: get(&s.batches),
            readings: get(&s.readings),
            duplicates: get(&s.duplicates),
            lost_batches: get(&s.lost_batches),
            lost_readings: get(&s.lost_readings),
            wire_bytes: get(&s.wire_bytes),
            udp_bytes: get(&s.udp_bytes),
            udp_sent_bytes: get(&s.udp_sent_bytes),
            last_seq: get(&s.last_seq),
            connected: s.connected.load(Ordering::Relaxed),
            last_seen_ms: s.last_seen_ms.load(Ordering::Relaxed),
        }
    }
}

/// Every agent, the view, the store, and the endpoint's counters.
pub struct Fleet {
    pub view: View,
    pub store: Agents,
    pub endpoint: EndpointStats,
    /// From a batch's last sample to its readings in the view (wall
    /// clocks of agent and supervisor; resent batches count their delay).
    pub ingest_latency: Histogram,
    // Touched on connect and for reports only, never on a round's path.
    agents: Mutex<HashMap<String, Arc<AgentEntry>>>,
}

impl Fleet {
    pub fn new(store: Agents, records: HashMap<String, AgentRecord>) -> Self {
        let agents = records
            .into_iter()
            .map(|(id, rec)| {
                let entry = Arc::new(AgentEntry::new(&id, rec));
                (id, entry)
            })
            .collect();
        Fleet {
            view: View::default(),
            store,
            endpoint: EndpointStats::default(),
            ingest_latency: Histogram::default(),
            agents: Mutex::new(agents),
        }
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AgentEntry>>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The agent's entry, created on first contact.
    pub fn agent(&self, id: &str) -> Arc<AgentEntry> {
        self.agents()
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(AgentEntry::new(id, AgentRecord::default())))
            .clone()
    }

    /// Whether the agent of `id` has ever connected (now or in an earlier
    /// run on the same store).
    pub fn knows(&self, id: &str) -> bool {
        self.agents().contains_key(id)
    }

    /// Counters of every agent, sorted by id.
    pub fn summaries(&self) -> Vec<AgentSummary> {
        let mut v: Vec<_> = self.agents().values().map(|a| a.summary()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}
