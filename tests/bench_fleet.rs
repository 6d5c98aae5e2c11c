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
    // The supervisor's own cost, and QUIC carrying the batches up and the
    // acknowledgements down.
    for figure in [
        "supervisor_cpu_ms_per_host_second",
        "supervisor_rss_kb_per_host",
        "udp_bytes_per_reading_upstream",
        "udp_bytes_per_reading_downstream",
    ] {
        assert!(f[figure].as_f64().unwrap() > 0.0, "{figure}: {f}");
    }
    assert!(f["ingest_latency_ms_p99"].as_f64().is_some(), "{f}");
    let rounds = f["rounds"].as_object().unwrap();
    assert!(
        rounds.values().all(|n| n.as_u64().unwrap() > 0),
        "every kind ran rounds: {f}"
    );
}

/// `--supervisor`: a supervisor started apart, with certificates from
/// `vcp certs` and a token from `vcp token create`; the bench issues its
/// hosts' certificates from that CA and reads that supervisor's figures.
#[test]
fn bench_fleet_targets_a_supervisor_it_did_not_start() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let vcp = env!("CARGO_BIN_EXE_vcp");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(Command::new(vcp)
        .args(["certs", "--out", d])
        .output()
        .unwrap());
    let store = dir.path().join("store");
    let token = ok(Command::new(vcp)
        .args([
            "token",
            "create",
            "--account",
            "operator",
            "--role",
            "operator",
        ])
        .arg("--data-dir")
        .arg(&store)
        .output()
        .unwrap());
    let mut supervisor = Command::new(vcp)
        .args(["bench-fleet-supervisor", "--dir", d])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(supervisor.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"ready"), "{line:?}");
    let json = dir.path().join("figures.json");
    let out = Command::new(vcp)
        .args(["bench-fleet", "--hosts", "20", "--duration", "5"])
        .args(["--supervisor", words[1], "--api", words[2]])
        .args(["--certs", d, "--token", token.trim(), "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = ok(out);
    assert!(stdout.contains(&format!("(at {})", words[1])), "{stdout}");
    let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(f["hosts_connected"], 20, "{f}");
    assert_eq!(f["lost_batches"], 0, "{f}");
    assert_eq!(f["duplicate_batches"], 0, "{f}");
    assert!(
        f["supervisor_rss_kb_per_host"].as_f64().unwrap() > 0.0,
        "{f}"
    );
    drop(supervisor.stdin.take());
    assert!(supervisor.wait().unwrap().success());
}
