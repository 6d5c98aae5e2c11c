//! Stored ratings reach a restarted judge exactly once: those it had
//! taken come back with its state, the others are replayed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::SupervisorFile;
use crate::control::Control;
use crate::fleet::Fleet;
use crate::judge::{module_key, JudgeState};
use vcp_core::reputation::{Components, Reputation};
use vcp_store::ledger::LedgerReader;
use vcp_store::planes::FeedbackRecord;
use vcp_store::Store;

const CONFIG: &str = r#"
billing_interval_s = 1
[[customers]]
id = "acme"
[[service_sets]]
id = "shop"
customer = "acme"
instances = { min = 1, max = 4, initial = 1 }
members = [{ host = "h1" }]
[[control_planes]]
customer = "acme"
"#;

fn rating(rating: f64) -> FeedbackRecord {
    FeedbackRecord {
        module: "m1".into(),
        control_plane: "vcp-acme".into(),
        account: "acme".into(),
        rating,
        comment: String::new(),
        at_ms: 0,
    }
}

/// Runs a supervisor's control on `dir` with `stored` ratings until its
/// checkpoint has taken rating `upto`; returns the judge's state.
async fn run(dir: &Path, stored: &[(i64, FeedbackRecord)], upto: i64) -> JudgeState {
    let (store, records) = Store::open(dir).unwrap();
    let fleet = Arc::new(Fleet::new(store.agents(), records));
    let file = SupervisorFile::parse(CONFIG, Path::new("s.toml")).unwrap();
    let feedback = |after: i64| stored.iter().filter(|(n, _)| *n > after).cloned().collect();
    let control = Control::start(
        file,
        fleet,
        Some((store.ledger(), LedgerReader::open(dir).unwrap())),
        Vec::new(),
        &feedback,
    );
    let reader = LedgerReader::open(dir).unwrap();
    let mut state = None;
    for _ in 0..100 {
        state = reader
            .state(NAME)
            .unwrap()
            .and_then(|row| Checkpoint::decode(&row.bytes))
            .and_then(|c| JudgeState::decode(&c.judge))
            .filter(|j| j.feedback == upto);
        if state.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    control.stop();
    state.unwrap_or_else(|| panic!("no checkpoint took rating {upto}"))
}

fn components(j: &JudgeState) -> Components {
    Reputation::restore(Default::default(), j.reputation.clone())
        .components(&module_key("vcp-acme", "m1"), crate::unix_ms())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_ratings_are_taken_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let first = vec![(1, rating(5.0))];
    let once = components(&run(dir.path(), &first, 1).await);
    assert!((once.evidence.feedback - 1.0).abs() < 0.01, "{once:?}");
    // Restarted with a second rating stored while it was down.
    let both = vec![(1, rating(5.0)), (2, rating(1.0))];
    let twice = components(&run(dir.path(), &both, 2).await);
    assert!(
        (twice.evidence.feedback - 2.0).abs() < 0.01,
        "two ratings, each taken once: {twice:?}"
    );
    assert!(twice.feedback < once.feedback, "the low rating counted");
}
