//! See `vcp::fuzzing::config`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vcp::fuzzing::config(data));
