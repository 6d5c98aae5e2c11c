//! The frame of every page: head, inline style, the navigation bar and
//! who is signed in.

use maud::{html, Markup, DOCTYPE};

use vcp_store::accounts::Principal;

/// The navigation bar's entries: path and label.
pub const NAV: [(&str, &str); 5] = [
    ("/ui", "Fleet"),
    ("/ui/control-planes", "Control planes"),
    ("/ui/modules", "Modules"),
    ("/ui/decisions", "Decisions"),
    ("/ui/statement", "Statement"),
];

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1b1f24; background: #fafbfc; }
nav { background: #24292f; padding: 0 16px; display: flex; gap: 4px; align-items: center; }
nav a { color: #d0d7de; text-decoration: none; padding: 10px 10px; display: inline-block; }
nav a.active, nav a:hover { color: #fff; background: #3b434b; }
nav .who { margin-left: auto; color: #8c959f; }
nav .who form { display: inline; }
nav .who button { background: none; border: none; color: #d0d7de; cursor: pointer; font: inherit; }
main { padding: 8px 24px 32px; }
table { border-collapse: collapse; margin: 8px 0 16px; background: #fff; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #8c959f; }
.no { color: #cf222e; }
#total { font-weight: bold; }
svg { background: #fff; border: 1px solid #d0d7de; }
svg .axis { stroke: #57606a; stroke-width: 1; }
svg polyline.cost { stroke: #0969da; stroke-width: 2; }
svg circle.cost { fill: #0969da; }
svg text { font-size: 11px; fill: #57606a; }
form.inline { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
";

/// A whole page: `title`, the navigation (with `active` marked) when
/// someone is signed in, and `body`.
pub fn page(title: &str, viewer: Option<&Principal>, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vcp" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                nav {
                    @for (path, label) in NAV {
                        a href=(path) class=[(path == active).then_some("active")] { (label) }
                    }
                    @if let Some(v) = viewer {
                        span class="who" {
                            span id="account" { (v.account) } " (" (v.role) ") "
                            form method="post" action="/ui/logout" {
                                button type="submit" { "sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}
