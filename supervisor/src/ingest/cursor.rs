//! Exactly-once bookkeeping for one agent's batch sequence. Pure: no I/O.
//!
//! Sequence numbers start at 1 and are contiguous within an agent
//! incarnation (one run of the agent process). The supervisor applies a
//! batch only when it is the next expected one, acknowledges duplicates
//! without applying them again, and refuses an unexplained gap. The only
//! explained gaps are batches the agent says it dropped from a full spool:
//! either in its Hello (`first_seq` is the oldest batch it still holds) or
//! in a `Dropped` frame.

/// The persisted position of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub incarnation: u64,
    /// Highest applied sequence number; 0 before the first batch.
    pub last_seq: u64,
}

/// What to do with an arriving batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Apply,
    Duplicate,
    Gap { expected: u64 },
}

impl Cursor {
    /// Handles an agent's Hello. Returns how many batches the agent dropped
    /// before we ever saw them (a spool overflow while disconnected).
    pub fn hello(&mut self, incarnation: u64, first_seq: u64) -> u64 {
        if incarnation != self.incarnation {
            *self = Cursor {
                incarnation,
                last_seq: first_seq.saturating_sub(1),
            };
            return 0;
        }
        self.skip_to(first_seq.saturating_sub(1))
    }

    /// Decides about batch `seq`; `commit` must follow an `Apply`.
    pub fn admit(&self, seq: u64) -> Admit {
        if seq <= self.last_seq {
            Admit::Duplicate
        } else if seq == self.last_seq + 1 {
            Admit::Apply
        } else {
            Admit::Gap {
                expected: self.last_seq + 1,
            }
        }
    }

    /// Records that `seq` was applied.
    pub fn commit(&mut self, seq: u64) {
        debug_assert_eq!(seq, self.last_seq + 1);
        self.last_seq = seq;
    }

    /// The agent declared batches up to `up_to` dropped; returns how many
    /// of them we had not applied.
    pub fn skip_to(&mut self, up_to: u64) -> u64 {
        if up_to > self.last_seq {
            let skipped = up_to - self.last_seq;
            self.last_seq = up_to;
            skipped
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_duplicate_and_gap() {
        let mut c = Cursor::default();
        assert_eq!(c.hello(7, 1), 0);
        assert_eq!(c.admit(1), Admit::Apply);
        c.commit(1);
        assert_eq!(c.admit(1), Admit::Duplicate);
        assert_eq!(c.admit(3), Admit::Gap { expected: 2 });
        assert_eq!(c.admit(2), Admit::Apply);
    }

    #[test]
    fn reconnect_resumes_and_counts_declared_drops() {
        let mut c = Cursor {
            incarnation: 7,
            last_seq: 10,
        };
        // Same incarnation, spool still holds 9..: 9 and 10 are duplicates.
        assert_eq!(c.hello(7, 9), 0);
        assert_eq!(c.admit(9), Admit::Duplicate);
        assert_eq!(c.admit(11), Admit::Apply);
        // Spool overflowed while disconnected: oldest held is 15.
        assert_eq!(c.hello(7, 15), 4);
        assert_eq!(c.admit(15), Admit::Apply);
        assert_eq!(c.skip_to(20), 6);
        assert_eq!(c.skip_to(3), 0);
    }

    #[test]
    fn new_incarnation_starts_over() {
        let mut c = Cursor {
            incarnation: 7,
            last_seq: 10,
        };
        assert_eq!(c.hello(8, 1), 0);
        assert_eq!(c.admit(1), Admit::Apply);
    }
}
