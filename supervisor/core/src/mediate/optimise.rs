//! Optimisation: placing a service set's `N` instances across hosts.
//!
//! Each bid is a proposed placement `p_m` (instances per host) with a weight
//! `w_m` (reputation). The mediated placement `x` (Σ x = N, `x_h ≤ cap_h`)
//! minimises
//!
//! ```text
//! f(x) = Σ_m ŵ_m · L1(x, p_m)  +  λ · max_h x_h / N
//! ```
//!
//! where `ŵ_m = w_m / Σ w` (equal weights if every weight is 0; proposals
//! with a non-finite weight are ignored, negative weights count as 0), the
//! first term keeps close to what reputable modules asked for, and the
//! second — the spread term — discourages correlated failure by keeping
//! the busiest host light (`0` when `N = 0`). A negative or non-finite `λ`
//! counts as 0. Proposal entries beyond the host count are ignored; missing
//! entries count as 0.
//!
//! Search (deterministic for a given seed and budget):
//! 1. greedy start: the weighted mean proposal, clamped to capacities,
//!    scaled to `N` by water-filling (hosts nobody proposed share what is
//!    left equally), rounded by largest remainder;
//! 2. hill climbing: each iteration applies the best single-instance move
//!    between two hosts (ties: lowest source, then lowest destination host)
//!    if it lowers `f` by more than 1e-12, until none does;
//! 3. `restarts` times: from the best placement so far, `min(N, hosts)`
//!    random moves (seeded `SmallRng`), then hill climbing again.
//!
//! Budget: at most `max_iterations` iterations (moves tried or perturbation
//! moves), and the clock `now()` is read every [`CHECK_EVERY`] iterations
//! (first before any work) and the search stops once it reaches `deadline`.
//! The best placement found is returned; the greedy start is always valid.
//! Cost per iteration: O(hosts · proposals + hosts²), no allocation once the
//! [`Scratch`] buffers have grown.
//!
//! Influence of proposal `m`: `ŵ_m / (1 + L1(x, p_m))`, normalised to sum 1.

use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::capacity::water_fill;
use super::SmallRng;

/// How often (in iterations) the clock is read.
pub const CHECK_EVERY: u64 = 32;
const EPS: f64 = 1e-12;

/// One module's proposed placement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal<'a> {
    /// Instances per host.
    pub counts: &'a [u32],
    /// The module's reputation.
    pub weight: f64,
}

/// What to place.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// `N`, the service set's total instances.
    pub instances: u32,
    /// Max instances per host.
    pub capacities: &'a [u32],
    pub proposals: &'a [Proposal<'a>],
    /// Weight of the spread term (1 by default in [`super::Policy`]).
    pub lambda: f64,
}

/// The search budget and seed.
#[derive(Clone, Copy)]
pub struct Search<'a> {
    pub deadline: Instant,
    pub now: &'a dyn Fn() -> Instant,
    pub max_iterations: u64,
    pub restarts: u32,
    pub seed: u64,
}

/// Buffers reused between calls (they keep their capacity).
#[derive(Debug, Default)]
pub struct Scratch {
    best: Vec<u32>,
    real: Vec<f64>,
    order: Vec<usize>,
    rem: Vec<f64>,
    add: Vec<f64>,
    norm: Vec<f64>,
}

/// The outcome of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// `f(x)` of the returned placement.
    pub objective: f64,
    pub iterations: u64,
    /// Restarts started.
    pub restarts: u32,
    /// Whether the deadline stopped the search.
    pub out_of_time: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("the placement has {out} entries for {hosts} hosts")]
    Shape { out: usize, hosts: usize },
    #[error("{instances} instances exceed the hosts' total capacity {capacity}")]
    Infeasible { instances: u32, capacity: u64 },
}

/// Finds a placement into `out` (one entry per host) and writes each
/// proposal's influence. Errors (with `out` zeroed when its shape is
/// right) if `out` and `capacities` differ in length or the capacities
/// cannot hold `N`.
pub fn place(
    problem: &Problem,
    search: &Search,
    scratch: &mut Scratch,
    out: &mut [u32],
    influence: &mut [f64],
) -> Result<Placed, PlaceError> {
    super::clear(influence, problem.proposals.len());
    let hosts = problem.capacities.len();
    if out.len() != hosts {
        return Err(PlaceError::Shape {
            out: out.len(),
            hosts,
        });
    }
    out.fill(0);
    let capacity: u64 = problem.capacities.iter().map(|&c| u64::from(c)).sum();
    if u64::from(problem.instances) > capacity {
        return Err(PlaceError::Infeasible {
            instances: problem.instances,
            capacity,
        });
    }
    normalise(problem.proposals, &mut scratch.norm);
    greedy(problem, scratch, out);
    let lambda = spread_weight(problem);

    let mut rng = SmallRng::seed_from_u64(search.seed);
    let mut it = 0u64;
    let mut out_of_time = false;
    let mut restarts = 0;
    scratch.best.clear();
    scratch.best.extend_from_slice(out);
    let mut best = objective_with(problem, &scratch.norm, out);
    'search: for r in 0..=search.restarts {
        if r > 0 {
            restarts = r;
            out.copy_from_slice(&scratch.best);
            for _ in 0..problem.instances.min(hosts as u32) {
                if it >= search.max_iterations {
                    break;
                }
                perturb(&mut rng, problem.capacities, out);
                it += 1;
            }
        }
        loop {
            if it >= search.max_iterations {
                break 'search;
            }
            if it.is_multiple_of(CHECK_EVERY) && (search.now)() >= search.deadline {
                out_of_time = true;
                break 'search;
            }
            it += 1;
            if !climb(problem, lambda, scratch, out) {
                break;
            }
        }
        let f = objective_with(problem, &scratch.norm, out);
        if f < best - EPS {
            best = f;
            scratch.best.copy_from_slice(out);
        }
    }
    // A search cut short may have improved on the best mid-climb.
    let f = objective_with(problem, &scratch.norm, out);
    if f < best - EPS {
        best = f;
    } else {
        out.copy_from_slice(&scratch.best);
    }

    let mut total = 0.0;
    for (x, (p, w)) in influence
        .iter_mut()
        .zip(problem.proposals.iter().zip(&scratch.norm))
    {
        *x = w / (1.0 + l1(out, p.counts));
        total += *x;
    }
    if total > 0.0 {
        for x in influence.iter_mut().take(problem.proposals.len()) {
            *x /= total;
        }
    }
    Ok(Placed {
        objective: best,
        iterations: it,
        restarts,
        out_of_time,
    })
}

/// `f(x)` for a placement (allocates a small buffer: not for the hot path).
pub fn objective(problem: &Problem, x: &[u32]) -> f64 {
    let mut norm = Vec::new();
    normalise(problem.proposals, &mut norm);
    objective_with(problem, &norm, x)
}

fn objective_with(problem: &Problem, norm: &[f64], x: &[u32]) -> f64 {
    let mut f = 0.0;
    for (p, w) in problem.proposals.iter().zip(norm) {
        if *w > 0.0 {
            f += w * l1(x, p.counts);
        }
    }
    if problem.instances > 0 {
        let max = x.iter().copied().max().unwrap_or(0);
        f += spread_weight(problem) * f64::from(max) / f64::from(problem.instances);
    }
    f
}

fn spread_weight(problem: &Problem) -> f64 {
    if problem.lambda.is_finite() && problem.lambda > 0.0 {
        problem.lambda
    } else {
        0.0
    }
}

fn count(p: &[u32], h: usize) -> u32 {
    p.get(h).copied().unwrap_or(0)
}

fn l1(x: &[u32], p: &[u32]) -> f64 {
    let d: u64 = (0..x.len())
        .map(|h| u64::from(x[h].abs_diff(count(p, h))))
        .sum();
    d as f64
}

/// Normalised proposal weights `ŵ_m` into `norm`.
fn normalise(proposals: &[Proposal], norm: &mut Vec<f64>) {
    let ok = |w: f64| w.is_finite().then_some(w.max(0.0));
    let top = proposals
        .iter()
        .filter_map(|p| ok(p.weight))
        .fold(0.0, f64::max);
    norm.clear();
    norm.extend(proposals.iter().map(|p| match ok(p.weight) {
        Some(w) if top > 0.0 => w / top,
        Some(_) => 1.0,
        None => 0.0,
    }));
    let total: f64 = norm.iter().sum();
    if total > 0.0 {
        norm.iter_mut().for_each(|w| *w /= total);
    }
}

/// The greedy start into `x` (Σ x = N, x ≤ cap; the caller checked
/// feasibility).
fn greedy(problem: &Problem, s: &mut Scratch, x: &mut [u32]) {
    let caps = problem.capacities;
    let hosts = caps.len();
    let n = problem.instances;
    s.real.clear();
    s.real.extend((0..hosts).map(|h| {
        let t: f64 = problem
            .proposals
            .iter()
            .zip(&s.norm)
            .map(|(p, w)| w * f64::from(count(p.counts, h)))
            .sum();
        t.clamp(0.0, f64::from(caps[h]))
    }));
    // Scale the targets to N: water-fill N over hosts (ask = capacity,
    // weight = target); unproposed hosts share the rest equally. Targets
    // are kept in `add` while `real` receives the shares.
    s.add.clear();
    s.add.extend_from_slice(&s.real);
    let cap = |h: usize| f64::from(caps[h]);
    let target = &s.add;
    s.order.clear();
    s.order
        .extend((0..hosts).filter(|&h| caps[h] > 0 && target[h] > 0.0));
    s.real.fill(0.0);
    let used = water_fill(&mut s.order, f64::from(n), cap, |h| target[h], &mut s.real);
    s.order.clear();
    s.order
        .extend((0..hosts).filter(|&h| caps[h] > 0 && target[h] <= 0.0));
    water_fill(&mut s.order, f64::from(n) - used, cap, |_| 1.0, &mut s.real);

    // Largest remainder.
    let mut placed: u64 = 0;
    for h in 0..hosts {
        x[h] = (s.real[h].floor().max(0.0) as u32).min(caps[h]);
        placed += u64::from(x[h]);
    }
    let real = &s.real;
    s.order.clear();
    s.order.extend(0..hosts);
    s.order.sort_unstable_by(|&a, &b| {
        let fa = real[a] - f64::from(x[a]);
        let fb = real[b] - f64::from(x[b]);
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    let n = u64::from(n);
    for &h in &s.order {
        if placed >= n {
            break;
        }
        if x[h] < caps[h] && real[h] > f64::from(x[h]) {
            x[h] += 1;
            placed += 1;
        }
    }
    // Rounding leftovers, either way.
    for h in 0..hosts {
        if placed >= n {
            break;
        }
        let more = u64::from(caps[h] - x[h]).min(n - placed);
        x[h] += more as u32;
        placed += more;
    }
    for h in (0..hosts).rev() {
        if placed <= n {
            break;
        }
        let less = u64::from(x[h]).min(placed - n);
        x[h] -= less as u32;
        placed -= less;
    }
}

/// Applies the best improving single-instance move; `false` if none.
fn climb(problem: &Problem, lambda: f64, s: &mut Scratch, x: &mut [u32]) -> bool {
    let caps = problem.capacities;
    let hosts = caps.len();
    s.rem.clear();
    s.add.clear();
    for (h, &xh) in x.iter().enumerate() {
        let (mut rem, mut add) = (0.0, 0.0);
        for (p, w) in problem.proposals.iter().zip(&s.norm) {
            let c = count(p.counts, h);
            rem += if c >= xh { *w } else { -w };
            add += if c <= xh { *w } else { -w };
        }
        s.rem.push(rem);
        s.add.push(add);
    }
    let max = x.iter().copied().max().unwrap_or(0);
    let at_max = x.iter().filter(|&&v| v == max).count();
    let per = if problem.instances > 0 {
        lambda / f64::from(problem.instances)
    } else {
        0.0
    };
    let mut best: Option<(f64, usize, usize)> = None;
    for a in (0..hosts).filter(|&a| x[a] > 0) {
        for b in (0..hosts).filter(|&b| b != a && x[b] < caps[b]) {
            let new_max = if x[b] + 1 > max {
                x[b] + 1
            } else if x[a] == max && at_max == 1 && x[b] + 1 < max {
                max - 1
            } else {
                max
            };
            let d = s.rem[a] + s.add[b] + per * (f64::from(new_max) - f64::from(max));
            if d < -EPS && best.is_none_or(|(bd, _, _)| d < bd) {
                best = Some((d, a, b));
            }
        }
    }
    match best {
        Some((_, a, b)) => {
            x[a] -= 1;
            x[b] += 1;
            true
        }
        None => false,
    }
}

/// One random move of an instance to another host with room.
fn perturb(rng: &mut SmallRng, caps: &[u32], x: &mut [u32]) {
    let hosts = caps.len();
    if hosts < 2 {
        return;
    }
    let s = rng.random_range(0..hosts);
    let Some(a) = (0..hosts).map(|j| (s + j) % hosts).find(|&h| x[h] > 0) else {
        return;
    };
    let s = rng.random_range(0..hosts);
    if let Some(b) = (0..hosts)
        .map(|j| (s + j) % hosts)
        .find(|&h| h != a && x[h] < caps[h])
    {
        x[a] -= 1;
        x[b] += 1;
    }
}

#[cfg(test)]
#[path = "optimise_tests.rs"]
mod tests;
