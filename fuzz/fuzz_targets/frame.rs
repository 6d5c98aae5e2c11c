//! See `vcp::fuzzing::frame`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vcp::fuzzing::frame(data));
