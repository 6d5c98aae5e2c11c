//! Fuzzing harnesses: each takes arbitrary bytes, drives one part of vcp
//! that faces the network or an operator's file, and panics when an
//! invariant breaks. The cargo-fuzz targets in `fuzz/` call them, and
//! `tests/fuzz_corpus.rs` replays the corpus in `fuzz/corpus/` through them
//! in the normal test suite. `seeds` writes that corpus's seeds.
//!
//! | target | drives | checks |
//! | --- | --- | --- |
//! | `frame` | frame decoder | no panic; decoded frames round-trip |
//! | `batch` | one connection's batch decoder | no panic; limits hold |
//! | `agent_session` | a whole agent session into a view | no panic; series within the limit; cursor monotone; no Ack before its commit, none past it |
//! | `module_session` | a whole module session into admission | no panic; one answer per solicitation; nothing billable that was not admitted |
//! | `app_line` | the agent's application-metrics parser | no panic; what it accepts is well formed |
//! | `config` | the supervisor's and agent's config parsers | no panic; accepted files keep their rules |

pub mod agent;
mod codec;
mod inputs;
pub mod module;
pub mod seeds;

pub use agent::agent_session;
pub use codec::{batch, frame};
pub use inputs::{app_line, config};
pub use module::module_session;

/// A harness: bytes in, a panic when an invariant breaks.
pub type Harness = fn(&[u8]);

/// Every target, by name.
pub const TARGETS: &[(&str, Harness)] = &[
    ("frame", frame),
    ("batch", batch),
    ("agent_session", agent_session),
    ("module_session", module_session),
    ("app_line", app_line),
    ("config", config),
];

/// Reads fuzzer bytes as a script of steps.
pub(crate) struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Script(data)
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }

    /// Up to `n` bytes (fewer at the end).
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}
