//! The `vcp` command's library: fleet certificates, the loopback fleet used
//! by the demo and the tests, and the demo (its scenario, its SIMULATED
//! services and its report, in `demo/`), and the fleet bench with its
//! SIMULATED hosts (`fleet_bench/`).

pub mod bench_rounds;
pub mod certs;
pub mod demo;
pub mod fleet_bench;
pub mod fuzzing;
pub mod loopback;
