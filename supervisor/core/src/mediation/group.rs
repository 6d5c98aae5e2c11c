//! Grouping a round's admitted requests by (parameter, target) before
//! they are resolved: a counting sort over interned ids when the cells
//! fit, a sort of packed keys when they do not; both give one order.

use super::Mediator;
use crate::admission::intern::{Interner, NONE};
use crate::admission::Request;

impl Mediator {
    /// Groups `requests` by (parameter, target) into `order`, `groups` and
    /// `runs`: parameters in the order mediation first saw them, targets in
    /// the interner's decision order (by target hash, then target), and
    /// within a group by (slot, index). A counting sort over the interned
    /// ids: no string is hashed or compared.
    pub(super) fn group(&mut self, requests: &[Request], interner: &mut Interner) {
        // This round's parameters, as rows in decision order.
        self.row_of.clear();
        self.row_of.resize(interner.params.len(), NONE);
        self.rows.clear();
        for r in requests {
            let row = &mut self.row_of[r.param as usize];
            if *row == NONE {
                *row = 0;
                self.rows.push((interner.rank(r.param), r.param));
            }
        }
        self.rows.sort_unstable();
        for (k, &(_, ordinal)) in self.rows.iter().enumerate() {
            self.row_of[ordinal as usize] = k as u32;
        }
        let targets = interner.len();
        self.groups.clear();
        self.runs.clear();
        self.order.clear();
        self.order.resize(requests.len(), 0);
        if self.rows.len() * targets > self.dense_limit(requests.len(), targets) {
            self.group_sparse(requests, interner);
        } else {
            self.group_dense(requests, interner);
        }
        interner.used = self.groups.len().max(interner.used / 2);
    }

    /// Most (parameter, target) cells the counting sort may use: a round
    /// with many parameters and few requests sorts instead.
    fn dense_limit(&self, requests: usize, targets: usize) -> usize {
        #[cfg(test)]
        if self.force_sparse {
            return 0;
        }
        8 * (requests + targets) + 4096
    }

    /// The counting sort over (row, target id) cells.
    fn group_dense(&mut self, requests: &[Request], interner: &mut Interner) {
        let targets = interner.len();
        let row_of = &self.row_of;
        let key = |r: &Request| row_of[r.param as usize] as usize * targets + r.target as usize;
        self.at.clear();
        self.at.resize(self.rows.len() * targets, 0);
        for r in requests {
            self.at[key(r)] += 1;
        }
        let ordered = interner.ordered();
        let mut pos = 0u32;
        for (&(_, ordinal), row) in self
            .rows
            .iter()
            .zip(self.at.chunks_exact_mut(targets.max(1)))
        {
            let first = self.groups.len();
            for &id in ordered {
                let at = &mut row[id as usize];
                if *at > 0 {
                    let start = pos;
                    pos += *at;
                    self.groups.push((start, pos));
                    *at = start;
                }
            }
            if self.groups.len() > first {
                self.runs.push((ordinal, first, self.groups.len()));
            }
        }
        let (at, order) = (&mut self.at, &mut self.order);
        let mut place = |i: usize, r: &Request| {
            let at = &mut at[key(r)];
            order[*at as usize] = i as u32;
            *at += 1;
        };
        if requests.windows(2).all(|w| w[0].slot <= w[1].slot) {
            for (i, r) in requests.iter().enumerate() {
                place(i, r);
            }
        } else {
            // Answers were admitted out of slot order: by slot first.
            let slots = requests.iter().map(|r| r.slot).max().map_or(0, |s| s + 1);
            let mut starts = vec![0u32; slots + 1];
            for r in requests {
                starts[r.slot + 1] += 1;
            }
            for s in 1..starts.len() {
                starts[s] += starts[s - 1];
            }
            self.by_slot.clear();
            self.by_slot.resize(requests.len(), 0);
            for (i, r) in requests.iter().enumerate() {
                self.by_slot[starts[r.slot] as usize] = i as u32;
                starts[r.slot] += 1;
            }
            for &i in &self.by_slot {
                place(i as usize, &requests[i as usize]);
            }
        }
    }

    /// The same order as [`Mediator::group_dense`] by sorting (row, place
    /// of the target in decision order, slot, index) keys.
    fn group_sparse(&mut self, requests: &[Request], interner: &mut Interner) {
        let ordered = interner.ordered();
        self.at.clear();
        self.at.resize(ordered.len(), 0);
        for (p, &id) in ordered.iter().enumerate() {
            self.at[id as usize] = p as u32;
        }
        let mut keys: Vec<u128> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let slot = u32::try_from(r.slot).unwrap_or(u32::MAX);
                (u128::from(self.row_of[r.param as usize]) << 96)
                    | (u128::from(self.at[r.target as usize]) << 64)
                    | (u128::from(slot) << 32)
                    | i as u128
            })
            .collect();
        keys.sort_unstable();
        let cell = |k: u128| k >> 64;
        let mut start = 0;
        while start < keys.len() {
            let row = (keys[start] >> 96) as usize;
            let first = self.groups.len();
            while start < keys.len() && (keys[start] >> 96) as usize == row {
                let end = start
                    + keys[start..]
                        .iter()
                        .take_while(|k| cell(**k) == cell(keys[start]))
                        .count();
                self.groups.push((start as u32, end as u32));
                start = end;
            }
            self.runs.push((self.rows[row].1, first, self.groups.len()));
        }
        for (o, k) in self.order.iter_mut().zip(&keys) {
            *o = *k as u32;
        }
    }
}
