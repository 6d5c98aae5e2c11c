//! The cost chart: an account's cumulative cost over time as an inline,
//! server-rendered SVG line chart (no script). The x axis is time, the y
//! axis money; both carry their minimum and maximum as labels.
//!
//! Degenerate inputs draw without dividing by zero: no points draw the
//! axes and "no charges"; one point (or points all at one time, or one
//! value) maps its flat range to a range one unit wide, so every
//! coordinate is finite and inside the view box.

use maud::{html, Markup};

use super::format;
use crate::api::statements::CostPoint;

/// The view box: width and height in SVG user units.
pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 240.0;
/// Space for the labels: left, right, top, bottom.
const LEFT: f64 = 96.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

/// A linear map from `[lo, hi]` onto `[from, to]`; a flat range maps to
/// the middle of the target.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn new(lo: f64, hi: f64, from: f64, to: f64) -> Scale {
        Scale { lo, hi, from, to }
    }

    fn map(&self, v: f64) -> f64 {
        let span = self.hi - self.lo;
        let t = if span > 0.0 && span.is_finite() {
            ((v - self.lo) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.from + t * (self.to - self.from)
    }
}

/// SVG coordinates: one decimal.
fn c(v: f64) -> String {
    format!("{v:.1}")
}

/// The time of an x label: `2026-11-26 10:04:05.123` (UTC).
fn time_label(at_ms: i64) -> String {
    format::time(at_ms)
        .replacen('T', " ", 1)
        .replacen('Z', "", 1)
}

/// The chart of `points` (cumulative cost, in time order).
pub fn cost_chart(points: &[CostPoint]) -> Markup {
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y_top, y_bottom) = (TOP, HEIGHT - BOTTOM);
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    let axes = html! {
        line class="axis" x1=(c(x0)) y1=(c(y_bottom)) x2=(c(x1)) y2=(c(y_bottom)) {}
        line class="axis" x1=(c(x0)) y1=(c(y_top)) x2=(c(x0)) y2=(c(y_bottom)) {}
    };
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! {
            svg id="cost-chart" xmlns="http://www.w3.org/2000/svg" viewBox=(view_box)
                width=(WIDTH) height=(HEIGHT) role="img" aria-label="cumulative cost: no charges" {
                (axes)
                text x=(c((x0 + x1) / 2.0)) y=(c((y_top + y_bottom) / 2.0)) text-anchor="middle" { "no charges" }
            }
        };
    };
    let lo = points.iter().map(|p| p.cumulative).min().unwrap_or(0);
    let hi = points.iter().map(|p| p.cumulative).max().unwrap_or(0);
    let xs = Scale::new(first.at_ms as f64, last.at_ms as f64, x0, x1);
    // Larger values higher up: y decreases as the value grows.
    let ys = Scale::new(lo as f64, hi as f64, y_bottom, y_top);
    let dots: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (xs.map(p.at_ms as f64), ys.map(p.cumulative as f64)))
        .collect();
    let line = match dots[..] {
        // One point: a level line across the plot through it.
        [only] => vec![(x0, only.1), only, (x1, only.1)],
        _ => dots.clone(),
    };
    let polyline: Vec<String> = line
        .iter()
        .map(|(x, y)| format!("{},{}", c(*x), c(*y)))
        .collect();
    html! {
        svg id="cost-chart" xmlns="http://www.w3.org/2000/svg" viewBox=(view_box)
            width=(WIDTH) height=(HEIGHT) role="img"
            aria-label=(format!("cumulative cost from {} to {}", format::money(first.cumulative), format::money(last.cumulative))) {
            (axes)
            polyline class="cost" fill="none" points=(polyline.join(" ")) {}
            @for (p, (x, y)) in points.iter().zip(dots) {
                circle class="cost" cx=(c(x)) cy=(c(y)) r="2.5" {
                    title { (time_label(p.at_ms)) ": " (format::money(p.cumulative)) }
                }
            }
            text id="chart-y-max" x=(c(x0 - 6.0)) y=(c(y_top + 4.0)) text-anchor="end" { (format::money(hi)) }
            text id="chart-y-min" x=(c(x0 - 6.0)) y=(c(y_bottom)) text-anchor="end" { (format::money(lo)) }
            text id="chart-x-min" x=(c(x0)) y=(c(y_bottom + 18.0)) text-anchor="start" { (time_label(first.at_ms)) }
            text id="chart-x-max" x=(c(x1)) y=(c(y_bottom + 32.0)) text-anchor="end" { (time_label(last.at_ms)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, i64)]) -> Vec<CostPoint> {
        v.iter()
            .map(|&(at_ms, cumulative)| CostPoint { at_ms, cumulative })
            .collect()
    }

    /// The polyline's coordinates, and every number in the SVG's
    /// coordinate attributes.
    fn polyline(svg: &str) -> Vec<(f64, f64)> {
        let Some(start) = svg.find("points=\"") else {
            return Vec::new();
        };
        let rest = &svg[start + 8..];
        let list = &rest[..rest.find('"').unwrap()];
        list.split(' ')
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    fn attr_numbers(svg: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for name in [
            " x=\"", " y=\"", " x1=\"", " x2=\"", " y1=\"", " y2=\"", " cx=\"", " cy=\"",
        ] {
            for (i, _) in svg.match_indices(name) {
                let rest = &svg[i + name.len()..];
                out.push(rest[..rest.find('"').unwrap()].parse::<f64>().unwrap());
            }
        }
        out
    }

    fn inside(svg: &str) {
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        for (x, y) in polyline(svg) {
            assert!(
                (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                "{x},{y}"
            );
        }
        for v in attr_numbers(svg) {
            assert!(v.is_finite() && (0.0..=WIDTH).contains(&v), "{v} in {svg}");
        }
    }

    #[test]
    fn no_points_draw_axes_only() {
        let svg = cost_chart(&[]).into_string();
        inside(&svg);
        assert!(svg.contains("no charges") && !svg.contains("<polyline"));
        assert!(svg.contains("viewBox=\"0 0 640 240\""));
    }

    #[test]
    fn one_point_draws_a_level_line() {
        let svg = cost_chart(&pts(&[(1_000, 5_000_000)])).into_string();
        inside(&svg);
        let line = polyline(&svg);
        assert_eq!(line.len(), 3);
        assert!(line.iter().all(|p| p.1 == line[0].1));
        assert!(svg.contains(">5.000000</text>"));
    }

    #[test]
    fn many_points_rise_monotonically() {
        let mut cumulative = 0;
        let series: Vec<(i64, i64)> = (0..50)
            .map(|i| {
                cumulative += (i * 7919) % 1000;
                (1_700_000_000_000 + i * 60_000, cumulative)
            })
            .collect();
        let svg = cost_chart(&pts(&series)).into_string();
        inside(&svg);
        let line = polyline(&svg);
        assert_eq!(line.len(), series.len());
        for w in line.windows(2) {
            assert!(w[1].0 > w[0].0, "time goes right");
            assert!(w[1].1 <= w[0].1, "more cost is never lower: {w:?}");
        }
        // The extremes touch the plot's edges.
        assert_eq!(line[0].0, LEFT);
        assert_eq!(line.last().unwrap().0, WIDTH - RIGHT);
        assert_eq!(line[0].1, HEIGHT - BOTTOM);
        assert_eq!(line.last().unwrap().1, TOP);
        assert!(svg.contains(&format!(">{}</text>", format::money(cumulative))));
        assert!(svg.contains(">0.000000</text>"));
    }

    #[test]
    fn flat_and_negative_series_stay_finite() {
        // A vendor is paid: its cumulative cost falls below zero.
        let svg = cost_chart(&pts(&[(5, -10), (5, -10), (9, -30)])).into_string();
        inside(&svg);
        let svg = cost_chart(&pts(&[(5, 7), (9, 7)])).into_string();
        inside(&svg);
        let line = polyline(&svg);
        assert_eq!(line[0].1, line[1].1);
        let svg = cost_chart(&pts(&[(1, i64::MIN / 2), (2, i64::MAX / 2)])).into_string();
        inside(&svg);
    }
}
