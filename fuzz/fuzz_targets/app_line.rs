//! See `vcp::fuzzing::app_line`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vcp::fuzzing::app_line(data));
