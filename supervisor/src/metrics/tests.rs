use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::SupervisorFile;
use crate::control::Control;
use crate::fleet::Fleet;
use vcp_core::histogram::Histogram;
use vcp_store::ledger::{Charge, Ledger};
use vcp_store::Store;

/// Runs `promtool check metrics` on `text`; the error says what is wrong.
fn promtool(text: &str) -> Result<(), String> {
    use std::io::Write;
    let bin = ["promtool", "/usr/bin/promtool"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or(
            "promtool not found on PATH nor at /usr/bin/promtool: install the Debian \
             package `prometheus` (it provides promtool) to run this test",
        )?;
    let mut child = std::process::Command::new(bin)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {bin}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .map_err(|e| format!("writing to promtool: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for promtool: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics ({}):\n{said}", out.status))
    }
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const CONFIG: &str = r#"
evaluation_window_s = 1
[[service_sets]]
id = "web"
customer = "operator"
instances = { min = 1, max = 4, initial = 2 }
members = [{ host = "host-1" }]
[[feedback]]
control_plane = "default"
module = "default-autoscaling"
rating = 4.0
[solicitation.allocation]
cadence_ms = 40
deadline_ms = 10
[solicitation.autoscaling]
cadence_ms = 40
deadline_ms = 10
[solicitation.spread]
cadence_ms = 40
deadline_ms = 10
[solicitation.load_balancing]
cadence_ms = 40
deadline_ms = 10
"#;

fn charge(key: &str, debit: &str, credit: &str, amount: i64) -> Charge {
    Charge {
        key: key.into(),
        at_ms: 1_700_000_000_000,
        debit: debit.into(),
        credit: credit.into(),
        amount,
        module: "default-autoscaling".into(),
        control_plane: "default".into(),
        kind: "solicitation".into(),
        description: "test".into(),
        quantity: 1.0,
        unit_price: amount,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_a_running_control_and_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let (store, records) = Store::open(dir.path()).unwrap();
    let fleet = Arc::new(Fleet::new(store.agents(), records));
    let file = SupervisorFile::parse(CONFIG, Path::new("metrics-test.toml")).unwrap();
    let control = Control::start(file, fleet.clone(), None, Vec::new(), &|_| Vec::new());
    let agent = fleet.agent("host-1");
    agent.stats.batches.store(7, Ordering::Relaxed);
    agent.stats.readings.store(700, Ordering::Relaxed);
    agent.stats.duplicates.store(2, Ordering::Relaxed);
    agent.stats.wire_bytes.store(12_345, Ordering::Relaxed);
    agent.stats.connected.store(true, Ordering::Relaxed);
    fleet.agent("host \"2\"");

    let ledger_dir = tempfile::tempdir().unwrap();
    let (ledger, reader) = Ledger::open(ledger_dir.path()).unwrap();
    ledger
        .record_durable(vec![
            charge("a", "customer:acme", "operator", 1_500_000),
            charge("b", "operator", "vendor:v", 250_000),
        ])
        .await
        .unwrap();
    let ledger_figures = LedgerMetrics::read(&reader).unwrap();

    // Let rounds run and the judge publish (every 500 ms), then freeze
    // everything so that the reports and the rendering agree.
    let rounds = |c: &Control| c.rounds().iter().map(|r| r.rounds).min().unwrap_or(0);
    let start = std::time::Instant::now();
    while rounds(&control) < 3 || control.judge.report.load().reputation.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "rounds or reputation did not come"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = render(&*control, Some(&ledger_figures));
    let om = render_openmetrics(&*control, Some(&ledger_figures));
    println!("{text}");

    // (a) chosen values.
    for r in control.rounds() {
        let kind = r.kind.as_str();
        let rounds = sample(&text, &format!("vcp_rounds_total{{kind=\"{kind}\"}}"));
        assert_eq!(rounds, Some(r.rounds as f64), "rounds of {kind}");
        assert!(r.rounds >= 3, "{kind}: {} rounds", r.rounds);
        let decisions = sample(
            &text,
            &format!("vcp_round_decisions_total{{kind=\"{kind}\"}}"),
        );
        assert_eq!(decisions, Some(r.decisions as f64), "decisions of {kind}");
        let count = sample(
            &text,
            &format!("vcp_round_own_time_seconds_count{{kind=\"{kind}\"}}"),
        );
        assert_eq!(count, Some(r.rounds as f64), "histogram count of {kind}");
        let inf = sample(
            &text,
            &format!("vcp_round_own_time_seconds_bucket{{le=\"+Inf\",kind=\"{kind}\"}}"),
        );
        assert_eq!(inf, Some(r.rounds as f64), "+Inf bucket of {kind}");
    }
    for p in control.policy_counts.summary() {
        let v = sample(
            &text,
            &format!("vcp_mediation_decisions_total{{policy=\"{}\"}}", p.policy),
        );
        assert_eq!(v, Some(p.decisions as f64), "policy {}", p.policy);
    }
    assert_eq!(sample(&text, "vcp_agents_connected"), Some(1.0));
    assert_eq!(sample(&text, "vcp_agents_known"), Some(2.0));
    assert_eq!(
        sample(&text, "vcp_ingest_batches_total{host=\"host-1\"}"),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, "vcp_ingest_readings_total{host=\"host-1\"}"),
        Some(700.0)
    );
    assert_eq!(
        sample(&text, "vcp_ingest_duplicate_batches_total{host=\"host-1\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "vcp_ingest_wire_bytes_total{host=\"host \\\"2\\\"\"}"
        ),
        Some(0.0),
        "label values are escaped"
    );
    let modules = control.modules();
    let m = modules
        .iter()
        .find(|m| m.id == "default-autoscaling")
        .expect("the default autoscaler");
    let ml = "{module=\"default-autoscaling\",control_plane=\"default\",kind=\"autoscaling\"}";
    assert_eq!(
        sample(&text, &format!("vcp_module_solicitations_total{ml}")),
        Some(m.solicitations as f64)
    );
    assert!(m.solicitations > 0);
    assert_eq!(
        sample(&text, &format!("vcp_module_requests_total{ml}")),
        Some(m.requests as f64)
    );
    assert_eq!(
        sample(
            &text,
            &format!("vcp_module_supervisor_cpu_seconds_total{ml}")
        ),
        Some(m.cpu_ns as f64 / 1e9)
    );
    let report = control.judge.report.load();
    let rep = report
        .reputation
        .iter()
        .find(|r| r.module == "default-autoscaling")
        .expect("reputation of the default autoscaler");
    let rl = "{module=\"default-autoscaling\",control_plane=\"default\"}";
    assert_eq!(
        sample(&text, &format!("vcp_reputation_score{rl}")),
        Some(rep.components.score)
    );
    assert_eq!(
        sample(
            &text,
            "vcp_reputation_component{module=\"default-autoscaling\",\
             control_plane=\"default\",component=\"feedback\"}"
        ),
        Some(rep.components.feedback)
    );
    assert_eq!(sample(&text, "vcp_ledger_entries_total"), Some(2.0));
    assert_eq!(
        sample(&text, "vcp_ledger_debits_microunits_total"),
        Some(1_750_000.0)
    );
    assert_eq!(
        sample(
            &text,
            "vcp_ledger_account_balance_microunits{account=\"customer:acme\"}"
        ),
        Some(1_500_000.0)
    );
    assert_eq!(
        sample(
            &text,
            "vcp_ledger_account_balance_microunits{account=\"vendor:v\"}"
        ),
        Some(-250_000.0)
    );
    assert!(text.contains("# TYPE vcp_rounds_total counter\n"));
    assert!(om.contains("# TYPE vcp_rounds counter\n") && om.ends_with("# EOF\n"));
    assert!(!render(&*control, None).contains("vcp_ledger"));

    // (b) the exposition is valid and lint-clean.
    if let Err(e) = promtool(&text) {
        panic!("{e}");
    }
    ledger.flush().await.unwrap();
}

#[test]
fn promtool_is_there_and_complains() {
    // Guards the test above: promtool must flag a bad exposition.
    let bad = "# TYPE vcp_x counter\nvcp_x 1\n";
    assert!(promtool(bad).is_err());
}

#[test]
fn round_histogram_has_prometheus_buckets() {
    let h = Histogram::default();
    assert_eq!(round_histogram(&h).count, 0);
    for _ in 0..10 {
        h.record_us(100);
    }
    for _ in 0..5 {
        h.record_us(1_000);
    }
    h.record_us(1_000_000);
    let r = round_histogram(&h);
    assert_eq!(r.count, 16);
    assert_eq!(r.buckets.iter().map(|(_, c)| c).sum::<u64>(), 16);
    let upto = |le: f64| -> u64 {
        r.buckets
            .iter()
            .filter(|(b, _)| *b <= le)
            .map(|(_, c)| c)
            .sum()
    };
    assert_eq!(upto(50e-6), 0);
    assert_eq!(upto(250e-6), 10);
    assert_eq!(upto(2.5e-3), 15);
    assert_eq!(upto(5.0), 16);
    assert!(
        (r.sum - (10.0 * 100e-6 + 5.0 * 1e-3 + 1.0)).abs() < 1e-9,
        "{}",
        r.sum
    );
}

#[test]
fn openmetrics_counters_get_their_classic_names() {
    let mut f = Families::default();
    f.counter("vcp_x_total", "X things.")
        .add(labels(&[("kind", "a\"b\\c\nd")]), 3u64);
    f.gauge("vcp_y_seconds", "Y.").add(Vec::new(), 0.5);
    f.gauge("vcp_empty", "Never written: no samples.");
    f.gauge("vcp_nan", "Non-finite values are left out.")
        .add(Vec::new(), f64::NAN);
    let om = encode_openmetrics(f);
    assert_eq!(
        to_text_format(&om),
        "# HELP vcp_x_total X things.\n\
         # TYPE vcp_x_total counter\n\
         vcp_x_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n\
         # HELP vcp_y_seconds Y.\n\
         # TYPE vcp_y_seconds gauge\n\
         vcp_y_seconds 0.5\n"
    );
}
