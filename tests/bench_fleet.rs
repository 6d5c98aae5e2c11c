//! `vcp bench-fleet` end to end, briefly: 200 SIMULATED hosts against a
//! real supervisor process for 10 s. Only correctness is asserted (every
//! host connected, nothing lost or taken twice, rounds ran); the timing
//! figures belong to longer runs on a quiet machine.

use std::process::Command;

#[test]
fn two_hundred_simulated_hosts_connect_and_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    let out = Command::new(env!("CARGO_BIN_EXE_vcp"))
        .args([
            "bench-fleet",
            "--hosts",
            "200",
            "--duration",
            "10",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SIMULATED fleet: 200 hosts"), "{stdout}");
    let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(f["simulated"], true);
    assert_eq!(f["hosts_connected"], 200, "{f}");
    assert_eq!(f["lost_batches"], 0, "{f}");
    assert_eq!(f["duplicate_batches"], 0, "{f}");
    // ~50 series a host, one sample a second: most of 10,000 readings/s.
    let rate = f["readings_per_second"].as_f64().unwrap();
    let series = f["series_per_host"].as_f64().unwrap();
    assert!(rate > 0.5 * 200.0 * series, "{f}");
    assert!(
        f["supervisor_cpu_ms_per_host_second"].as_f64().unwrap() > 0.0,
        "{f}"
    );
    assert!(
        f["supervisor_rss_kb_per_host"].as_f64().unwrap() > 0.0,
        "{f}"
    );
    assert!(f["ingest_latency_ms_p99"].as_f64().is_some(), "{f}");
    let rounds = f["rounds"].as_object().unwrap();
    assert!(
        rounds.values().all(|n| n.as_u64().unwrap() > 0),
        "every kind ran rounds: {f}"
    );
}
