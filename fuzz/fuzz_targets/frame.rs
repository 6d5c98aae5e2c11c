//! Arbitrary bytes as a received stream: frames are decoded back to back
//! until more bytes are needed or one is refused. Must never panic; every
//! decoded frame must survive an encode/decode round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vcp_common::frame::{decode_frame, encode_frame};

const MAX_FRAME: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = decode_frame(rest, MAX_FRAME) {
        assert!(used > 4 && used <= rest.len() && used - 4 <= MAX_FRAME);
        let mut wire = Vec::new();
        encode_frame(&frame, &mut wire);
        match decode_frame(&wire, usize::MAX) {
            Ok(Some((again, n))) => {
                assert_eq!(again, frame);
                assert_eq!(n, wire.len());
            }
            other => panic!("re-encoded {frame:?} did not decode: {other:?}"),
        }
        rest = &rest[used..];
    }
});
