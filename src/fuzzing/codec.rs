//! The decoders of bytes from the network on their own: frames, and one
//! connection's batch payloads.

use vcp_common::codec::{BatchDecoder, Limits, WINDOW_LOG};
use vcp_common::frame::{decode_frame, encode_frame};
use zstd::stream::raw::{CParameter, Encoder, InBuffer, Operation, OutBuffer};

const MAX_FRAME: usize = 1 << 16;

/// Arbitrary bytes as a received stream: frames are decoded back to back
/// until more bytes are needed or one is refused. Every decoded frame must
/// survive an encode/decode round trip (compared as bytes: a NaN value is
/// not equal to itself).
pub fn frame(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((frame, used))) = decode_frame(rest, MAX_FRAME) {
        assert!(used > 4 && used <= rest.len() && used - 4 <= MAX_FRAME);
        let mut wire = Vec::new();
        encode_frame(&frame, &mut wire);
        match decode_frame(&wire, usize::MAX) {
            Ok(Some((again, n))) => {
                let mut twice = Vec::new();
                encode_frame(&again, &mut twice);
                assert_eq!(twice, wire, "{frame:?} changed in a round trip");
                assert_eq!(n, wire.len());
            }
            other => panic!("re-encoded {frame:?} did not decode: {other:?}"),
        }
        rest = &rest[used..];
    }
}

const LIMITS: Limits = Limits {
    max_batch_bytes: 1 << 16,
    max_series: 1_000,
    max_readings: 10_000,
    max_timestamps: 1_000,
    max_name_len: 64,
};

fn compress(z: &mut Encoder<'static>, record: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(record.len() + 64);
    let mut input = InBuffer::around(record);
    while input.pos() < record.len() {
        out.reserve(256);
        let pos = out.len();
        z.run(&mut input, &mut OutBuffer::around_pos(&mut out, pos))
            .ok()?;
    }
    loop {
        out.reserve(256);
        let pos = out.len();
        if z.flush(&mut OutBuffer::around_pos(&mut out, pos)).ok()? == 0 {
            return Some(out);
        }
    }
}

/// Arbitrary bytes as the batch payloads of one connection, fed to one
/// decoder until it refuses one. The first byte picks how the rest is cut
/// into payloads and whether they are sent as they are (a kind byte, then a
/// record or a piece of zstd stream) or as records compressed here first
/// into a zstd stream without kind bytes, as encoders did before them (the
/// record parser behind zstd, which random bytes rarely reach through it).
pub fn batch(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode >> 1).max(1);
    let Ok(mut dec) = BatchDecoder::new(LIMITS) else {
        return;
    };
    let mut z = if mode & 1 == 1 {
        let Ok(mut z) = Encoder::new(1) else { return };
        if z.set_parameter(CParameter::WindowLog(WINDOW_LOG)).is_err() {
            return;
        }
        Some(z)
    } else {
        None
    };
    for piece in rest.chunks(chunk) {
        let payload = match &mut z {
            Some(z) => match compress(z, piece) {
                Some(p) => p,
                None => return,
            },
            None => piece.to_vec(),
        };
        match dec.decode(&payload) {
            Ok(d) => {
                assert!(d.batch.readings() <= LIMITS.max_readings);
                assert!(d.batch.timestamps.len() <= LIMITS.max_timestamps);
                assert!(dec.series_count() <= LIMITS.max_series);
                for (i, def) in d.new_series.iter().enumerate() {
                    assert!(vcp_common::resource::validate(&def.resource).is_ok());
                    let first = dec.series_count() - d.new_series.len();
                    assert_eq!(def.id as usize, first + i, "dense ids");
                }
                for c in &d.batch.columns {
                    assert!((c.series as usize) < dec.series_count());
                }
            }
            Err(_) => break,
        }
    }
}
