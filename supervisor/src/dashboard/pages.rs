//! The fleet, control plane, module and decision pages: tables over the
//! API's views (`api::views`), which already keep to what the caller may
//! see. Every number cell carries `data-field` and the id of its row's
//! subject (`data-host`, `data-plane`, `data-module`, `data-decision`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::format::{self, MISSING};
use super::{error_page, html, layout, Viewer};
use crate::api::views::{self, DecisionView, HostView, ModuleInPlane, ModuleView, PlaneView};
use crate::api::ApiState;

/// The page `title` at `active`, for `viewer`.
fn page(viewer: &Viewer, title: &str, active: &str, body: Markup) -> Response {
    html(layout::page(title, Some(viewer.principal()), active, body))
}

/// `GET /ui`: every host the caller sees, its connection and utilisation.
pub async fn fleet(State(s): State<ApiState>, viewer: Viewer) -> Response {
    match views::hosts(&*s.control, &viewer) {
        Ok(hosts) => page(&viewer, "Fleet", "/ui", fleet_body(&hosts)),
        Err(e) => error_page(Some(viewer.principal()), e),
    }
}

fn fleet_body(hosts: &[HostView]) -> Markup {
    let connected = hosts.iter().filter(|h| h.connected).count();
    html! {
        h1 { "Fleet" }
        p {
            span id="host-count" { (hosts.len()) } " hosts, "
            span id="connected-count" { (connected) } " connected"
        }
        table id="hosts" {
            thead { tr {
                th { "Host" } th { "Connected" } th class="num" { "CPU" }
                th class="num" { "Memory used" } th class="num" { "Memory total" }
                th { "Last seen (UTC)" }
            } }
            tbody {
                @for h in hosts {
                    tr data-host=(h.id) {
                        td data-host=(h.id) data-field="id" { (h.id) }
                        td class=[(!h.connected).then_some("no")] data-host=(h.id) data-field="connected" {
                            (format::yes_no(h.connected))
                        }
                        td.num data-host=(h.id) data-field="cpu" { (format::percent_opt(h.cpu_utilization)) }
                        td.num data-host=(h.id) data-field="memory_used" { (format::gib_opt(h.memory_used_bytes)) }
                        td.num data-host=(h.id) data-field="memory_total" { (format::gib_opt(h.memory_total_bytes)) }
                        td data-host=(h.id) data-field="last_seen" { (format::time(h.last_seen_ms)) }
                    }
                }
            }
        }
        @if hosts.is_empty() {
            p class="muted" { "No hosts." }
        }
    }
}

/// `GET /ui/control-planes`: planes with their modules per kind and
/// service sets.
pub async fn planes(State(s): State<ApiState>, viewer: Viewer) -> Response {
    match views::planes(&*s.control, &viewer) {
        Ok(planes) => page(
            &viewer,
            "Control planes",
            "/ui/control-planes",
            planes_body(&planes),
        ),
        Err(e) => error_page(Some(viewer.principal()), e),
    }
}

fn planes_body(planes: &[PlaneView]) -> Markup {
    html! {
        h1 { "Control planes" }
        table id="control-planes" {
            thead { tr {
                th { "Control plane" } th { "Customer" } th { "Source" }
                th { "Modules per kind" } th { "Service sets" }
            } }
            tbody {
                @for p in planes {
                    tr data-plane=(p.id) {
                        td data-plane=(p.id) data-field="id" { (p.id) }
                        td data-plane=(p.id) data-field="customer" { (p.customer) }
                        td data-plane=(p.id) data-field="source" { (p.source) }
                        td {
                            @if p.modules.is_empty() { span class="muted" { "none" } }
                            @for (kind, ids) in &p.modules {
                                div {
                                    (kind) ": "
                                    span data-plane=(p.id) data-kind=(kind) { (ids.join(", ")) }
                                }
                            }
                        }
                        td data-plane=(p.id) data-field="service_sets" { (p.service_sets.join(", ")) }
                    }
                }
            }
        }
        @if planes.is_empty() {
            p class="muted" { "No control planes." }
        }
    }
}

/// `GET /ui/modules`: the catalog with reputation and contribution per
/// control plane.
pub async fn modules(State(s): State<ApiState>, viewer: Viewer) -> Response {
    let catalog = views::modules(&*s.control, &viewer);
    page(&viewer, "Modules", "/ui/modules", modules_body(&catalog))
}

fn plane_cells(m: &ModuleView, p: &ModuleInPlane) -> Markup {
    let rep = p.reputation.as_ref();
    let cell = |f: fn(&vcp_core::reputation::Components) -> f64| {
        rep.map_or_else(|| MISSING.to_owned(), |r| format::score(f(r)))
    };
    let (id, plane) = (&m.id, &p.control_plane);
    html! {
        td data-module=(id) data-plane=(plane) data-field="control_plane" { (plane) }
        td data-module=(id) data-plane=(plane) data-field="connected" {
            (format::yes_no(p.connected))
            @if p.shadow { " (shadow)" }
        }
        td.num data-module=(id) data-plane=(plane) data-field="score" { (cell(|r| r.score)) }
        td.num data-module=(id) data-plane=(plane) data-field="feedback" { (cell(|r| r.feedback)) }
        td.num data-module=(id) data-plane=(plane) data-field="goal" { (cell(|r| r.goal)) }
        td.num data-module=(id) data-plane=(plane) data-field="deadline" { (cell(|r| r.deadline)) }
        td.num data-module=(id) data-plane=(plane) data-field="efficiency" { (cell(|r| r.efficiency)) }
        td.num data-module=(id) data-plane=(plane) data-field="contribution" { (format::score(p.contribution)) }
        td.num data-module=(id) data-plane=(plane) data-field="reward_share" { (format::percent(p.reward_share)) }
        td.num data-module=(id) data-plane=(plane) data-field="requests" { (p.requests) }
        td.num data-module=(id) data-plane=(plane) data-field="deadline_misses" { (p.deadline_misses) }
    }
}

fn modules_body(catalog: &[ModuleView]) -> Markup {
    html! {
        h1 { "Modules" }
        p class="muted" {
            "Reputation and its components are 0..1; contribution is the module's cumulative credit; "
            "reward share its part of the plane's credit."
        }
        table id="modules" {
            thead { tr {
                th { "Module" } th { "Kind" } th { "Vendor" } th { "Offered to" }
                th { "Control plane" } th { "Connected" }
                th class="num" { "Reputation" } th class="num" { "Feedback" } th class="num" { "Goal" }
                th class="num" { "Deadline" } th class="num" { "Efficiency" }
                th class="num" { "Contribution" } th class="num" { "Reward share" }
                th class="num" { "Requests" } th class="num" { "Deadline misses" }
            } }
            tbody {
                @for m in catalog {
                    @let rows = m.planes.len().max(1);
                    tr data-module=(m.id) {
                        td rowspan=(rows) data-module=(m.id) data-field="id" { (m.id) }
                        td rowspan=(rows) data-module=(m.id) data-field="kind" { (m.kind) }
                        td rowspan=(rows) data-module=(m.id) data-field="vendor" {
                            (m.vendor.as_deref().unwrap_or("operator (default)"))
                        }
                        td rowspan=(rows) data-module=(m.id) data-field="offered_to" {
                            (m.offered_to.as_deref().unwrap_or("everyone"))
                        }
                        @if let Some(first) = m.planes.first() {
                            (plane_cells(m, first))
                        } @else {
                            td colspan="11" class="muted" { "serves no control plane" }
                        }
                    }
                    @for p in m.planes.iter().skip(1) {
                        tr data-module=(m.id) { (plane_cells(m, p)) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DecisionParams {
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /ui/decisions?limit=`: the newest decisions in force (100 by
/// default), newest round first.
pub async fn decisions(
    State(s): State<ApiState>,
    viewer: Viewer,
    params: Result<Query<DecisionParams>, QueryRejection>,
) -> Response {
    let limit = match super::query(params) {
        Ok(q) => q.limit,
        Err(e) => return error_page(Some(viewer.principal()), e),
    };
    match views::decisions(&*s.control, &viewer, limit) {
        Ok(d) => page(&viewer, "Decisions", "/ui/decisions", decisions_body(&d)),
        Err(e) => error_page(Some(viewer.principal()), e),
    }
}

/// The key of a decision's cells: `plane|target|parameter`.
pub fn decision_key(d: &DecisionView) -> String {
    format!("{}|{}|{}", d.control_plane, d.target, d.parameter)
}

fn decisions_body(decisions: &[DecisionView]) -> Markup {
    html! {
        h1 { "Decisions" }
        p class="muted" { "The mediated decisions in force, newest round first." }
        table id="decisions" {
            thead { tr {
                th class="num" { "Round" } th { "Control plane" } th { "Target" } th { "Parameter" }
                th class="num" { "Value" } th { "Module" } th class="num" { "Contenders" }
            } }
            tbody {
                @for d in decisions {
                    @let key = decision_key(d);
                    tr data-decision=(key) {
                        td.num data-decision=(key) data-field="round" { (d.round) }
                        td data-decision=(key) data-field="control_plane" { (d.control_plane) }
                        td data-decision=(key) data-field="target" { (d.target) }
                        td data-decision=(key) data-field="parameter" { (d.parameter) }
                        td.num data-decision=(key) data-field="value" { (format::number(d.value)) }
                        td data-decision=(key) data-field="module" { (d.module) }
                        td.num data-decision=(key) data-field="contenders" { (d.contenders) }
                    }
                }
            }
        }
        @if decisions.is_empty() {
            p class="muted" { "No decisions in force." }
        }
    }
}
