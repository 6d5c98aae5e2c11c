//! The `vcp` command's library: fleet certificates, the loopback fleet used
//! by the demo and the tests, the demo itself and its report.

pub mod bench_rounds;
pub mod certs;
pub mod closed_loop;
pub mod demo;
pub mod fuzzing;
pub mod loopback;
pub mod report;
pub mod scenario;
pub mod simulated;
