//! Interning of a round's targets and parameters to dense integer ids, so
//! that admission hashes each request's target once and mediation groups,
//! orders and compares requests by integers only.
//!
//! The tables live across rounds (service sets and parameters rarely
//! change): a target seen before costs one hash lookup and no allocation.
//! For each interned target the answers of the scopes it was checked
//! against are kept (scopes are immutable snapshots, compared by pointer),
//! so a request's scope check is a bit test. A scope's bit is freed when
//! nobody else holds the scope, or given to another scope when it has not
//! been asked for a round. The tables are dropped and rebuilt when they
//! grow well past what rounds use.
//!
//! Each round also keeps one owned copy of every target it admitted (the
//! first request's), which its decision takes, so deciding allocates no
//! target.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use std::hash::BuildHasher;
use vcp_common::module::Target;

use crate::plane::Scope;

/// FNV-1a over a target's text: the key decisions are ordered by (equal
/// targets, equal keys; colliding targets are ordered by their text).
pub(crate) fn target_hash(t: &Target) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    match t {
        Target::ServiceSet(s) => feed(s.as_bytes()),
        Target::Member { service_set, host } => {
            feed(service_set.as_bytes());
            feed(host.as_bytes());
        }
        Target::Resource { host, resource } => {
            feed(host.as_bytes());
            feed(resource.as_bytes());
        }
    }
    h
}

/// The most scopes whose answers are cached (one bit each).
const SCOPES: usize = 64;
/// The most parameter names kept: more (modules re-registering with new
/// output names) and the names are forgotten at the next round's start.
const PARAMS: usize = 1024;
/// No id marker.
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Info {
    /// [`target_hash`]: the decision order.
    order: u64,
    /// The next id whose lookup hash is the same as this one's.
    next: u32,
    /// Bit `b` set: `scopes[b]` was asked about this target, and whether
    /// it covers it.
    asked: u64,
    covered: u64,
}

/// Targets and parameters by id; see the module docs.
#[derive(Debug, Default)]
pub struct Interner {
    /// Parameter names by ordinal (declared outputs only; forgotten when
    /// more than [`PARAMS`]).
    pub(crate) params: Vec<Arc<str>>,
    param_ids: HashMap<Arc<str>, u32>,
    /// Per ordinal, its place in the decision order: parameters are
    /// decided in the order mediation first saw them ([`NONE`]: not yet).
    ranks: Vec<u32>,
    ranked: u32,
    targets: Vec<Target>,
    info: Vec<Info>,
    /// Lookup hash -> the first id with it (the others chain via `next`).
    by_hash: HashMap<u64, u32>,
    /// Ids in decision order: by (`order`, target).
    ordered: Vec<u32>,
    /// Ids interned since `ordered` was last brought up to date.
    fresh: Vec<u32>,
    merge: Vec<u32>,
    /// The scope of each cache bit, with the last round that asked it.
    scopes: Vec<Option<(Arc<Scope>, u64)>>,
    /// Rounds begun.
    epoch: u64,
    /// This round's owned copy of each target, by id.
    owned: Vec<Option<Target>>,
    /// Ids with an owned copy this round.
    held: Vec<u32>,
    /// Admitted requests' texts no longer needed, freed together once the
    /// round's decisions are made: freeing them one by one amid the
    /// round's large (de)allocations makes the allocator consolidate them
    /// again and again.
    spent_targets: Vec<Target>,
    spent_names: Vec<String>,
    /// Emptied answers.
    spent_buffers: Vec<Vec<vcp_common::module::Proposal>>,
    /// Distinct targets the last round decided about.
    pub(crate) used: usize,
    /// Per answer slot, the id each of its proposals named last round:
    /// modules tend to answer in the same order every round, so a guess
    /// checked by one comparison usually spares the hash lookup.
    hints: Vec<Vec<u32>>,
}

impl Interner {
    /// The ordinal of parameter `p`, interning it.
    pub fn param(&mut self, p: &str) -> u32 {
        if let Some(&o) = self.param_ids.get(p) {
            return o;
        }
        let name: Arc<str> = Arc::from(p);
        let o = self.params.len() as u32;
        self.params.push(name.clone());
        self.param_ids.insert(name, o);
        self.ranks.push(NONE);
        o
    }

    /// The decision-order rank of parameter `ordinal`, ranking it next if
    /// mediation has not seen it yet.
    pub(crate) fn rank(&mut self, ordinal: u32) -> u32 {
        let r = &mut self.ranks[ordinal as usize];
        if *r == NONE {
            *r = self.ranked;
            self.ranked += 1;
        }
        *r
    }

    pub fn param_name(&self, ordinal: u32) -> Arc<str> {
        self.params
            .get(ordinal as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// Interned targets (ids are below this).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn target(&self, id: u32) -> &Target {
        &self.targets[id as usize]
    }

    /// Starts a round: drops the last round's unused copies, and the
    /// tables when they hold far more than rounds use or keep scopes that
    /// are gone.
    pub fn begin(&mut self) {
        self.release();
        for id in self.held.drain(..) {
            self.owned[id as usize] = None;
        }
        if self.params.len() > PARAMS {
            self.params.clear();
            self.param_ids.clear();
            self.ranks.clear();
            self.ranked = 0;
        }
        self.epoch += 1;
        // A scope nobody else holds can never be asked about again.
        for b in 0..self.scopes.len() {
            if self.scopes[b]
                .as_ref()
                .is_some_and(|(s, _)| Arc::strong_count(s) == 1)
            {
                self.free_bit(b);
            }
        }
        if self.targets.len() > 2 * self.used + 1024 {
            self.targets.clear();
            self.info.clear();
            self.by_hash.clear();
            self.ordered.clear();
            self.fresh.clear();
            self.owned.clear();
            self.hints.clear();
        }
    }

    fn lookup_hash(&self, t: &Target) -> u64 {
        rustc_hash::FxBuildHasher.hash_one(t)
    }

    /// The id of `t`, if interned.
    pub fn find(&self, t: &Target) -> Option<u32> {
        self.find_hashed(t, self.lookup_hash(t))
    }

    fn find_hashed(&self, t: &Target, h: u64) -> Option<u32> {
        let mut id = *self.by_hash.get(&h)?;
        while id != NONE {
            if self.targets[id as usize] == *t {
                return Some(id);
            }
            id = self.info[id as usize].next;
        }
        None
    }

    /// The id of `t`, proposal `i` of the answer in `slot`, if interned;
    /// tries the id that proposal named last round first.
    pub fn find_at(&mut self, slot: usize, i: usize, t: &Target) -> Option<u32> {
        let guess = self
            .hints
            .get(slot)
            .and_then(|h| h.get(i))
            .copied()
            .unwrap_or(NONE);
        if self.targets.get(guess as usize) == Some(t) {
            return Some(guess);
        }
        let id = self.find(t);
        self.hint(slot, i, id.unwrap_or(NONE));
        id
    }

    /// Records that proposal `i` of the answer in `slot` named `id`.
    pub fn hint(&mut self, slot: usize, i: usize, id: u32) {
        if self.hints.len() <= slot {
            self.hints.resize_with(slot + 1, Vec::new);
        }
        let h = &mut self.hints[slot];
        if h.len() <= i {
            h.resize(i + 1, NONE);
        }
        h[i] = id;
    }

    /// The id of `t`, interning it; keeps `t` as this round's copy.
    pub fn intern(&mut self, t: Target) -> u32 {
        let h = self.lookup_hash(&t);
        let id = match self.find_hashed(&t, h) {
            Some(id) => id,
            None => {
                let id = self.targets.len() as u32;
                let next = self.by_hash.insert(h, id).unwrap_or(NONE);
                self.info.push(Info {
                    order: target_hash(&t),
                    next,
                    asked: 0,
                    covered: 0,
                });
                self.targets.push(t.clone());
                self.owned.push(None);
                self.fresh.push(id);
                id
            }
        };
        self.hold(id, t);
        id
    }

    /// Keeps `t` (the target of `id`) as this round's copy, unless one is
    /// kept already.
    pub fn hold(&mut self, id: u32, t: Target) {
        let slot = &mut self.owned[id as usize];
        if slot.is_none() {
            *slot = Some(t);
            self.held.push(id);
        } else {
            self.spent_targets.push(t);
        }
    }

    /// Keeps a request's parameter name until [`Interner::release`].
    pub fn spend(&mut self, name: String) {
        self.spent_names.push(name);
    }

    /// Keeps an emptied answer until [`Interner::release`].
    pub fn spend_buffer(&mut self, answer: Vec<vcp_common::module::Proposal>) {
        self.spent_buffers.push(answer);
    }

    /// Frees what the round's requests no longer need: large buffers
    /// first, while the allocator has no small free chunks to consolidate.
    pub fn release(&mut self) {
        self.spent_buffers.clear();
        self.spent_targets.clear();
        self.spent_names.clear();
    }

    /// An owned copy of target `id`: this round's, or a clone.
    pub fn take(&mut self, id: u32) -> Target {
        match self.owned.get_mut(id as usize).and_then(Option::take) {
            Some(t) => t,
            None => self.targets[id as usize].clone(),
        }
    }

    /// The cache bit of `scope`, if it has or gets one.
    /// With more scopes than bits, a bit whose scope was not asked last
    /// round or this one is given to the new scope; otherwise the new scope
    /// is answered uncached.
    pub fn scope_bit(&mut self, scope: &Arc<Scope>) -> Option<u32> {
        let epoch = self.epoch;
        let held = self
            .scopes
            .iter()
            .position(|s| s.as_ref().is_some_and(|(s, _)| Arc::ptr_eq(s, scope)));
        if let Some(b) = held {
            if let Some((_, asked)) = &mut self.scopes[b] {
                *asked = epoch;
            }
            return Some(b as u32);
        }
        let free = self.scopes.iter().position(Option::is_none);
        let b = match free {
            Some(b) => b,
            None if self.scopes.len() < SCOPES => {
                self.scopes.push(None);
                self.scopes.len() - 1
            }
            None => {
                let (b, asked) = self
                    .scopes
                    .iter()
                    .enumerate()
                    .filter_map(|(b, s)| s.as_ref().map(|(_, asked)| (b, *asked)))
                    .min_by_key(|(_, asked)| *asked)?;
                if asked + 1 >= epoch {
                    return None;
                }
                self.free_bit(b);
                b
            }
        };
        self.scopes[b] = Some((scope.clone(), epoch));
        Some(b as u32)
    }

    /// Forgets the scope of bit `b` and its answers.
    fn free_bit(&mut self, b: usize) {
        let keep = !(1u64 << b);
        for info in &mut self.info {
            info.asked &= keep;
            info.covered &= keep;
        }
        self.scopes[b] = None;
    }

    /// Whether `scope` (with cache bit `bit`) covers target `id`.
    pub fn covered(&mut self, id: u32, scope: &Scope, bit: Option<u32>) -> bool {
        let Some(bit) = bit else {
            return scope.covers(&self.targets[id as usize]);
        };
        let mask = 1u64 << bit;
        let info = self.info[id as usize];
        if info.asked & mask != 0 {
            return info.covered & mask != 0;
        }
        let covers = scope.covers(&self.targets[id as usize]);
        let info = &mut self.info[id as usize];
        info.asked |= mask;
        if covers {
            info.covered |= mask;
        }
        covers
    }

    /// Records that `scope` covers the (just interned) target `id`.
    pub fn set_covered(&mut self, id: u32, bit: Option<u32>) {
        if let Some(bit) = bit {
            let info = &mut self.info[id as usize];
            info.asked |= 1 << bit;
            info.covered |= 1 << bit;
        }
    }

    /// Tests: how many guesses the answer in `slot` keeps.
    #[cfg(test)]
    pub(crate) fn hint_len(&self, slot: usize) -> usize {
        self.hints.get(slot).map_or(0, Vec::len)
    }

    /// Sets the decision-order hash of `id` (tests: forced collisions).
    #[cfg(test)]
    pub(crate) fn force_order(&mut self, id: u32, order: u64) {
        self.info[id as usize].order = order;
    }

    /// Every id in decision order: by [`target_hash`], then by target.
    pub fn ordered(&mut self) -> &[u32] {
        if !self.fresh.is_empty() {
            let (targets, info) = (&self.targets, &self.info);
            let cmp = |a: &u32, b: &u32| {
                let (x, y) = (*a as usize, *b as usize);
                info[x]
                    .order
                    .cmp(&info[y].order)
                    .then_with(|| targets[x].cmp(&targets[y]))
            };
            self.fresh.sort_unstable_by(cmp);
            if self.ordered.is_empty() {
                std::mem::swap(&mut self.ordered, &mut self.fresh);
            } else {
                // Merge the (few) new ids into the ordered ones.
                self.merge.clear();
                self.merge.reserve(self.ordered.len() + self.fresh.len());
                let (mut i, mut j) = (0, 0);
                while i < self.ordered.len() && j < self.fresh.len() {
                    if cmp(&self.fresh[j], &self.ordered[i]).is_lt() {
                        self.merge.push(self.fresh[j]);
                        j += 1;
                    } else {
                        self.merge.push(self.ordered[i]);
                        i += 1;
                    }
                }
                self.merge.extend_from_slice(&self.ordered[i..]);
                self.merge.extend_from_slice(&self.fresh[j..]);
                std::mem::swap(&mut self.ordered, &mut self.merge);
            }
            self.fresh.clear();
        }
        &self.ordered
    }
}

#[cfg(test)]
#[path = "intern_tests.rs"]
mod tests;
