//! `GET /ui/statement?account=customer:acme&period=2026-11&after=…`: an
//! account's cost statement (by default the caller's own ledger account
//! and this month) with its subtotals, total, a chart of the cumulative
//! cost (at most [`CHART_POINTS`] points) and a page of its lines (at most
//! [`MAX_LINES`], with a link to the next). The statement is
//! `api::statements::statement`'s, with the same access rule (another
//! account is 404) and period syntax (422).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::{chart, error_page, format, html, layout, Viewer};
use crate::api::statements::{self, CostPoint, Page};
use crate::api::ApiState;
use vcp_store::ledger::Statement;

/// The most lines a page's table shows; the chart, subtotals and total
/// always cover every line.
pub const MAX_LINES: usize = 1000;
/// The most points of the chart.
pub const CHART_POINTS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct StatementParams {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

pub async fn page(
    State(s): State<ApiState>,
    viewer: Viewer,
    params: Result<Query<StatementParams>, QueryRejection>,
) -> Response {
    let who = viewer.principal();
    let params = match super::query(params) {
        Ok(q) => q,
        Err(e) => return error_page(Some(who), e),
    };
    let account = params
        .account
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| who.ledger_account());
    let period = params.period.filter(|p| !p.is_empty());
    let shown = async {
        let page = Page::parse(Some(MAX_LINES), params.after.as_deref())?;
        let st = statements::statement(&s, &viewer.0, &account, period.as_deref(), page).await?;
        let chart =
            statements::cost_points(&s, &viewer.0, &account, period.as_deref(), CHART_POINTS);
        Ok::<_, crate::api::ApiError>((st, chart.await?))
    };
    match shown.await {
        Ok((st, chart)) => html(layout::page(
            "Statement",
            Some(who),
            "/ui/statement",
            body(&st, &chart),
        )),
        Err(e) => error_page(Some(who), e),
    }
}

fn body(st: &Statement, chart: &[CostPoint]) -> Markup {
    let next = st.next.as_ref().map(|n| {
        format!(
            "/ui/statement?account={}&period={}&after={n}",
            super::login::encode(&st.account),
            super::login::encode(&st.period)
        )
    });
    html! {
        h1 { "Statement" }
        form.inline method="get" action="/ui/statement" {
            label { "Account " input name="account" value=(st.account) size="32"; }
            label { "Period " input name="period" value=(st.period) size="14" placeholder="2026-11, 2026-11-26 or all"; }
            button type="submit" { "Show" }
        }
        p {
            "Account " span id="statement-account" { (st.account) }
            ", period " span id="statement-period" { (st.period) }
            ": total " span id="total" { (format::money(st.total)) }
            " (" span id="line-count" { (st.line_count) } " lines)"
        }
        p class="muted" {
            "Amounts in currency units; positive when the account pays, negative when it is paid."
        }
        h2 { "Cumulative cost" }
        (chart::cost_chart(chart))
        h2 { "Subtotals" }
        table id="subtotals-by-kind" {
            thead { tr { th { "Kind" } th class="num" { "Amount" } } }
            tbody {
                @for (kind, amount) in &st.subtotals_by_kind {
                    tr { td { (kind) } td.num data-subtotal-kind=(kind) { (format::money(*amount)) } }
                }
            }
        }
        table id="subtotals-by-module" {
            thead { tr { th { "Module" } th class="num" { "Amount" } } }
            tbody {
                @for (module, amount) in &st.subtotals_by_module {
                    tr {
                        td { @if module.is_empty() { span.muted { "(no module)" } } @else { (module) } }
                        td.num data-subtotal-module=(module) { (format::money(*amount)) }
                    }
                }
            }
        }
        h2 { "Lines" }
        @if st.lines.len() as u64 != st.line_count {
            p class="muted" { (st.lines.len()) " of " (st.line_count) " lines." }
        }
        table id="lines" {
            thead { tr {
                th { "Time (UTC)" } th { "Module" } th { "Control plane" } th { "Kind" }
                th { "Description" } th class="num" { "Quantity" } th class="num" { "Unit price" }
                th class="num" { "Amount" } th { "Counterparty" }
            } }
            tbody {
                @for (i, l) in st.lines.iter().enumerate() {
                    tr data-line=(i) {
                        td data-line=(i) data-field="time" { (l.time) }
                        td data-line=(i) data-field="module" { (l.module) }
                        td data-line=(i) data-field="control_plane" { (l.control_plane) }
                        td data-line=(i) data-field="kind" { (l.kind) }
                        td data-line=(i) data-field="description" { (l.description) }
                        td.num data-line=(i) data-field="quantity" { (format::quantity(l.quantity)) }
                        td.num data-line=(i) data-field="unit_price" { (format::money(l.unit_price)) }
                        td.num data-line=(i) data-field="amount" { (format::money(l.amount)) }
                        td data-line=(i) data-field="counterparty" { (l.counterparty) }
                    }
                }
            }
            tfoot {
                tr {
                    th colspan="7" { "Total" }
                    th.num { (format::money(st.total)) }
                    th {}
                }
            }
        }
        @if let Some(next) = next {
            p { a id="next-page" href=(next) { "Next " (MAX_LINES) " lines" } }
        }
    }
}
