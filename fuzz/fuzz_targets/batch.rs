//! Arbitrary bytes as the batch payloads of one connection, fed to a single
//! `BatchDecoder` until it refuses one. Must never panic nor allocate past
//! the (small) limits.
//!
//! The first byte picks how the rest is cut into payloads and whether the
//! payloads are sent as they are (exercising the zstd layer) or are batch
//! records compressed here first with a real zstd stream (exercising the
//! record parser, which random bytes rarely reach through zstd).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vcp_common::codec::{BatchDecoder, Limits, WINDOW_LOG};
use zstd::stream::raw::{CParameter, Encoder, InBuffer, Operation, OutBuffer};

const LIMITS: Limits = Limits {
    max_batch_bytes: 1 << 16,
    max_series: 1_000,
    max_readings: 10_000,
    max_timestamps: 1_000,
    max_name_len: 64,
};

fn compress(z: &mut Encoder<'static>, record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 64);
    let mut input = InBuffer::around(record);
    while input.pos() < record.len() {
        out.reserve(256);
        let pos = out.len();
        z.run(&mut input, &mut OutBuffer::around_pos(&mut out, pos))
            .expect("compress");
    }
    loop {
        out.reserve(256);
        let pos = out.len();
        if z.flush(&mut OutBuffer::around_pos(&mut out, pos))
            .expect("flush")
            == 0
        {
            return out;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode >> 1).max(1);
    let mut dec = BatchDecoder::new(LIMITS).expect("decoder");
    let mut z = if mode & 1 == 1 {
        let mut z = Encoder::new(1).expect("encoder");
        z.set_parameter(CParameter::WindowLog(WINDOW_LOG))
            .expect("window");
        Some(z)
    } else {
        None
    };
    for piece in rest.chunks(chunk) {
        let payload = match &mut z {
            Some(z) => compress(z, piece),
            None => piece.to_vec(),
        };
        match dec.decode(&payload) {
            Ok(d) => {
                assert!(d.batch.readings() <= LIMITS.max_readings);
                assert!(d.batch.timestamps.len() <= LIMITS.max_timestamps);
                assert!(dec.series_count() <= LIMITS.max_series);
            }
            Err(_) => break,
        }
    }
});
