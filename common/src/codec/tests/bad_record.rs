//! Bad input inside a batch record: every malformed field is refused, and
//! randomly mutated records never panic the decoder.

use super::small_host::{sample_batch, Rng, SmallHost};
use super::{decode_raw, decode_raw_with, expect_err, put_def, record, valid_first, with_def};
use crate::batch::SeriesTable;
use crate::codec::{BatchEncoder, Limits, DEFAULT_LEVEL, FLAG_LAYOUT, FLAG_SERIES};
use crate::varint;

#[test]
fn unknown_series_id_is_refused() {
    let mut r = record(FLAG_LAYOUT);
    r.extend_from_slice(&[1, 1, 6, 0, 1, 0, 1, 2]); // column of series 3, never defined
    expect_err(decode_raw(&[r]), "series 3 is used but was never defined");
}

#[test]
fn series_redefined_differently_is_refused() {
    let mut second = with_def(FLAG_SERIES, 0, -2, "cpu", "cpu.cores");
    second.extend_from_slice(&[0, 1, 1]); // timestamp dd, bitmap: column 0 unchanged
    let e = expect_err(decode_raw(&[valid_first(), second]), "series 0 redefined");
    assert!(
        e.to_string().contains("exp 0, now cpu cpu.cores exp -2"),
        "{e}"
    );
    // Ids are dense: even the identical definition again is refused, and
    // so is an id that is not the next one.
    let mut same = with_def(FLAG_SERIES, 0, 0, "cpu", "cpu.cores");
    same.extend_from_slice(&[0, 1, 1]);
    expect_err(decode_raw(&[valid_first(), same]), "series 0 redefined");
    for id in [2u64, 10_000_000, u64::from(u32::MAX)] {
        let mut sparse = with_def(FLAG_SERIES, id, 0, "cpu", "cpu.idle");
        sparse.extend_from_slice(&[0, 1, 1]);
        expect_err(
            decode_raw(&[valid_first(), sparse]),
            &format!("series {id} is not the next series id of this connection (1)"),
        );
    }
}

#[test]
fn resource_names_must_be_resource_ids() {
    for bad in ["cgroup/web/../x", "/abs", "a//b", "sp ace", ""] {
        let mut r = with_def(FLAG_SERIES | FLAG_LAYOUT, 0, 0, bad, "cpu.cores");
        r.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 1, 2]);
        expect_err(decode_raw(&[r]), "series 0: resource id");
    }
}

#[test]
fn counts_larger_than_the_input_are_refused_before_allocating() {
    // 9 000 series definitions announced, four bytes follow.
    let mut r = record(FLAG_SERIES);
    varint::put_u64(&mut r, 9_000);
    r.extend_from_slice(&[0, 0, 0, 0]);
    expect_err(
        decode_raw(&[r]),
        "series definitions: count 9000 cannot fit in the 4 bytes left",
    );
    // 10 000 timestamps (the limit) with 3 bytes behind them.
    let mut r = record(FLAG_LAYOUT);
    varint::put_u64(&mut r, 10_000);
    r.extend_from_slice(&[0, 0, 0]);
    expect_err(decode_raw(&[r]), "timestamps: count 10000 cannot fit");
    // Many columns.
    let mut r = record(FLAG_LAYOUT);
    r.push(1);
    varint::put_u64(&mut r, 500_000);
    r.extend_from_slice(&[0; 30]);
    expect_err(decode_raw(&[r]), "columns: count 500000 cannot fit");
    // A name length beyond the input.
    let mut r = record(FLAG_SERIES);
    r.extend_from_slice(&[1, 0, 0, 100, b'x']);
    expect_err(decode_raw(&[r]), "resource name: count 100 cannot fit");
    // A changed column with more values than bytes: 2 values, 1 byte.
    let mut r = with_def(FLAG_SERIES | FLAG_LAYOUT, 0, 0, "cpu", "cpu.cores");
    r.extend_from_slice(&[2, 1, 0, 0, 2, 0, 0, 1, 1, 9]);
    expect_err(
        decode_raw(&[r]),
        "column values: count 2 cannot fit in the 1 bytes left",
    );
}

#[test]
fn limits_are_enforced() {
    let small = Limits {
        max_batch_bytes: 4096,
        max_series: 2,
        max_readings: 3,
        max_timestamps: 2,
        max_name_len: 8,
    };
    // Too many series, over two records.
    let defs = |ids: &[u64]| {
        let mut r = record(FLAG_SERIES | FLAG_LAYOUT);
        varint::put_u64(&mut r, ids.len() as u64);
        for &id in ids {
            put_def(&mut r, id, 0, "cpu", "m");
        }
        r.extend_from_slice(&[0, 0]); // no timestamps, no columns, empty bitmap
        r
    };
    assert!(decode_raw_with(small, &[defs(&[0, 1])]).is_ok());
    expect_err(
        decode_raw_with(small, &[defs(&[0]), defs(&[1, 2])]),
        "series definitions: 2 exceeds the limit of 1",
    );
    // Name too long.
    let r = with_def(FLAG_SERIES, 0, 0, "a-very-long-resource", "m");
    expect_err(
        decode_raw_with(small, &[r]),
        "resource name: 20 exceeds the limit of 8",
    );
    // Too many timestamps.
    let mut r = record(FLAG_LAYOUT);
    r.extend_from_slice(&[3, 0, 0, 0, 0]);
    expect_err(
        decode_raw_with(small, &[r]),
        "timestamps: 3 exceeds the limit of 2",
    );
    // Too many readings: two columns of 2.
    let mut r = defs(&[0, 1]);
    r.truncate(r.len() - 2);
    r.extend_from_slice(&[2, 2, 0, 0, 2, 2, 0, 2, 0, 0, 0]);
    expect_err(
        decode_raw_with(small, &[r]),
        "readings: 4 exceeds the limit of 3",
    );
    // Batch bytes.
    let mut r = record(FLAG_SERIES);
    r.extend_from_slice(&[0; 5000]);
    expect_err(
        decode_raw_with(small, &[r]),
        "exceeds the limit of 4096 bytes",
    );
}

#[test]
fn varint_overflow_is_refused() {
    let mut r = vec![0];
    r.extend_from_slice(&[0xff; 10]);
    expect_err(decode_raw(&[r]), "varint overflow reading seq at byte 1");
    let mut r = valid_first();
    let at = r.len() - 1;
    r.truncate(at);
    r.extend_from_slice(&[0x80; 9]);
    r.push(0x7f);
    expect_err(decode_raw(&[r]), "varint overflow reading value");
}

#[test]
fn trailing_garbage_is_refused() {
    let mut r = valid_first();
    r.extend_from_slice(&[1, 2, 3]);
    expect_err(decode_raw(&[r]), "3 bytes of trailing garbage");
}

#[test]
fn decreasing_timestamps_are_refused() {
    let mut r = with_def(FLAG_SERIES | FLAG_LAYOUT, 0, 0, "cpu", "cpu.cores");
    r.extend_from_slice(&[2, 1, 0, 0, 2]);
    varint::put_i64(&mut r, 1000); // ts 1000 (first ever: interval 0)
    varint::put_i64(&mut r, -1); // dt -1: ts 999
    r.extend_from_slice(&[0]);
    expect_err(
        decode_raw(&[r]),
        "timestamp 1 (999) is earlier than the one before it (1000)",
    );
}

#[test]
fn columns_outside_the_timestamps_are_refused() {
    for (start, len, msg) in [
        (1u64, 1u64, "start 1 + 1 values exceeds the 1 timestamps"),
        (0, 2, "start 0 + 2 values exceeds"),
        (u64::MAX, 2, "exceeds"),
        (0, 0, "column 0 of series 0 is empty"),
    ] {
        let mut r = with_def(FLAG_SERIES | FLAG_LAYOUT, 0, 0, "cpu", "cpu.cores");
        r.extend_from_slice(&[1, 1, 0]);
        varint::put_u64(&mut r, start);
        varint::put_u64(&mut r, len);
        r.extend_from_slice(&[0, 0, 0, 0]);
        expect_err(decode_raw(&[r]), msg);
    }
}

#[test]
fn other_malformed_records_are_refused() {
    // Unknown flag bits.
    expect_err(decode_raw(&[vec![0x80, 0]]), "unknown batch flags 0x80");
    // Layout reuse before any layout.
    expect_err(decode_raw(&[vec![0, 0]]), "none was sent");
    // Exp out of i8 range.
    let r = with_def(FLAG_SERIES, 0, 300, "cpu", "m");
    expect_err(decode_raw(&[r]), "series exp 300 is out of range");
    // Series id over u32.
    let r = with_def(FLAG_SERIES, 1 << 32, 0, "cpu", "m");
    expect_err(decode_raw(&[r]), "series id 4294967296 is out of range");
    // Invalid UTF-8.
    let mut r = record(FLAG_SERIES);
    r.extend_from_slice(&[1, 0, 0, 1, 0xff, 1, b'm']);
    expect_err(
        decode_raw(&[r]),
        "resource name of series 0 is not valid UTF-8",
    );
    // Bitmap bits past the last column.
    let mut r = valid_first();
    let n = r.len();
    r[n - 2] = 0b11;
    expect_err(
        decode_raw(&[r]),
        "change bitmap has bits set past its 1 bits",
    );
    let mut r = valid_first();
    r[n - 3] = 0b11;
    expect_err(
        decode_raw(&[r]),
        "change bitmap index has bits set past its 1 bits",
    );
    // Column series delta going negative.
    let mut r = record(FLAG_LAYOUT);
    r.extend_from_slice(&[1, 1, 1, 0, 1]);
    expect_err(decode_raw(&[r]), "column series id -1 is out of range");
}

#[test]
fn mutated_records_never_panic() {
    let mut table = SeriesTable::new();
    let series = SmallHost::series(&mut table);
    let mut host = SmallHost::new();
    let mut enc = BatchEncoder::new(DEFAULT_LEVEL).unwrap();
    let mut records = Vec::new();
    for seq in 1..=6u64 {
        let (ts, values) = host.sample();
        let batch = sample_batch(seq, vec![ts, ts + 1000], &series, &values, |id| {
            (u32::from(id % 3 == 0), 1 + usize::from(id % 3 != 0))
        });
        enc.encode(&batch, &table, &mut Vec::new()).unwrap();
        records.push(enc.raw.clone());
    }
    let mut rng = Rng(99);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..3000 {
        // A valid prefix of the stream, then one mutated record.
        let at = (rng.next() % records.len() as u64) as usize;
        let mut r = records[at].clone();
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() % r.len() as u64) as usize;
            match rng.next() % 4 {
                0 => r[i] ^= 1 << (rng.next() % 8),
                1 => r[i] = rng.next() as u8,
                2 => r.truncate(i),
                _ => r.insert(i, rng.next() as u8),
            }
            if r.is_empty() {
                r.push(0);
            }
        }
        let mut stream = records[..at].to_vec();
        stream.push(r);
        match decode_raw(&stream) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!("mutated records: {ok} decoded, {err} refused");
    assert!(err > 0);
}
