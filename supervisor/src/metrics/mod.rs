//! `/metrics`: the supervisor's counters in the Prometheus exposition format.
//!
//! Nothing here keeps state. Each scrape reads the values that already
//! exist (agent counters, round counters, module statistics, the judge's
//! published report, delivery counts), copies them into a [`Collector`]
//! registered in a fresh prometheus-client [`Registry`], and encodes it.
//! Reads are atomics and arc-swap loads, plus the two mutexes that rounds
//! never take: the fleet's agent table and the control's list of known
//! modules. The ledger is SQLite, so it is read by the caller
//! ([`LedgerMetrics::read`], off the async runtime) and passed in.
//!
//! Formats: prometheus-client writes OpenMetrics ([`render_openmetrics`]);
//! [`render`] turns that into the classic text format (version 0.0.4), the
//! one `promtool check metrics` and every Prometheus accept. The two differ
//! here only in how counters are named in `# HELP`/`# TYPE` (OpenMetrics
//! drops the `_total` suffix there) and in the `# EOF` terminator.
//!
//! Names: `vcp_` prefix, base units in the name (`_seconds`, `_bytes`;
//! money in `_microunits` of the ledger's currency), `_total` on counters.
//! Labels: `host`, `kind`, `policy`, `module`, `control_plane`,
//! `service_set`, `account`, `component`.

mod collect;
mod family;
mod process;
#[cfg(test)]
mod tests;

use collect::*;
use family::*;

use crate::overview::Overview;
use vcp_store::ledger::{LedgerError, LedgerReader, LedgerTotals};

/// `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of [`render_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (µs) of the round-time histogram's buckets, as exposed.
const ROUND_BUCKETS_US: [u64; 18] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000,
];

/// The ledger's figures for a scrape. Reading them is SQLite I/O, so the
/// caller does it off the async runtime (`spawn_blocking`) with its own
/// [`LedgerReader`] (`LedgerReader::open(data_dir)`, read-only, usable while
/// the biller writes) and passes the result to [`render`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerMetrics {
    pub totals: LedgerTotals,
    /// Every account's balance in micro-units (what it paid minus what it
    /// was paid: positive means it owes), sorted by account.
    pub balances: Vec<(String, i64)>,
}

impl LedgerMetrics {
    /// Totals (one read transaction) and every account's balance: two
    /// queries plus one per account.
    pub fn read(reader: &LedgerReader) -> Result<LedgerMetrics, LedgerError> {
        let totals = reader.totals()?;
        let balances = reader
            .accounts()?
            .into_iter()
            .map(|a| reader.account_balance(&a).map(|b| (a, b)))
            .collect::<Result<_, _>>()?;
        Ok(LedgerMetrics { totals, balances })
    }
}

/// Renders the supervisor's state in the Prometheus text exposition format
/// (version 0.0.4, [`CONTENT_TYPE`]). `ledger`: the ledger's figures read
/// for this scrape, `None` without a ledger (its metrics are then absent).
/// Cheap enough to call on the runtime: no I/O, no lock a round takes.
pub fn render(control: &dyn Overview, ledger: Option<&LedgerMetrics>) -> String {
    to_text_format(&render_openmetrics(control, ledger))
}

/// As [`render`], in the OpenMetrics text format ([`OPENMETRICS_CONTENT_TYPE`]),
/// as prometheus-client encodes it.
pub fn render_openmetrics(control: &dyn Overview, ledger: Option<&LedgerMetrics>) -> String {
    encode_openmetrics(collect(control, ledger))
}

/// Reads every value for one scrape.
fn collect(control: &dyn Overview, ledger: Option<&LedgerMetrics>) -> Families {
    let mut f = Families::default();
    ingest(&mut f, control);
    rounds(&mut f, control);
    modules(&mut f, control);
    configurations(&mut f, control);
    judge(&mut f, control);
    process::process(&mut f);
    if let Some(l) = ledger {
        ledger_metrics(&mut f, l);
    }
    f
}
