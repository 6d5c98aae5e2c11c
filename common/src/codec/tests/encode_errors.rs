//! Encoder-side errors: unencodable batches are refused without a trace.

use super::{batch, col, encode, pair};
use crate::batch::SeriesTable;
use crate::metric;

#[test]
fn encoder_rejects_unencodable_batches_and_stays_in_sync() {
    let mut t = SeriesTable::new();
    let up = t.intern("host", metric::STATUS_UP.name, 0);
    let used = t.intern("memory", metric::MEMORY_USED.name, 0);
    let good = |seq: u64| batch(seq, vec![seq as i64 * 1000], vec![col(up, 0, vec![1.0])]);
    let (mut enc, mut dec) = pair();
    assert!(dec.decode(&encode(&mut enc, &good(1), &t)).is_ok());
    let bad = [
        (
            batch(
                2,
                vec![2000],
                vec![col(up, 0, vec![1.0]), col(used, 0, vec![f64::NAN])],
            ),
            "not finite",
        ),
        (
            batch(2, vec![2000], vec![col(used, 0, vec![f64::INFINITY])]),
            "inf is not finite",
        ),
        (
            batch(2, vec![2000], vec![col(used, 0, vec![1e300])]),
            "overflows i64",
        ),
        (
            batch(2, vec![2000], vec![col(7, 0, vec![1.0])]),
            "series 7 is not in",
        ),
        (batch(2, vec![2000, 1999], vec![]), "earlier"),
        (
            batch(2, vec![2000], vec![col(used, 1, vec![1.0])]),
            "exceeds the 1 timestamps",
        ),
    ];
    for (b, msg) in bad {
        let mut out = vec![0xaa];
        let e = enc.encode(&b, &t, &mut out).unwrap_err();
        assert!(e.to_string().contains(msg), "{e} / {msg}");
        assert_eq!(out, [0xaa], "nothing appended on error");
    }
    let e = enc
        .encode(
            &batch(2, vec![2000], vec![col(used, 0, vec![f64::NAN])]),
            &t,
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "series 1 (memory memory.used): value NaN is not finite"
    );
    // The failed batches left no trace: `used` is still new, layout intact.
    let next = batch(
        2,
        vec![2000],
        vec![col(up, 0, vec![1.0]), col(used, 0, vec![3.0])],
    );
    let d = dec.decode(&encode(&mut enc, &next, &t)).unwrap();
    assert_eq!(d.batch, next);
    assert_eq!(d.new_series.len(), 1);
}
