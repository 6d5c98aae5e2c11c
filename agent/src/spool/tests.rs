//! The spool in memory and on disk: numbering, acknowledgements, exact
//! gaps, resuming after a restart, torn tails, a failing directory.

use super::*;
use vcp_common::batch::Column;

fn batch(n: usize) -> Batch {
    Batch {
        seq: 0,
        timestamps: vec![1_700_000_000_000],
        columns: vec![Column {
            series: 0,
            start: 0,
            values: vec![1.5; n],
        }],
    }
}

fn disk_cfg(dir: &std::path::Path, max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        dir: Some(dir.to_owned()),
        max_bytes,
        memory_batches: 8,
        segment_bytes,
    }
}

fn seqs(s: &Spool, after: u64) -> Vec<u64> {
    s.backlog(after).map(|b| b.unwrap().seq).collect()
}

#[test]
fn memory_spool_numbers_acks_and_reports_exact_gaps() {
    let (mut s, _) = Spool::open(SpoolConfig::memory(2), || 5);
    assert_eq!((s.incarnation(), s.first_seq(), s.durable()), (5, 1, false));
    assert_eq!(s.push(&mut batch(1)).seq, 1);
    assert_eq!(s.push(&mut batch(2)).seq, 2);
    let p = s.push(&mut batch(3));
    assert_eq!(
        (p.seq, p.dropped, p.dropped_readings, p.first_dropped),
        (3, 1, 1, Some(1))
    );
    s.push(&mut batch(4)); // drops 2 (2 readings)
    assert_eq!(s.first_seq(), 1, "the gap is held until reported");
    assert_eq!(seqs(&s, 0), [3, 4]);
    // The supervisor had applied batch 1 before: only batch 2 is lost.
    assert_eq!(s.gaps_after(1), [(2, 2)]);
    assert_eq!(s.gaps_after(0), [(2, 2)], "what is applied stays applied");
    s.ack(2);
    assert!(s.gaps_after(2).is_empty());
    assert_eq!((s.first_seq(), s.len()), (3, 2));
    s.ack(4);
    assert!(s.is_empty());
    assert_eq!((s.first_seq(), s.last_seq()), (5, 4));
    assert_eq!(s.dropped_readings(), 3);
}

#[test]
fn a_restarted_disk_spool_resumes_its_incarnation_sequence_and_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let def = |id, r: &str| SeriesDef {
        id,
        resource: r.into(),
        metric: "cpu.utilization".into(),
        exp: -4,
    };
    {
        let (mut s, table) = Spool::open(disk_cfg(dir.path(), 1 << 20, 1 << 20), || 42);
        assert!(s.durable() && table.is_empty());
        s.define(&def(0, "cpu"));
        s.define(&def(1, "cpu/0"));
        for _ in 0..10 {
            s.push(&mut batch(3));
            s.sync();
        }
        s.ack(4);
        // No sync after the ack: an ack record may be lost, never a batch.
    }
    let (mut s, table) = Spool::open(disk_cfg(dir.path(), 1 << 20, 1 << 20), || 99);
    assert_eq!(s.incarnation(), 42, "the same run of the agent");
    assert_eq!(table.len(), 2);
    assert_eq!(table.get(1).map(|d| d.resource.as_str()), Some("cpu/0"));
    assert_eq!(s.first_seq(), 5);
    assert_eq!(seqs(&s, 0), [5, 6, 7, 8, 9, 10]);
    assert_eq!(seqs(&s, 7), [8, 9, 10]);
    assert_eq!(s.push(&mut batch(1)).seq, 11);
    assert_eq!(
        s.backlog(0).next().unwrap().unwrap(),
        Batch { seq: 5, ..batch(3) }
    );
}

#[test]
fn segments_rotate_and_acknowledged_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let files = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("seg-")
            })
            .count()
    };
    let (mut s, _) = Spool::open(disk_cfg(dir.path(), 1 << 20, 300), || 1);
    for _ in 0..20 {
        s.push(&mut batch(10));
    }
    s.sync();
    assert!(files() >= 5, "{} segments", files());
    s.ack(20);
    assert_eq!(files(), 1, "only the newest segment is kept");
    drop(s);
    let (mut s, _) = Spool::open(disk_cfg(dir.path(), 1 << 20, 300), || 2);
    assert!(s.is_empty());
    assert_eq!(s.push(&mut batch(1)).seq, 21, "the sequence goes on");
}

#[test]
fn a_full_disk_spool_drops_the_oldest_segment_and_keeps_the_gap_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = disk_cfg(dir.path(), 2_000, 500);
    let mut dropped = 0;
    {
        let (mut s, _) = Spool::open(cfg.clone(), || 1);
        for _ in 0..40 {
            dropped += s.push(&mut batch(5)).dropped_readings;
            s.sync();
        }
        assert!(dropped > 0 && dropped % 5 == 0, "{dropped}");
        assert_eq!(s.dropped_readings(), dropped);
    }
    let (mut s, _) = Spool::open(cfg, || 2);
    let gaps = s.gaps_after(0);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let (up_to, readings) = gaps[0];
    assert_eq!(readings, dropped, "exact readings of what was dropped");
    assert_eq!(s.first_seq(), 1);
    let held = seqs(&s, 0);
    assert_eq!(held.first(), Some(&(up_to + 1)));
    assert_eq!(*held.last().unwrap(), 40);
    assert_eq!(
        held.len() as u64 + readings / 5,
        40,
        "nothing unaccounted for"
    );
}

#[test]
fn a_torn_tail_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = disk_cfg(dir.path(), 1 << 20, 1 << 20);
    {
        let (mut s, _) = Spool::open(cfg.clone(), || 1);
        for _ in 0..5 {
            s.push(&mut batch(4));
        }
        s.sync();
    }
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap(); // mid-record
    drop(f);
    let (mut s, _) = Spool::open(cfg, || 2);
    assert_eq!(seqs(&s, 0), [1, 2, 3, 4]);
    assert_eq!(
        s.push(&mut batch(1)).seq,
        5,
        "the torn batch's number is reused"
    );
    s.sync();
    assert_eq!(seqs(&s, 0), [1, 2, 3, 4, 5]);
}

#[test]
fn an_unusable_directory_means_memory_and_a_failing_one_falls_back() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let (mut s, _) = Spool::open(disk_cfg(&file.path().join("spool"), 1 << 20, 1 << 20), || 3);
    assert!(!s.durable());
    assert_eq!(s.push(&mut batch(1)).seq, 1);

    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let (mut s, _) = Spool::open(disk_cfg(&spool_dir, 1 << 20, 200), || 4);
    for _ in 0..3 {
        s.push(&mut batch(2));
    }
    s.sync();
    // The directory goes away under the agent: the next new segment fails.
    std::fs::remove_dir_all(&spool_dir).unwrap();
    for _ in 0..10 {
        s.push(&mut batch(2));
    }
    assert!(!s.durable(), "fell back to memory");
    // What could not be read back is counted, never silent.
    let held = seqs(&s, 0);
    let lost: u64 = s.gaps_after(0).iter().map(|(_, r)| r).sum();
    assert_eq!(
        held.len() as u64 + lost / 2,
        13,
        "held {held:?}, lost {lost}"
    );
    assert_eq!(*held.last().unwrap(), 13);
}
