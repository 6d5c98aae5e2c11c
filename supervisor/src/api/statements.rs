//! `/v1/statements/{account}`: an account's cost statement for a period,
//! as JSON or CSV, read from the ledger.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::Params;
use super::{blocking, ApiError, ApiState, Caller};
use crate::metrics::LedgerMetrics;
use vcp_store::ledger::{self, Format, LedgerReader, Period, Statement};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// `2026-11`, `2026-11-26`, `2026-11-26T10` or `all`; this month by default.
    #[serde(default)]
    pub period: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// This month's label.
pub fn this_month() -> String {
    let now = crate::unix_ms();
    let (y, m, _) = ledger::period::civil_from_days(now.div_euclid(86_400_000));
    format!("{y:04}-{m:02}")
}

/// The statement of `account` (a ledger account: `customer:<id>`,
/// `vendor:<id>` or `operator`) for `period`, if the caller may read it.
pub async fn statement(
    s: &ApiState,
    caller: &Caller,
    account: &str,
    period: Option<&str>,
) -> Result<Statement, ApiError> {
    if !caller.may_read_account(account) {
        return Err(ApiError::not_found(format!("no account {account:?}")));
    }
    let period = period.map_or_else(this_month, str::to_owned);
    let period = Period::parse(&period).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let dir = s.data_dir.clone();
    let account = account.to_owned();
    blocking(move || match LedgerReader::open(&dir) {
        Ok(r) => r.statement(&account, &period),
        // No ledger yet: nothing was charged.
        Err(ledger::LedgerError::NotFound { .. }) => {
            ledger::reader::build_statement(&account, &period.to_string(), Vec::new())
        }
        Err(e) => Err(e),
    })
    .await
}

pub async fn get_one(
    State(s): State<ApiState>,
    caller: Caller,
    Path(account): Path<String>,
    Params(q): Params<StatementQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "format {other:?}: expected \"json\" or \"csv\""
            )))
        }
    };
    let st = statement(&s, &caller, &account, q.period.as_deref()).await?;
    let ctype = if format == Format::Csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    Ok(([(CONTENT_TYPE, ctype)], ledger::render(&st, format)).into_response())
}

/// The ledger's figures for `/metrics`, if there is a ledger.
pub async fn ledger_metrics(s: &ApiState) -> Result<Option<LedgerMetrics>, ApiError> {
    let dir = s.data_dir.clone();
    tokio::task::spawn_blocking(move || match LedgerReader::open(&dir) {
        Ok(r) => LedgerMetrics::read(&r)
            .map(Some)
            .map_err(ApiError::internal),
        Err(ledger::LedgerError::NotFound { .. }) => Ok(None),
        Err(e) => Err(ApiError::internal(e)),
    })
    .await
    .map_err(ApiError::internal)?
}

/// One point of an account's cost over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CostPoint {
    pub at_ms: i64,
    /// What the account paid up to `at_ms`, micro-units.
    pub cumulative: i64,
}

/// The statement's running total, one point per distinct charge time.
pub fn cost_series(st: &Statement) -> Vec<CostPoint> {
    let mut lines: Vec<_> = st.lines.iter().map(|l| (l.at_ms, l.amount)).collect();
    lines.sort_by_key(|l| l.0);
    let mut out: Vec<CostPoint> = Vec::new();
    let mut total: i64 = 0;
    for (at_ms, amount) in lines {
        total = total.saturating_add(amount);
        match out.last_mut() {
            Some(p) if p.at_ms == at_ms => p.cumulative = total,
            _ => out.push(CostPoint {
                at_ms,
                cumulative: total,
            }),
        }
    }
    out
}
