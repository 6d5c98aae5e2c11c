//! A ledger writer killed with SIGKILL mid-stream, then reopened: every
//! charge it reported durably committed is there, none is there twice, and
//! replaying charges by their keys changes nothing. The writer runs as a
//! child process: this test binary re-executed with `child_ledger` selected.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vcp_store::ledger::{Charge, Ledger, LedgerReader};

const CHILD: &str = "VCP_TEST_CHILD_LEDGER";
const BATCH: u64 = 50;
const PREFIX: &str = "committed ";

/// The i-th charge the child records; deterministic so the parent can check.
fn charge(i: u64) -> Charge {
    let customer = ["customer:acme", "customer:globex"][(i % 2) as usize];
    Charge {
        key: format!("crash-{i}"),
        at_ms: 1_795_687_200_000 + i as i64,
        debit: customer.into(),
        credit: "vendor:predictive-labs".into(),
        amount: amount(i),
        module: "predictive".into(),
        control_plane: "default".into(),
        kind: "solicitation".into(),
        description: format!("round {i}"),
        quantity: 1.0,
        unit_price: amount(i),
    }
}

fn amount(i: u64) -> i64 {
    1_000 + (i % 7) as i64 * 333
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test by itself: the body of the child process.
#[test]
#[ignore = "started by other tests as a child process"]
fn child_ledger() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (ledger, _reader) = Ledger::open(Path::new(&dir)).unwrap();
        let mut next = 0;
        loop {
            let batch = (next..next + BATCH).map(charge).collect();
            assert_eq!(ledger.record_durable(batch).await.unwrap(), BATCH as usize);
            next += BATCH;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{PREFIX}{next}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test]
async fn sigkilled_ledger_loses_nothing_committed_and_charges_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("ledger");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["child_ledger", "--exact", "--ignored", "--nocapture"])
            .env(CHILD, &data)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    // The pipe stays open until after the kill: the child must die by the
    // signal, in the middle of its work, not by a closed stdout.
    let reading = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut last = 0u64;
        while last < 2000 {
            let Some(line) = lines.next() else { break };
            if let Some(n) = line.unwrap().strip_prefix(PREFIX) {
                last = n.trim().parse().unwrap();
            }
        }
        (last, lines)
    });
    let (reported, _pipe) = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the child reports 2000 committed charges within 60 s")
        .unwrap();
    assert!(
        reported >= 2000,
        "the child stopped after {reported} charges"
    );
    child.0.kill().unwrap(); // SIGKILL, while it is still writing
    let status = child.0.wait().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child died by SIGKILL: {status}"
        );
    }

    let reader = LedgerReader::open(&data).unwrap();
    let totals = reader.totals().unwrap();
    assert_eq!(totals.total_debits, totals.total_credits);
    let n = totals.entries;
    eprintln!("the child reported {reported} charges committed; the ledger holds {n}");
    assert!(n >= reported, "reported {reported} committed, found {n}");
    // Batches commit whole and in order: the ledger holds exactly the
    // charges 0..n, each once (their amounts sum to the expected figure).
    assert_eq!(n % BATCH, 0, "a batch was committed in part");
    let expected: i64 = (0..n).map(amount).sum();
    assert_eq!(
        totals.total_debits, expected,
        "a charge is missing or doubled"
    );
    assert!(reader.has_key(&format!("crash-{}", n - 1)).unwrap());
    assert!(!reader.has_key(&format!("crash-{n}")).unwrap());
    let acme = reader.account_balance("customer:acme").unwrap();
    let globex = reader.account_balance("customer:globex").unwrap();
    assert_eq!(acme + globex, expected);
    assert_eq!(
        reader.account_balance("vendor:predictive-labs").unwrap(),
        -expected
    );

    // Replaying the first 100 charges by key changes nothing.
    let (ledger, reader) = Ledger::open(&data).unwrap();
    let replay = (0..100).map(charge).collect();
    assert_eq!(ledger.record_durable(replay).await.unwrap(), 0);
    ledger.record((0..100).map(charge).collect()).unwrap();
    assert_eq!(ledger.flush().await.unwrap(), n);
    assert_eq!(reader.totals().unwrap(), totals);
}
