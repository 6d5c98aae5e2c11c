//! Payload size at the defaults.

use super::small_host::{sample_batch, SmallHost};
use super::{encode, pair, quantised};
use crate::batch::SeriesTable;

#[test]
fn bytes_per_reading_at_defaults_for_a_small_host() {
    let mut table = SeriesTable::new();
    let series = SmallHost::series(&mut table);
    assert!((55..=65).contains(&series.len()), "{} series", series.len());
    let mut host = SmallHost::new();
    let (mut enc, mut dec) = pair();
    let (mut bytes, mut readings, mut raw) = (0usize, 0usize, 0usize);
    for seq in 1..=60u64 {
        let (ts, values) = host.sample();
        let batch = sample_batch(seq, vec![ts], &series, &values, |_| (0, 1));
        let p = encode(&mut enc, &batch, &table);
        assert_eq!(dec.decode(&p).unwrap().batch, quantised(&batch, &table));
        if seq > 5 {
            bytes += p.len();
            readings += batch.readings();
            raw += enc.last_record_len();
        }
    }
    let per_reading = bytes as f64 / readings as f64;
    eprintln!(
        "small host, {} series, 1 timestamp/batch: {per_reading:.3} payload bytes per reading \
         ({:.1} bytes per batch; {:.1} before zstd)",
        series.len(),
        bytes as f64 / 55.0,
        raw as f64 / 55.0
    );
    assert!(per_reading <= 1.0, "{per_reading:.3} bytes per reading");
    assert!(
        !enc.compresses() && dec.zstd.is_none(),
        "a small host's records go as they are: no zstd context at either end"
    );
}
