//! What a scrape reads: ingest, rounds, modules, configurations, the
//! judge's report and the ledger's figures.

use std::sync::atomic::Ordering::Relaxed;

use super::family::*;
use super::{LedgerMetrics, ROUND_BUCKETS_US};
use crate::overview::Overview;
use vcp_core::histogram::Histogram;
use vcp_core::stats::ModuleSummary;

/// `h` as a Prometheus histogram in seconds with [`ROUND_BUCKETS_US`]
/// bounds. A sample counts toward `le` when its whole 5 % bucket lies at or
/// below `le` (so a count may sit one bound higher than exact); the sum is
/// exact.
pub(super) fn round_histogram(h: &Histogram) -> HistogramValue {
    let steps = h.buckets();
    let count: u64 = steps.iter().map(|(_, c)| c).sum();
    let sum_us = h.sum_us() as f64;
    let mut buckets = Vec::with_capacity(ROUND_BUCKETS_US.len() + 1);
    let mut below = 0;
    for le in ROUND_BUCKETS_US {
        let cumulative: u64 = steps.iter().filter(|(b, _)| *b <= le).map(|(_, c)| c).sum();
        buckets.push((le as f64 / 1e6, cumulative - below));
        below = cumulative;
    }
    buckets.push((f64::MAX, count - below));
    HistogramValue {
        sum: sum_us / 1e6,
        count,
        buckets,
    }
}

pub(super) fn us(v: u64) -> f64 {
    v as f64 / 1e6
}

pub(super) fn ingest(f: &mut Families, control: &dyn Overview) {
    let agents = control.fleet().summaries();
    let host = |id: &str| labels(&[("host", id)]);
    f.gauge(
        "vcp_agents_connected",
        "Agents with a live connection to the supervisor.",
    )
    .add(
        Vec::new(),
        agents.iter().filter(|a| a.connected).count() as u64,
    );
    f.histogram(
        "vcp_ingest_latency_seconds",
        "From a batch's last sample to its readings in the fleet view (agent's and supervisor's wall clocks; a batch resent after an outage counts its delay). From a 5 % resolution histogram: a batch counts toward le when its whole bucket is at or below le; the sum is exact.",
    )
    .push((Vec::new(), round_histogram(&control.fleet().ingest_latency)));
    f.gauge(
        "vcp_agents_known",
        "Agents the supervisor has a record of, connected or not.",
    )
    .add(Vec::new(), agents.len() as u64);
    type Get = fn(&crate::fleet::AgentSummary) -> u64;
    let counters: [(&'static str, &'static str, Get); 8] = [
        (
            "vcp_ingest_batches_total",
            "Batches applied to the view and stored, per agent host (exactly once).",
            |a| a.batches,
        ),
        (
            "vcp_ingest_readings_total",
            "Readings in the applied batches, per agent host.",
            |a| a.readings,
        ),
        (
            "vcp_ingest_duplicate_batches_total",
            "Batches received again after being applied (acknowledged, discarded), per agent host.",
            |a| a.duplicates,
        ),
        (
            "vcp_ingest_lost_batches_total",
            "Batches the agent could not keep (spool overflow, disk failure) and said so, per agent host.",
            |a| a.lost_batches,
        ),
        (
            "vcp_ingest_lost_readings_total",
            "Readings in the batches the agent could not keep, per agent host.",
            |a| a.lost_readings,
        ),
        (
            "vcp_ingest_wire_bytes_total",
            "Batch frame bytes received, duplicates included, per agent host.",
            |a| a.wire_bytes,
        ),
        (
            "vcp_ingest_udp_received_bytes_total",
            "UDP bytes received on the agent's connections since the supervisor started, per agent host.",
            |a| a.udp_bytes,
        ),
        (
            "vcp_ingest_udp_sent_bytes_total",
            "UDP bytes sent on the agent's connections (acknowledgements, configurations, QUIC's own) since the supervisor started, per agent host.",
            |a| a.udp_sent_bytes,
        ),
    ];
    for (name, help, get) in counters {
        let fam = f.counter(name, help);
        for a in &agents {
            fam.add(host(&a.id), get(a));
        }
    }
    let e = &control.fleet().endpoint;
    let fam = f.counter(
        "vcp_endpoint_refused_total",
        "Connection attempts the QUIC endpoint refused or made retry, by reason: connections (max_connections live), handshakes (max_handshakes in progress), retry (address validation under load), failed (handshake failed, timed out or named no identity), enrol_busy (max_in_flight enrolments served), enrol_source (an address past its enrolment attempts).",
    );
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    for (reason, a) in [
        ("connections", &e.refused_connections),
        ("handshakes", &e.refused_handshakes),
        ("retry", &e.retries),
        ("failed", &e.failed_handshakes),
        ("enrol_busy", &e.enrol_busy),
        ("enrol_source", &e.enrol_source),
    ] {
        fam.add(labels(&[("reason", reason)]), get(a));
    }
    let fam = f.counter(
        "vcp_queue_dropped_total",
        "Messages dropped because a bounded queue between tasks was full, by queue (judge, dispatch); store: times ingest waited for the store writer.",
    );
    for (queue, n) in [
        ("judge", get(&control.judge().queue.dropped)),
        ("dispatch", get(&control.dispatch().queue.dropped)),
        ("store", control.fleet().store.full()),
    ] {
        fam.add(labels(&[("queue", queue)]), n);
    }
    let fam = f.gauge(
        "vcp_agent_connected",
        "Whether the agent has a live connection (1) or not (0).",
    );
    for a in &agents {
        fam.add(host(&a.id), u64::from(a.connected));
    }
    let fam = f.gauge(
        "vcp_agent_last_sequence",
        "Highest batch sequence number applied for the agent.",
    );
    for a in &agents {
        fam.add(host(&a.id), a.last_seq);
    }
    let fam = f.gauge(
        "vcp_agent_last_seen_timestamp_seconds",
        "Unix time of the last frame received from the agent since the supervisor started.",
    );
    for a in agents.iter().filter(|a| a.last_seen_ms > 0) {
        fam.add(host(&a.id), a.last_seen_ms as f64 / 1e3);
    }
}

pub(super) fn rounds(f: &mut Families, control: &dyn Overview) {
    let kinds: Vec<_> = control
        .kinds()
        .iter()
        .map(|(k, s)| (labels(&[("kind", k.as_str())]), s.summary(*k), s))
        .collect();
    type Get = fn(&crate::solicit::KindSummary) -> u64;
    let counters: [(&'static str, &'static str, Get); 4] = [
        (
            "vcp_rounds_total",
            "Solicitation rounds completed, per module kind.",
            |s| s.rounds,
        ),
        (
            "vcp_round_responses_total",
            "Module answers received by the round's deadline, per module kind.",
            |s| s.responses,
        ),
        (
            "vcp_round_deadline_misses_total",
            "Solicitations not answered by the round's deadline, per module kind.",
            |s| s.deadline_misses,
        ),
        (
            "vcp_round_decisions_total",
            "Mediated decisions put in force, per module kind.",
            |s| s.decisions,
        ),
    ];
    for (name, help, get) in counters {
        let fam = f.counter(name, help);
        for (l, s, _) in &kinds {
            fam.add(l.clone(), get(s));
        }
    }
    type Seconds =
        fn(&dyn Overview, &crate::solicit::KindSummary, &crate::solicit::KindStats) -> f64;
    let gauges: [(&'static str, &'static str, Seconds); 5] = [
        (
            "vcp_round_last_duration_seconds",
            "The last round's time from its start to its decisions in force, per module kind.",
            |_, _, s| us(s.last_round_us.load(Relaxed)),
        ),
        (
            "vcp_round_max_duration_seconds",
            "The longest round since the supervisor started, per module kind.",
            |_, k, _| us(k.max_round_us),
        ),
        (
            "vcp_round_last_own_time_seconds",
            "The supervisor's own work in the last round (its time less the wait for answers), per module kind.",
            |_, _, s| us(s.last_own_us.load(Relaxed)),
        ),
        (
            "vcp_round_cadence_seconds",
            "Configured interval between rounds, per module kind.",
            |c, k, _| c.file().cadence(k.kind).cadence_ms as f64 / 1e3,
        ),
        (
            "vcp_round_deadline_seconds",
            "Configured time modules have to answer a round, per module kind.",
            |c, k, _| c.file().cadence(k.kind).deadline_ms as f64 / 1e3,
        ),
    ];
    for (name, help, get) in gauges {
        let fam = f.gauge(name, help);
        for (l, k, s) in &kinds {
            fam.add(l.clone(), get(control, k, s));
        }
    }
    let hist = f.histogram(
        "vcp_round_own_time_seconds",
        "The supervisor's own work per round (admission, mediation; not the wait for answers), per module kind. From a 5 % resolution histogram: a round counts toward le when its whole bucket is at or below le; the sum is exact.",
    );
    for (l, _, s) in &kinds {
        hist.push((l.clone(), round_histogram(&s.own)));
    }
    let fam = f.counter(
        "vcp_mediation_decisions_total",
        "Decisions taken per mediation policy.",
    );
    for p in control.policy_counts().summary() {
        fam.add(labels(&[("policy", p.policy)]), p.decisions);
    }
}

pub(super) fn modules(f: &mut Families, control: &dyn Overview) {
    let modules = control.modules();
    let id = |m: &ModuleSummary| {
        labels(&[
            ("module", &m.id),
            ("control_plane", &m.control_plane),
            ("kind", m.kind.as_str()),
        ])
    };
    let fam = f.gauge(
        "vcp_module_info",
        "Module instances ever registered (one module serving one control plane), always 1, with their customer, vendor (empty for the operator's), remote and shadow flags.",
    );
    for m in &modules {
        let mut l = id(m);
        l.extend(labels(&[
            ("customer", &m.customer),
            ("vendor", m.vendor.as_deref().unwrap_or("")),
            ("remote", if m.remote { "true" } else { "false" }),
            ("shadow", if m.shadow { "true" } else { "false" }),
        ]));
        fam.add(l, 1u64);
    }
    let fam = f.gauge(
        "vcp_module_connected",
        "Whether the module instance is active (1) or has left (0).",
    );
    for m in &modules {
        fam.add(id(m), u64::from(m.connected));
    }
    type Get = fn(&ModuleSummary) -> u64;
    let counters: [(&'static str, &'static str, Get); 12] = [
        (
            "vcp_module_solicitations_total",
            "Rounds the module instance was solicited in.",
            |m| m.solicitations,
        ),
        (
            "vcp_module_responses_total",
            "Answers of the module instance that arrived by the deadline.",
            |m| m.responses,
        ),
        (
            "vcp_module_deadline_misses_total",
            "Rounds the module instance did not answer in time (late, hung or busy).",
            |m| m.deadline_misses,
        ),
        (
            "vcp_module_busy_rounds_total",
            "Rounds skipped because the module instance was still busy with an older one.",
            |m| m.busy,
        ),
        (
            "vcp_module_faults_total",
            "Panics, errors and disconnects of the module instance.",
            |m| m.faults,
        ),
        (
            "vcp_module_requests_total",
            "Requests (proposals) of the module instance, late ones included.",
            |m| m.requests,
        ),
        (
            "vcp_module_late_requests_total",
            "Requests of the module instance that arrived after their round closed.",
            |m| m.late,
        ),
        (
            "vcp_module_rejected_requests_total",
            "Requests of the module instance rejected by admission (over quota included).",
            |m| m.rejected,
        ),
        (
            "vcp_module_over_quota_requests_total",
            "Requests of the module instance past its quota per round (rejected uncounted, charged to its vendor).",
            |m| m.over_quota,
        ),
        (
            "vcp_module_protocol_errors_total",
            "Sessions of the module closed for breaking the protocol or a limit (an unsolicited answer, a frame flood); never billed.",
            |m| m.protocol_errors,
        ),
        (
            "vcp_module_clipped_requests_total",
            "Requests of the module instance clipped to a constraint by admission.",
            |m| m.clipped,
        ),
        (
            "vcp_module_response_bytes_total",
            "Wire bytes of the module instance's requests.",
            |m| m.bytes,
        ),
    ];
    for (name, help, get) in counters {
        let fam = f.counter(name, help);
        for m in &modules {
            fam.add(id(m), get(m));
        }
    }
    let fam = f.counter(
        "vcp_module_supervisor_cpu_seconds_total",
        "Supervisor CPU time spent admitting and mediating the module instance's requests.",
    );
    for m in &modules {
        fam.add(id(m), m.cpu_ns as f64 / 1e9);
    }
}

pub(super) fn configurations(f: &mut Families, control: &dyn Overview) {
    let counts = control.dispatch().counts.load();
    type Get = fn(&crate::dispatch::DeliveryCounts) -> u64;
    let counters: [(&'static str, &'static str, Get); 5] = [
        (
            "vcp_configurations_sent_total",
            "Configurations sent to agents, per deciding module instance.",
            |c| c.sent,
        ),
        (
            "vcp_configurations_applied_total",
            "Configurations the agents reported applied, per deciding module instance.",
            |c| c.applied,
        ),
        (
            "vcp_configurations_failed_total",
            "Configurations the agents reported failed, per deciding module instance.",
            |c| c.failed,
        ),
        (
            "vcp_configurations_expired_total",
            "Configurations that expired undelivered (host offline past the TTL), per deciding module instance.",
            |c| c.expired,
        ),
        (
            "vcp_configurations_superseded_total",
            "Configurations replaced by a newer decision before delivery, per deciding module instance.",
            |c| c.superseded,
        ),
    ];
    for (name, help, get) in counters {
        let fam = f.counter(name, help);
        for c in counts.iter() {
            fam.add(
                labels(&[("module", &c.module), ("control_plane", &c.control_plane)]),
                get(c),
            );
        }
    }
}

pub(super) fn judge(f: &mut Families, control: &dyn Overview) {
    let report = control.judge().report.load();
    let id = |module: &str, plane: &str| labels(&[("module", module), ("control_plane", plane)]);
    let fam = f.gauge(
        "vcp_reputation_score",
        "Reputation of the module instance, in [0, 1]: the weighted mean of its components.",
    );
    for r in &report.reputation {
        fam.add(id(&r.module, &r.control_plane), r.components.score);
    }
    type Parts = fn(&vcp_core::reputation::Components) -> [f64; 4];
    let per_component: [(&'static str, &'static str, Parts); 2] = [
        (
            "vcp_reputation_component",
            "A reputation component of the module instance, in [0, 1] (the prior without evidence).",
            |c| [c.feedback, c.goal, c.deadline, c.efficiency],
        ),
        (
            "vcp_reputation_evidence_weight",
            "Decayed count of observations behind a reputation component of the module instance.",
            |c| {
                let e = &c.evidence;
                [e.feedback, e.goal, e.deadline, e.efficiency]
            },
        ),
    ];
    for (name, help, parts) in per_component {
        let fam = f.gauge(name, help);
        for r in &report.reputation {
            let values = parts(&r.components);
            for (component, v) in ["feedback", "goal", "deadline", "efficiency"]
                .into_iter()
                .zip(values)
            {
                let mut l = id(&r.module, &r.control_plane);
                l.push(("component", component.to_owned()));
                fam.add(l, v);
            }
        }
    }
    let fam = f.counter(
        "vcp_reputation_ignored_evidence_total",
        "Evidence rejected for the module instance (invalid ratings, non-finite values).",
    );
    for r in &report.reputation {
        fam.add(id(&r.module, &r.control_plane), r.components.ignored);
    }
    let fam = f.gauge(
        "vcp_contribution_cumulative",
        "Cumulative contribution credited to the module instance for goal outcomes.",
    );
    for c in &report.contribution {
        fam.add(id(&c.module, &c.control_plane), c.cumulative);
    }
    let fam = f.gauge(
        "vcp_contribution_reward_share_ratio",
        "The module instance's share of the reward, its cumulative contribution normalised.",
    );
    for c in &report.contribution {
        fam.add(id(&c.module, &c.control_plane), c.reward_share);
    }
    let fam = f.counter(
        "vcp_goal_windows_total",
        "Evaluation windows in which the service set's goals were measured.",
    );
    for g in &report.goals {
        fam.add(labels(&[("service_set", &g.service_set)]), g.windows);
    }
    let fam = f.counter(
        "vcp_goal_windows_met_total",
        "Evaluation windows in which the service set met its goals.",
    );
    for g in &report.goals {
        fam.add(labels(&[("service_set", &g.service_set)]), g.met);
    }
}

pub(super) fn ledger_metrics(f: &mut Families, l: &LedgerMetrics) {
    f.counter(
        "vcp_ledger_entries_total",
        "Charges recorded in the ledger.",
    )
    .add(Vec::new(), l.totals.entries);
    f.counter(
        "vcp_ledger_debits_microunits_total",
        "Sum of what every account paid, in micro-units of the ledger's currency.",
    )
    .add(Vec::new(), l.totals.total_debits);
    f.counter(
        "vcp_ledger_credits_microunits_total",
        "Sum of what every account was paid, in micro-units of the ledger's currency (equals the debits).",
    )
    .add(Vec::new(), l.totals.total_credits);
    let fam = f.gauge(
        "vcp_ledger_account_balance_microunits",
        "What the account paid minus what it was paid, all time, in micro-units (positive: it owes).",
    );
    for (account, balance) in &l.balances {
        fam.add(labels(&[("account", account)]), *balance);
    }
}
