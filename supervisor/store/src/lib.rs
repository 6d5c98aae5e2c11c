//! vcp's durable store, everything the supervisor keeps on disk: each
//! agent's position (`agents`: exactly-once cursors and totals, written by
//! a group-committing thread), the double-entry ledger with its
//! checkpoint rows (`ledger`), accounts and their tokens (`accounts`), and
//! the planes provisioned through the API with customers' ratings
//! (`planes`). SQLite in WAL mode with `synchronous=FULL`; nothing is
//! acknowledged to a peer before its commit. It depends on the core's
//! vocabulary and on nothing of the supervisor's shell.

pub mod accounts;
pub mod agents;
pub mod ledger;
pub mod planes;

/// Wall-clock time in milliseconds since the Unix epoch (0 if the clock is
/// before it).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
