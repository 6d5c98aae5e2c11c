//! The spool: batches that were produced but not yet acknowledged, oldest
//! first, bounded. When full, the oldest batch is dropped and its readings
//! are counted — never silently.

use std::collections::VecDeque;

use vcp_common::batch::Batch;

#[derive(Debug)]
pub struct Spool {
    batches: VecDeque<Batch>,
    capacity: usize,
    next_seq: u64,
}

impl Spool {
    /// A spool holding at most `capacity` batches (at least one).
    pub fn new(capacity: usize) -> Self {
        Spool {
            batches: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 1,
        }
    }

    /// Numbers `batch` with the next sequence number and keeps it. Returns
    /// the batch dropped to make room, if the spool was full.
    pub fn push(&mut self, mut batch: Batch) -> (u64, Option<Batch>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.seq = seq;
        let dropped = if self.batches.len() >= self.capacity {
            self.batches.pop_front()
        } else {
            None
        };
        self.batches.push_back(batch);
        (seq, dropped)
    }

    /// Forgets every batch with `seq <= up_to`.
    pub fn ack(&mut self, up_to: u64) {
        while self.batches.front().is_some_and(|b| b.seq <= up_to) {
            self.batches.pop_front();
        }
    }

    /// The oldest sequence number still held, or the next one to be used.
    pub fn first_seq(&self) -> u64 {
        self.batches.front().map_or(self.next_seq, |b| b.seq)
    }

    /// The last sequence number handed out (0 before the first batch).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn iter(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter()
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::batch::Column;

    fn batch(n: usize) -> Batch {
        Batch {
            seq: 0,
            timestamps: vec![0],
            columns: vec![Column {
                series: 0,
                start: 0,
                values: vec![1.0; n],
            }],
        }
    }

    #[test]
    fn numbers_acks_and_drops_oldest_when_full() {
        let mut s = Spool::new(2);
        assert_eq!(s.first_seq(), 1);
        assert_eq!(s.push(batch(1)).0, 1);
        assert_eq!(s.push(batch(1)).0, 2);
        let (seq, dropped) = s.push(batch(3));
        assert_eq!(seq, 3);
        assert_eq!(dropped.map(|b| b.seq), Some(1));
        assert_eq!(s.first_seq(), 2);
        s.ack(2);
        assert_eq!(s.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![3]);
        s.ack(3);
        assert!(s.is_empty());
        assert_eq!(s.first_seq(), 4);
        assert_eq!(s.last_seq(), 3);
    }
}
