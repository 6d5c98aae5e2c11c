//! Replays the fuzzing corpus (`fuzz/corpus/<target>/`) through the same
//! harnesses the cargo-fuzz targets run, so every input that once found a
//! bug, and every seed, is checked by the normal test suite.

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn every_corpus_input_passes_its_harness() {
    for (target, harness) in vcp::fuzzing::TARGETS {
        let dir = corpus().join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{target}: no corpus");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let run = std::panic::catch_unwind(|| harness(&data));
            assert!(run.is_ok(), "{target}: {} fails its harness", f.display());
        }
    }
}

#[test]
fn the_seeds_are_in_the_corpus() {
    for (target, name, bytes) in vcp::fuzzing::seeds::all() {
        let path = corpus().join(target).join(format!("seed-{name}"));
        let stored = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (write_seed_corpus writes it)", path.display()));
        assert_eq!(
            stored,
            bytes,
            "{} is stale: run write_seed_corpus",
            path.display()
        );
    }
}

#[test]
fn the_session_seeds_get_far() {
    let seeds = vcp::fuzzing::seeds::all();
    let seed = |target: &str, name: &str| {
        seeds
            .iter()
            .find(|(t, n, _)| *t == target && n == name)
            .map(|(_, _, b)| b.clone())
            .unwrap()
    };
    use vcp::fuzzing::{agent, module};
    // Three batches applied and acknowledged in one burst, then the end.
    let fresh = agent::run(&seed("agent_session", "fresh"));
    assert_eq!(
        fresh,
        agent::Reached {
            applied: 3,
            acks: 2,
            closed: true
        }
    );
    // Batches 1 and 2 were applied before: 3 and 4 are new; the failed
    // commit closes the session.
    let resend = agent::run(&seed("agent_session", "resend"));
    assert_eq!((resend.applied, resend.closed), (2, true), "{resend:?}");
    // Two answers admitted (3 and 16 of 40 requests: the quota), the
    // third answered twice: closed.
    let m = module::run(&seed("module_session", "session"));
    assert_eq!((m.answers, m.closed), (3, true), "{m:?}");
    assert!(m.admitted >= 16, "{m:?}");
}

/// Not a test: rewrites the seeds (`cargo test --test fuzz_corpus --
/// --ignored write_seed_corpus`).
#[test]
#[ignore = "writes the seed corpus"]
fn write_seed_corpus() {
    vcp::fuzzing::seeds::write(&corpus()).unwrap();
}
