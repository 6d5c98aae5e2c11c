//! The figures of a SIMULATED fleet run, between two scrapes of the
//! supervisor's `/metrics` and two readings of its process.

use std::collections::BTreeMap;

use serde::Serialize;

use super::host::Profile;
use super::scrape::{quantile, Scrape};

/// Where a figure comes from at one instant.
pub struct Mark {
    pub scrape: Scrape,
    /// The bench's own CPU (the SIMULATED hosts), seconds.
    pub bench_cpu_seconds: f64,
    pub at: std::time::Instant,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Always true: the hosts are SIMULATED (the supervisor is real).
    pub simulated: bool,
    pub profile: Profile,
    pub hosts: usize,
    pub series_per_host: usize,
    pub seconds: f64,
    pub hosts_connected: u64,
    pub readings_per_second: f64,
    pub supervisor_cpu_ms_per_host_second: f64,
    pub readings_per_supervisor_cpu_second: f64,
    pub supervisor_rss_kb_per_host: f64,
    /// UDP bytes per reading from the hosts and back, as the supervisor's
    /// QUIC connections counted them.
    pub udp_bytes_per_reading_upstream: f64,
    pub udp_bytes_per_reading_downstream: f64,
    /// What the SIMULATED hosts cost the bench process (same machine).
    pub simulator_cpu_ms_per_host_second: f64,
    /// Bucket bounds of the supervisor's latency histogram.
    pub ingest_latency_ms_p50: Option<f64>,
    pub ingest_latency_ms_p99: Option<f64>,
    pub rounds: BTreeMap<String, u64>,
    pub deadline_misses: BTreeMap<String, u64>,
    pub lost_batches: u64,
    pub duplicate_batches: u64,
}

const LATENCY: &str = "vcp_ingest_latency_seconds";

fn per_kind(before: &Scrape, after: &Scrape, name: &str) -> BTreeMap<String, u64> {
    let b = before.by(name, "kind");
    after
        .by(name, "kind")
        .into_iter()
        .map(|(k, v)| {
            let d = v - b.get(&k).copied().unwrap_or(0.0);
            (k, d.max(0.0) as u64)
        })
        .collect()
}

impl Figures {
    pub fn between(
        profile: Profile,
        hosts: usize,
        series_per_host: usize,
        from: &Mark,
        to: &Mark,
    ) -> Figures {
        let seconds = to.at.duration_since(from.at).as_secs_f64().max(1e-9);
        let delta = |name: &str| (to.scrape.sum(name) - from.scrape.sum(name)).max(0.0);
        let readings = delta("vcp_ingest_readings_total");
        let cpu = delta("process_cpu_seconds_total");
        let rss_kb = to.scrape.sum("process_resident_memory_bytes") / 1024.0;
        let connected = to.scrape.sum("vcp_agents_connected") as u64;
        let (b, a) = (from.scrape.buckets(LATENCY), to.scrape.buckets(LATENCY));
        let ms = |q| quantile(&b, &a, q).map(|s| s * 1e3);
        Figures {
            simulated: true,
            profile,
            hosts,
            series_per_host,
            seconds,
            hosts_connected: connected,
            readings_per_second: readings / seconds,
            supervisor_cpu_ms_per_host_second: cpu * 1e3 / (connected.max(1) as f64 * seconds),
            readings_per_supervisor_cpu_second: if cpu > 0.0 { readings / cpu } else { 0.0 },
            supervisor_rss_kb_per_host: rss_kb / connected.max(1) as f64,
            udp_bytes_per_reading_upstream: delta("vcp_ingest_udp_received_bytes_total")
                / readings.max(1.0),
            udp_bytes_per_reading_downstream: delta("vcp_ingest_udp_sent_bytes_total")
                / readings.max(1.0),
            simulator_cpu_ms_per_host_second: (to.bench_cpu_seconds - from.bench_cpu_seconds)
                .max(0.0)
                * 1e3
                / (connected.max(1) as f64 * seconds),
            ingest_latency_ms_p50: ms(0.5),
            ingest_latency_ms_p99: ms(0.99),
            rounds: per_kind(&from.scrape, &to.scrape, "vcp_rounds_total"),
            deadline_misses: per_kind(&from.scrape, &to.scrape, "vcp_round_deadline_misses_total"),
            lost_batches: to.scrape.sum("vcp_ingest_lost_batches_total") as u64,
            duplicate_batches: to.scrape.sum("vcp_ingest_duplicate_batches_total") as u64,
        }
    }

    /// One line of progress.
    pub fn line(&self) -> String {
        // Sample times are whole milliseconds: below one, say so.
        let ms = |v: Option<f64>| match v {
            None => "-".into(),
            Some(v) if v < 1.0 => "<1".into(),
            Some(v) => format!("≤{v:.1}"),
        };
        format!(
            "{:>6.0} s  hosts {:>6}  readings/s {:>9.0}  cpu ms/host-s {:>6.3}  readings/cpu-s {:>9.0}  rss KB/host {:>6.0}  latency ms p50 {} p99 {}  udp B/reading up {:.2} down {:.2}  lost {}  dup {}  (simulator cpu ms/host-s {:.3})",
            self.seconds,
            self.hosts_connected,
            self.readings_per_second,
            self.supervisor_cpu_ms_per_host_second,
            self.readings_per_supervisor_cpu_second,
            self.supervisor_rss_kb_per_host,
            ms(self.ingest_latency_ms_p50),
            ms(self.ingest_latency_ms_p99),
            self.udp_bytes_per_reading_upstream,
            self.udp_bytes_per_reading_downstream,
            self.lost_batches,
            self.duplicate_batches,
            self.simulator_cpu_ms_per_host_second,
        )
    }

    /// The rounds of every kind and their deadline misses.
    pub fn rounds_line(&self) -> String {
        let kinds: Vec<String> = self
            .rounds
            .iter()
            .map(|(k, n)| {
                let miss = self.deadline_misses.get(k).copied().unwrap_or(0);
                format!("{k} {n} ({miss} missed)")
            })
            .collect();
        format!("rounds: {}", kinds.join(", "))
    }
}
