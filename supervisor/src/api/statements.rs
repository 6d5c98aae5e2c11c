//! `/v1/statements/{account}`: an account's cost statement for a period,
//! as JSON or CSV, read from the ledger a page at a time: at most `limit`
//! lines (default [`DEFAULT_LINES`], at most
//! [`vcp_store::ledger::MAX_PAGE_LINES`]) after the cursor `after`, with
//! the subtotals, total and line count of the whole period; the next
//! page's cursor is `next` in JSON and a `Link: <…>; rel="next"` header in
//! either format.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::Params;
use super::{blocking, ApiError, ApiState, Caller};
use crate::metrics::LedgerMetrics;
use vcp_store::ledger::{self, Cursor, Format, LedgerReader, Period, Statement, MAX_PAGE_LINES};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// `2026-11`, `2026-11-26`, `2026-11-26T10` or `all`; this month by default.
    #[serde(default)]
    pub period: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
    /// Lines in this page.
    #[serde(default)]
    pub limit: Option<usize>,
    /// The previous page's `next`.
    #[serde(default)]
    pub after: Option<String>,
}

/// Lines in a page when no `limit` is given.
pub const DEFAULT_LINES: usize = 1000;

/// Which lines of a statement to read.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl Page {
    /// The page `limit` and `after` ask for; 422 past the largest page, 400
    /// for a cursor that is not one.
    pub fn parse(limit: Option<usize>, after: Option<&str>) -> Result<Page, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LINES);
        if limit > MAX_PAGE_LINES {
            return Err(ApiError::unprocessable(format!(
                "limit {limit} is over {MAX_PAGE_LINES} lines"
            )));
        }
        let after = after
            .filter(|a| !a.is_empty())
            .map(str::parse)
            .transpose()
            .map_err(ApiError::bad_request)?;
        Ok(Page { after, limit })
    }
}

/// This month's label.
pub fn this_month() -> String {
    let now = crate::unix_ms();
    let (y, m, _) = ledger::period::civil_from_days(now.div_euclid(86_400_000));
    format!("{y:04}-{m:02}")
}

/// Whether the caller may read `account`, and the period it asks for.
fn checked(caller: &Caller, account: &str, period: Option<&str>) -> Result<Period, ApiError> {
    if !caller.may_read_account(account) {
        return Err(ApiError::not_found(format!("no account {account:?}")));
    }
    let period = period.map_or_else(this_month, str::to_owned);
    Period::parse(&period).map_err(|e| ApiError::unprocessable(e.to_string()))
}

/// `f` on the ledger, on the blocking pool; `empty` when there is no
/// ledger yet (nothing was charged).
async fn read<T: Send + 'static>(
    s: &ApiState,
    empty: impl FnOnce() -> Result<T, ledger::LedgerError> + Send + 'static,
    f: impl FnOnce(&LedgerReader) -> Result<T, ledger::LedgerError> + Send + 'static,
) -> Result<T, ApiError> {
    let dir = s.data_dir.clone();
    blocking(move || match LedgerReader::open(&dir) {
        Ok(r) => f(&r),
        Err(ledger::LedgerError::NotFound { .. }) => empty(),
        Err(e) => Err(e),
    })
    .await
}

/// A page of the statement of `account` (a ledger account:
/// `customer:<id>`, `vendor:<id>` or `operator`) for `period`, if the
/// caller may read it.
pub async fn statement(
    s: &ApiState,
    caller: &Caller,
    account: &str,
    period: Option<&str>,
    page: Page,
) -> Result<Statement, ApiError> {
    let period = checked(caller, account, period)?;
    let (label, account) = (period.to_string(), account.to_owned());
    let empty_account = account.clone();
    read(
        s,
        move || ledger::reader::build_statement(&empty_account, &label, Vec::new()),
        move |r| r.statement_page(&account, &period, page.after, page.limit),
    )
    .await
}

/// The cumulative cost of `account` over `period` at most `points`
/// times, if the caller may read it.
pub async fn cost_points(
    s: &ApiState,
    caller: &Caller,
    account: &str,
    period: Option<&str>,
    points: usize,
) -> Result<Vec<CostPoint>, ApiError> {
    let period = checked(caller, account, period)?;
    let account = account.to_owned();
    let points = read(
        s,
        || Ok(Vec::new()),
        move |r| r.cost_points(&account, &period, points),
    )
    .await?;
    Ok(points
        .into_iter()
        .map(|(at_ms, cumulative)| CostPoint { at_ms, cumulative })
        .collect())
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
    let page = Page::parse(q.limit, q.after.as_deref())?;
    let st = statement(&s, &caller, &account, q.period.as_deref(), page).await?;
    let ctype = if format == Format::Csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    let mut r = ([(CONTENT_TYPE, ctype)], ledger::render(&st, format)).into_response();
    if let Some(next) = &st.next {
        let fmt = if format == Format::Csv {
            "&format=csv"
        } else {
            ""
        };
        let link = format!(
            "</v1/statements/{account}?period={}&limit={}&after={next}{fmt}>; rel=\"next\"",
            st.period, page.limit
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
            r.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    Ok(r)
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
