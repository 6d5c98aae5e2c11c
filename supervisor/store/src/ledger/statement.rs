//! Statements and their renderings: an aligned table, JSON, CSV.
//!
//! Money is printed from micro-units as currency units with six decimals
//! (`12.345678`) by integer division, never through a float. In JSON the
//! amounts stay integer micro-units.

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// One charge as seen from the statement's account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub at_ms: i64,
    /// RFC 3339, UTC.
    pub time: String,
    pub module: String,
    pub control_plane: String,
    pub kind: String,
    pub description: String,
    pub quantity: f64,
    /// Micro-units per unit.
    pub unit_price: i64,
    /// Micro-units: positive when the account pays, negative when it is paid.
    pub amount: i64,
    /// The other account of the charge.
    pub counterparty: String,
}

/// An account's charges in a period. Whole, its `lines` sum exactly to
/// `total`; a page of it (see [`super::pages`]) holds some of the lines,
/// with the subtotals, total and `line_count` of the whole period and the
/// cursor of the `next` page.
/// A quantity as people read it: at most six decimals, no trailing zeros.
fn quantity(q: f64) -> String {
    let s = format!("{q:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub account: String,
    pub period: String,
    pub lines: Vec<Line>,
    /// Lines in the whole period.
    pub line_count: u64,
    /// Where the next page starts, if more lines follow.
    pub next: Option<String>,
    pub subtotals_by_module: Vec<(String, i64)>,
    pub subtotals_by_kind: Vec<(String, i64)>,
    pub total: i64,
}

#[derive(Serialize)]
struct ByModule<'a> {
    module: &'a str,
    amount: i64,
}

#[derive(Serialize)]
struct ByKind<'a> {
    kind: &'a str,
    amount: i64,
}

#[derive(Serialize)]
struct Subtotals<'a> {
    by_module: Vec<ByModule<'a>>,
    by_kind: Vec<ByKind<'a>>,
}

/// `{ account, period, lines, line_count, next, subtotals: { by_module,
/// by_kind }, total }`.
impl Serialize for Statement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let subtotals = Subtotals {
            by_module: (self.subtotals_by_module.iter())
                .map(|(m, a)| ByModule {
                    module: m,
                    amount: *a,
                })
                .collect(),
            by_kind: (self.subtotals_by_kind.iter())
                .map(|(k, a)| ByKind {
                    kind: k,
                    amount: *a,
                })
                .collect(),
        };
        let mut st = s.serialize_struct("Statement", 7)?;
        st.serialize_field("account", &self.account)?;
        st.serialize_field("period", &self.period)?;
        st.serialize_field("lines", &self.lines)?;
        st.serialize_field("line_count", &self.line_count)?;
        st.serialize_field("next", &self.next)?;
        st.serialize_field("subtotals", &subtotals)?;
        st.serialize_field("total", &self.total)?;
        st.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Micro-units as currency units with six decimals: `-1234567` → `-1.234567`.
pub fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

pub fn render(statement: &Statement, format: Format) -> String {
    match format {
        Format::Table => table(statement),
        Format::Json => serde_json::to_string_pretty(statement)
            // Only string keys and numbers: serialization cannot fail.
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string())),
        Format::Csv => csv(statement),
    }
}

/// Control characters would break the table's rows.
fn cell(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Rows of cells padded to their column's width; `right[i]` right-aligns.
fn columns(out: &mut String, rows: &[Vec<String>], right: &[bool], indent: &str) {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (i, text) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - text.chars().count());
            if right[i] {
                line.push_str(&pad);
                line.push_str(text);
            } else {
                line.push_str(text);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn table(s: &Statement) -> String {
    let mut out = format!(
        "Statement for {}, period {}\n\n",
        cell(&s.account),
        s.period
    );
    if s.lines.is_empty() {
        out.push_str("(no charges)\n");
    } else {
        let header = [
            "TIME",
            "MODULE",
            "CONTROL PLANE",
            "KIND",
            "DESCRIPTION",
            "QUANTITY",
            "UNIT PRICE",
            "AMOUNT",
            "COUNTERPARTY",
        ];
        let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        rows.extend(s.lines.iter().map(|l| {
            vec![
                l.time.clone(),
                cell(&l.module),
                cell(&l.control_plane),
                cell(&l.kind),
                cell(&l.description),
                quantity(l.quantity),
                money(l.unit_price),
                money(l.amount),
                cell(&l.counterparty),
            ]
        }));
        let right = [false, false, false, false, false, true, true, true, false];
        columns(&mut out, &rows, &right, "");
    }
    // Subtotals and the total in one two-column table so the amounts align.
    let mut rows = Vec::new();
    let mut sections = Vec::new();
    for (title, subtotals) in [
        ("Subtotals by module:", &s.subtotals_by_module),
        ("Subtotals by kind:", &s.subtotals_by_kind),
    ] {
        sections.push((title, rows.len(), subtotals.len()));
        rows.extend(subtotals.iter().map(|(n, a)| vec![cell(n), money(*a)]));
    }
    rows.push(vec!["TOTAL".to_string(), money(s.total)]);
    let mut body = String::new();
    columns(&mut body, &rows, &[false, true], "  ");
    let body: Vec<&str> = body.lines().collect();
    for (title, at, len) in sections {
        out.push('\n');
        out.push_str(title);
        out.push('\n');
        for line in &body[at..at + len] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    if let Some(total) = body.last() {
        out.push_str(total);
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting: fields with commas, quotes or line breaks are quoted.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One row per line, amounts as currency units; `\n` line endings.
fn csv(s: &Statement) -> String {
    let mut out = String::from(
        "account,period,time,module,control_plane,kind,description,quantity,unit_price,amount,counterparty\n",
    );
    for l in &s.lines {
        let fields = [
            csv_field(&s.account),
            csv_field(&s.period),
            csv_field(&l.time),
            csv_field(&l.module),
            csv_field(&l.control_plane),
            csv_field(&l.kind),
            csv_field(&l.description),
            quantity(l.quantity),
            money(l.unit_price),
            money(l.amount),
            csv_field(&l.counterparty),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}
