//! See `vcp::fuzzing::agent_session`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vcp::fuzzing::agent_session(data));
