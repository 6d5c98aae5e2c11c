//! See `vcp::fuzzing::batch`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vcp::fuzzing::batch(data));
