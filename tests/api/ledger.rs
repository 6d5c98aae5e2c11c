//! Feedback, statements, metrics and tokens.

use std::time::Duration;

use vcp_store::accounts::Role;

use crate::common::{self, wait_until, FixedInstances};
use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_moves_reputation_and_statements_read_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let control = fleet.supervisor().control.clone();
    let module = fleet.spawn_module(FixedInstances(2.0)).unwrap();
    let feedback_of = || async {
        let (_, m) = get(addr, "/v1/modules/acme-predictive", &t.acme).await;
        m["planes"][0]["reputation"]["feedback"].as_f64()
    };
    wait_connected(&control, "acme-predictive").await;
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let before = loop {
        if let Some(f) = feedback_of().await {
            break f;
        }
        assert!(std::time::Instant::now() < end, "no reputation published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for _ in 0..5 {
        let (status, rec) = call(
            addr,
            "POST",
            "/v1/modules/acme-predictive/feedback",
            Some(&t.acme),
            Some(r#"{"rating": 1, "comment": "scaled too late"}"#),
        )
        .await;
        assert_eq!(status, 201, "{rec}");
        assert_eq!(rec["control_plane"], "vcp-acme");
    }
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = feedback_of().await.unwrap();
        if now < before - 0.2 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "feedback {before} -> {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // At most 10 ratings a minute per account and module.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let body = Some(r#"{"rating": 3}"#);
        let path = "/v1/modules/acme-predictive/feedback";
        statuses.push(call(addr, "POST", path, Some(&t.acme), body).await.0);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429]);
    // Globex may not rate Acme's module, nor may a vendor rate at all.
    let (status, _) = call(
        addr,
        "POST",
        "/v1/modules/acme-predictive/feedback",
        Some(&t.globex),
        Some(r#"{"rating": 5}"#),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        addr,
        "POST",
        "/v1/modules/acme-predictive/feedback",
        Some(&t.vendor),
        Some(r#"{"rating": 5}"#),
    )
    .await;
    assert_eq!(status, 403);

    // Statements: JSON equals the ledger's, CSV has its header.
    control.bill_now(true).await.unwrap();
    module.stop();
    let ledger = vcp_store::ledger::LedgerReader::open(dir.path()).unwrap();
    let want = ledger
        .statement("customer:acme", &vcp_store::ledger::Period::All)
        .unwrap();
    assert!(!want.lines.is_empty());
    let (status, st) = get(addr, "/v1/statements/customer:acme?period=all", &t.acme).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["total"].as_i64().unwrap(), want.total);
    assert_eq!(st["lines"].as_array().unwrap().len(), want.lines.len());
    let (status, csv) = get(
        addr,
        "/v1/statements/customer:acme?period=all&format=csv",
        &t.acme,
    )
    .await;
    assert_eq!(status, 200);
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("account,period,time,module"), "{csv}");
    assert_eq!(csv.lines().count(), want.lines.len() + 1, "{csv}");
    let (status, vst) = get(addr, "/v1/statements/vendor:v?period=all", &t.vendor).await;
    assert_eq!(status, 200, "{vst}");

    // A page at a time: every line once, the whole totals on each page,
    // the next page in `next` and in `Link`.
    let mut pages = 0;
    let (mut path, mut seen) = (
        "/v1/statements/customer:acme?period=all&limit=2".to_owned(),
        0,
    );
    loop {
        let auth = format!("Bearer {}", t.acme);
        let p = path.clone();
        let r = tokio::task::spawn_blocking(move || {
            common::http::request(addr, "GET", &p, &[("Authorization", &auth)], None)
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let page: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(page["total"].as_i64().unwrap(), want.total);
        assert_eq!(
            page["line_count"].as_u64().unwrap(),
            want.lines.len() as u64
        );
        let lines = page["lines"].as_array().unwrap();
        assert!(lines.len() <= 2);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(l["amount"].as_i64().unwrap(), want.lines[seen + i].amount);
        }
        seen += lines.len();
        pages += 1;
        match page["next"].as_str() {
            Some(next) => {
                let link = r.header("link").expect("a Link to the next page");
                assert!(
                    link.contains(&format!("after={next}>; rel=\"next\"")),
                    "{link}"
                );
                path = link[1..link.find('>').unwrap()].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, want.lines.len());
    assert_eq!(pages, want.lines.len().div_ceil(2).max(1));
    let bad = "/v1/statements/customer:acme?period=all&after=nonsense";
    assert_eq!(get(addr, bad, &t.acme).await.0, 400);
    let big = "/v1/statements/customer:acme?period=all&limit=10001";
    assert_eq!(get(addr, big, &t.acme).await.0, 422);
    fleet.stop().await;
}

/// Who calls: no token, an unknown token, then the four accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let control = fleet.supervisor().control.clone();
    wait_until("a round", Duration::from_secs(10), || {
        control.rounds().iter().any(|r| r.rounds > 0)
    })
    .await;
    control.bill_now(false).await.unwrap();
    let (status, text) = get(fleet.api_addr(), "/metrics", &t.operator).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    assert!(text.contains("vcp_"), "{text}");
    let promtool = common::require_tool("promtool", "prometheus");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fleet.stop().await;
}

#[test]
fn token_create_prints_a_token_that_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vcp = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vcp"))
            .args(["token", "create", "--data-dir"])
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let out = vcp(&["--account", "acme", "--role", "customer"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let accounts = vcp_store::Store::open(&data).unwrap().0.accounts();
    let who = accounts.authenticate(&token).unwrap();
    assert_eq!((who.account.as_str(), who.role), ("acme", Role::Customer));

    // The operator's account is "operator"; with a configuration, the
    // account must exist there in that role.
    let out = vcp(&["--account", "acme", "--role", "operator"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"operator\""));
    let config = dir.path().join("sup.toml");
    std::fs::write(&config, "[[customers]]\nid = \"acme\"\n").unwrap();
    let config = config.to_str().unwrap();
    let out = vcp(&[
        "--account",
        "globex",
        "--role",
        "customer",
        "--config",
        config,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no customer \"globex\""));
    assert!(vcp(&[
        "--account",
        "acme",
        "--role",
        "customer",
        "--config",
        config
    ])
    .status
    .success());
}
