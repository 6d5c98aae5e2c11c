//! See `vcp::fuzzing::module_session`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vcp::fuzzing::module_session(data));
