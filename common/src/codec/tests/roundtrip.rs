//! Round trips: what goes in comes out, quantised, over a connection.

use proptest::prelude::*;

use super::{
    agent_ids, batch, col, decode_raw, decoder, encode, expect_err, pair, quantised, valid_first,
};
use crate::batch::{Batch, Column, SeriesTable};
use crate::codec::{
    dequantize, quantize, BatchDecoder, BatchEncoder, CodecError, Limits, FLAG_LAYOUT,
    FLAG_SEQ_NEXT, FLAG_SERIES, PAYLOAD_RAW, PAYLOAD_ZSTD,
};
use crate::metric;

#[test]
fn codecs_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<BatchEncoder>();
    assert_send::<BatchDecoder>();
    assert_send::<CodecError>();
}

#[test]
fn hand_written_record_decodes() {
    let d = decode_raw(&[valid_first()]).unwrap();
    assert_eq!(d.batch.seq, 1);
    assert_eq!(d.batch.timestamps, [1_700_000_000_000]);
    assert_eq!(d.batch.columns[0].values, [5.0]);
    assert_eq!(d.new_series[0].metric, "cpu.cores");
}

#[test]
fn quantisation() {
    assert_eq!(quantize(0.123456, -5), Some(12346));
    assert_eq!(dequantize(12346, -5), 0.12346);
    assert_eq!(quantize(1234.0, 2), Some(12));
    assert_eq!(dequantize(12, 2), 1200.0);
    assert_eq!(quantize(-2.5, 0), Some(-3));
    assert_eq!(quantize(9.3e18, 0), None);
    assert_eq!(quantize(i64::MIN as f64, 0), Some(i64::MIN));
    assert_eq!(quantize(f64::NAN, 0), None);
    assert_eq!(quantize(1e-200, -128), Some(0));
    assert_eq!(quantize(1.0, -128), None);
    assert_eq!(quantize(1e100, 127), Some(0));
    assert_eq!(quantize(1e300, 127), None);
    // Integers up to 2^53 travel exactly at exp 0.
    let big = (1u64 << 53) as f64;
    assert_eq!(dequantize(quantize(big, 0).unwrap(), 0), big);
}

#[test]
fn sequence_with_series_appearing_mid_stream_and_reconnect() {
    let mut t = SeriesTable::new();
    let a = t.intern("memory", metric::MEMORY_USED.name, 0);
    let b = t.intern("cpu", metric::CPU_UTILIZATION.name, -5);
    let mut batches = Vec::new();
    for i in 0..6i64 {
        let mut columns = vec![
            col(a, 0, vec![1e9 + i as f64 * 4096.0, 1e9]),
            col(b, 0, vec![0.25, 0.5 + i as f64 / 1000.0]),
        ];
        if i >= 3 {
            let c = t.intern("nic/eth0", metric::NIC_RX_BYTES.name, 0);
            columns.push(col(c, 1, vec![i as f64]));
        }
        batches.push(batch(
            10 + i as u64,
            vec![1_700_000_000_000 + 2000 * i, 1_700_000_001_000 + 2000 * i],
            columns,
        ));
    }
    // Two connections: the second re-encodes everything after a reconnect.
    for _ in 0..2 {
        let (mut enc, mut dec) = pair();
        for (i, batch) in batches.iter().enumerate() {
            let d = dec.decode(&encode(&mut enc, batch, &t)).unwrap();
            assert_eq!(d.batch, quantised(batch, &t), "batch {i}");
            let new: Vec<_> = d.new_series.iter().map(|s| s.id).collect();
            match i {
                0 => assert_eq!(new, [a, b]),
                3 => assert_eq!(new, [2]),
                _ => assert!(new.is_empty()),
            }
        }
        assert_eq!(dec.series(2), t.get(2));
        assert_eq!(dec.series(3), None);
    }
}

#[test]
fn sparse_agent_ids_travel_as_dense_connection_ids() {
    let mut t = SeriesTable::new();
    let ids: Vec<_> = (0..5)
        .map(|i| t.intern(&format!("cgroup/g{i}"), metric::CPU_UTILIZATION.name, -4))
        .collect();
    // After a reconnect only series 2 and 4 are still alive.
    let b = batch(
        1,
        vec![1_700_000_000_000],
        vec![col(ids[2], 0, vec![0.5]), col(ids[4], 0, vec![0.25])],
    );
    let (mut enc, mut dec) = pair();
    let d = dec.decode(&encode(&mut enc, &b, &t)).unwrap();
    let wire: Vec<_> = d
        .new_series
        .iter()
        .map(|s| (s.id, s.resource.as_str()))
        .collect();
    assert_eq!(wire, [(0, "cgroup/g2"), (1, "cgroup/g4")]);
    let cols: Vec<_> = d.batch.columns.iter().map(|c| c.series).collect();
    assert_eq!(cols, [0, 1]);
    assert_eq!(agent_ids(&d.batch, &dec, &t), quantised(&b, &t));
    assert_eq!(dec.series_count(), 2);
}

#[test]
fn unchanged_layout_is_not_resent() {
    let mut t = SeriesTable::new();
    let s = t.intern("host", metric::STATUS_UP.name, 0);
    let mk = |seq: u64, n: usize| {
        batch(
            seq,
            (0..n as i64).map(|i| 1000 * (seq as i64 + i)).collect(),
            vec![col(s, 0, vec![1.0; n])],
        )
    };
    let (mut enc, mut dec) = pair();
    let (mut flags, mut lens) = (Vec::new(), Vec::new());
    for (seq, n) in [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (7, 2)] {
        let b = mk(seq, n);
        let p = encode(&mut enc, &b, &t);
        flags.push(enc.raw[0]);
        lens.push(enc.last_record_len());
        assert_eq!(dec.decode(&p).unwrap().batch, b);
    }
    const N: u8 = FLAG_SEQ_NEXT;
    assert_eq!(
        flags,
        [FLAG_SERIES | FLAG_LAYOUT | N, N, N, FLAG_LAYOUT | N, N, 0],
        "layout sent only when it changes"
    );
    // Steady state record: flags, timestamp dd, bitmap index.
    assert_eq!(lens[2], 3);
}

#[test]
fn a_recycled_batch_is_kept_only_when_small() {
    let mut t = SeriesTable::new();
    let s = t.intern("host", metric::STATUS_UP.name, 0);
    let (mut enc, mut dec) = pair();
    let small = batch(1, vec![1000], vec![col(s, 0, vec![1.0])]);
    let d = dec.decode(&encode(&mut enc, &small, &t)).unwrap();
    dec.recycle(d.batch);
    assert_eq!(dec.spare.columns.len(), 1, "kept");
    let n = super::super::decode::RECYCLE_MAX_VALUES;
    let big = batch(
        2,
        (0..n as i64).map(|i| 2000 + i).collect(),
        vec![col(s, 0, vec![1.0; n])],
    );
    let d = dec.decode(&encode(&mut enc, &big, &t)).unwrap();
    assert_eq!(d.batch, big, "decoded into the recycled vectors");
    dec.recycle(d.batch);
    assert_eq!(dec.spare.timestamps.capacity(), 0, "not kept: a fresh one");
    let next = batch(3, vec![9000], vec![col(s, 0, vec![1.0])]);
    assert_eq!(
        dec.decode(&encode(&mut enc, &next, &t)).unwrap().batch,
        next
    );
}

#[test]
fn the_decompression_buffer_shrinks_after_a_large_batch() {
    let mut t = SeriesTable::new();
    let ids: Vec<_> = (0..40)
        .map(|i| t.intern(&format!("res/{i}"), "custom.m", 0))
        .collect();
    let (mut enc, mut dec) = pair();
    // 40 series × 5,000 timestamps of values moving by a few thousand:
    // a record of a few hundred KB.
    let n = 5000usize;
    let ts: Vec<i64> = (0..n as i64).map(|i| 1000 + i).collect();
    let cols = ids
        .iter()
        .map(|&s| {
            col(
                s,
                0,
                (0..n)
                    .map(|i| ((i * 7919 + s as usize * 31) % 4099) as f64)
                    .collect(),
            )
        })
        .collect();
    let big = batch(1, ts, cols);
    let d = dec.decode(&encode(&mut enc, &big, &t)).unwrap();
    assert!(enc.last_record_len() > super::super::decode::KEEP_BUF_BYTES);
    assert_eq!(agent_ids(&d.batch, &dec, &t), quantised(&big, &t));
    assert!(
        dec.buf.len() <= super::super::decode::KEEP_BUF_BYTES,
        "{}",
        dec.buf.len()
    );
    let small = batch(
        2,
        vec![9_000],
        ids.iter().map(|&s| col(s, 0, vec![1.0])).collect(),
    );
    let d = dec.decode(&encode(&mut enc, &small, &t)).unwrap();
    assert_eq!(agent_ids(&d.batch, &dec, &t), quantised(&small, &t));
}

#[test]
fn large_records_are_compressed_and_small_ones_sent_as_they_are() {
    let mut t = SeriesTable::new();
    let s = t.intern("host", "custom.m", 0);
    let (mut enc, mut dec) = pair();
    let mk = |seq: u64, n: usize| {
        let ts = (0..n as i64).map(|i| 10_000 * seq as i64 + i).collect();
        batch(
            seq,
            ts,
            vec![col(s, 0, (0..n).map(|i| (i * 37 % 1001) as f64).collect())],
        )
    };
    let mut kinds = Vec::new();
    for (seq, n) in [(1, 1), (2, 1), (3, 800), (4, 1), (5, 800), (6, 1)] {
        let b = mk(seq, n);
        let p = encode(&mut enc, &b, &t);
        kinds.push((p[0], enc.compresses(), dec.zstd.is_some()));
        assert_eq!(
            dec.decode(&p).unwrap().batch,
            quantised(&b, &t),
            "batch {seq}"
        );
    }
    assert_eq!(
        kinds.iter().map(|k| k.0).collect::<Vec<_>>(),
        [
            PAYLOAD_RAW,
            PAYLOAD_RAW,
            PAYLOAD_ZSTD,
            PAYLOAD_RAW,
            PAYLOAD_ZSTD,
            PAYLOAD_RAW
        ]
    );
    assert_eq!(
        kinds[1],
        (PAYLOAD_RAW, false, false),
        "no zstd until needed"
    );
    assert!(dec.zstd.is_some());
}

#[test]
fn a_payload_of_an_unknown_kind_or_too_large_is_refused() {
    let mut dec = decoder();
    expect_err(dec.decode(&[0x07, 1, 2]), "unknown payload kind 0x07");
    let limits = Limits {
        max_batch_bytes: 10,
        ..Limits::default()
    };
    let mut dec = BatchDecoder::new(limits).unwrap();
    let mut big = vec![PAYLOAD_RAW];
    big.extend_from_slice(&[0; 11]);
    expect_err(dec.decode(&big), "exceeds the limit of 10 bytes");
}

#[test]
fn clock_steps_back_between_batches() {
    let mut t = SeriesTable::new();
    let s = t.intern("host", metric::STATUS_UP.name, 0);
    let (mut enc, mut dec) = pair();
    for (seq, ts) in [(1, 5_000), (2, 3_000), (3, i64::MIN), (4, i64::MAX)] {
        let b = batch(seq, vec![ts], vec![col(s, 0, vec![1.0])]);
        assert_eq!(dec.decode(&encode(&mut enc, &b, &t)).unwrap().batch, b);
    }
}

fn arb_stream() -> impl Strategy<Value = (Vec<i8>, Vec<Batch>)> {
    let exps = prop::collection::vec(-8i8..=3, 1..12);
    exps.prop_flat_map(|exps| {
        let n = exps.len() as u32;
        let batch = (
            any::<u64>(),
            prop::collection::vec(0i64..5_000, 0..6),
            prop::collection::vec(
                (
                    0..n,
                    0u32..6,
                    1usize..6,
                    prop::collection::vec(
                        prop_oneof![
                            (-1e6f64..1e6),
                            (-1_000_000_000i64..1_000_000_000).prop_map(|x| x as f64),
                            Just(0.0),
                        ],
                        5,
                    ),
                ),
                0..8,
            ),
            -1_000_000_000_000i64..2_000_000_000_000,
            // Follow-up batches with the same layout: (keep mask, scale).
            prop::collection::vec((any::<u8>(), -3i32..3), 0..3),
        );
        (Just(exps), prop::collection::vec(batch, 1..6))
    })
    .prop_map(|(exps, raw)| {
        let n_series = exps.len() as u32;
        let mut batches = Vec::new();
        for (bi, (seq, gaps, cols, t0, repeats)) in raw.into_iter().enumerate() {
            let mut t = t0;
            let timestamps: Vec<i64> = gaps
                .iter()
                .map(|g| {
                    t += g;
                    t
                })
                .collect();
            // Series appear over time: batch bi uses ids below a growing bound.
            let bound = (n_series * (bi as u32 + 1)).div_ceil(3).max(1);
            let mut columns: Vec<Column> = cols
                .into_iter()
                .filter_map(|(s, start, len, vals)| {
                    let n_ts = timestamps.len();
                    let start = (start as usize).min(n_ts);
                    let len = len.min(n_ts - start);
                    (len > 0).then(|| col(s % bound, start as u32, vals[..len].to_vec()))
                })
                .collect();
            columns.sort_by_key(|c| c.series);
            let first = batch(seq, timestamps, columns);
            // Same layout again: some columns unchanged, others scaled.
            let mut prev = first.clone();
            batches.push(first);
            for (mask, scale) in repeats {
                let mut b = prev.clone();
                b.seq = b.seq.wrapping_add(1);
                let shift = b.timestamps.last().map_or(0, |l| l - b.timestamps[0] + 1);
                b.timestamps.iter_mut().for_each(|t| *t += shift);
                for (i, c) in b.columns.iter_mut().enumerate() {
                    if mask & (1 << (i % 8)) != 0 {
                        c.values
                            .iter_mut()
                            .for_each(|v| *v = *v * f64::from(scale) + 1.5);
                    }
                }
                batches.push(b.clone());
                prev = b;
            }
        }
        (exps, batches)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn round_trip_random_streams((exps, batches) in arb_stream()) {
        let mut t = SeriesTable::new();
        for (i, exp) in exps.iter().enumerate() {
            t.intern(&format!("res/{i}"), &format!("custom.m{i}"), *exp);
        }
        let (mut enc, mut dec) = pair();
        let mut defined = 0u32;
        for (i, b) in batches.iter().enumerate() {
            let d = dec.decode(&encode(&mut enc, b, &t)).unwrap();
            prop_assert_eq!(&agent_ids(&d.batch, &dec, &t), &quantised(b, &t));
            for s in &d.new_series {
                // Dense wire ids, in order of definition.
                prop_assert_eq!(s.id, defined);
                defined += 1;
                let agent = t.lookup(&s.resource, &s.metric).unwrap();
                prop_assert_eq!(t.get(agent).map(|d| d.exp), Some(s.exp));
            }
            for c in &d.batch.columns {
                prop_assert!(c.series < defined);
            }
            // Most batches are handed back, so the next is decoded into
            // their vectors whatever its layout; some are not.
            if i % 3 != 2 {
                dec.recycle(d.batch);
            }
        }
    }
}
