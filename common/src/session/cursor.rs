//! Exactly-once bookkeeping for one agent's batch sequence. Pure: no I/O.
//!
//! Sequence numbers start at 1 and are contiguous within an agent
//! incarnation (one run of the agent process). The supervisor applies a
//! batch only when it is the next expected one, acknowledges duplicates
//! without applying them again, and refuses an unexplained gap. The only
//! explained gaps are batches the agent says it dropped from a full spool:
//! either in its Hello (`first_seq` is the oldest batch it still holds) or
//! in a `Dropped` frame. A declared gap is bounded (`max_skip` batches at a
//! time) and all arithmetic is checked, so no peer can move the cursor to
//! the end of the number range.

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
    Gap {
        expected: u64,
    },
    /// The sequence space is used up (only a peer that declared absurd
    /// gaps gets here).
    Exhausted,
}

/// A declared gap the cursor refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a gap from batch {from} to {to} exceeds the limit of {max} batches")]
pub struct SkipTooLarge {
    pub from: u64,
    pub to: u64,
    pub max: u64,
}

impl Cursor {
    /// Handles an agent's Hello. Returns how many batches the agent dropped
    /// before we ever saw them (a spool overflow while disconnected).
    pub fn hello(
        &mut self,
        incarnation: u64,
        first_seq: u64,
        max_skip: u64,
    ) -> Result<u64, SkipTooLarge> {
        let up_to = first_seq.saturating_sub(1);
        if incarnation != self.incarnation {
            let fresh = Cursor {
                incarnation,
                last_seq: 0,
            };
            fresh.check_skip(up_to, max_skip)?;
            *self = Cursor {
                incarnation,
                last_seq: up_to,
            };
            return Ok(0);
        }
        self.skip_to(up_to, max_skip)
    }

    /// Decides about batch `seq`; `commit` must follow an `Apply`.
    pub fn admit(&self, seq: u64) -> Admit {
        let Some(next) = self.last_seq.checked_add(1) else {
            return Admit::Exhausted;
        };
        if seq <= self.last_seq {
            Admit::Duplicate
        } else if seq == next {
            Admit::Apply
        } else {
            Admit::Gap { expected: next }
        }
    }

    /// Records that `seq` was applied.
    pub fn commit(&mut self, seq: u64) {
        debug_assert_eq!(Some(seq), self.last_seq.checked_add(1));
        self.last_seq = seq;
    }

    fn check_skip(&self, up_to: u64, max_skip: u64) -> Result<(), SkipTooLarge> {
        if up_to.saturating_sub(self.last_seq) > max_skip {
            return Err(SkipTooLarge {
                from: self.last_seq,
                to: up_to,
                max: max_skip,
            });
        }
        Ok(())
    }

    /// The agent declared batches up to `up_to` dropped; returns how many
    /// of them we had not applied.
    pub fn skip_to(&mut self, up_to: u64, max_skip: u64) -> Result<u64, SkipTooLarge> {
        self.check_skip(up_to, max_skip)?;
        if up_to > self.last_seq {
            let skipped = up_to - self.last_seq;
            self.last_seq = up_to;
            Ok(skipped)
        } else {
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 1000;

    #[test]
    fn contiguous_duplicate_and_gap() {
        let mut c = Cursor::default();
        assert_eq!(c.hello(7, 1, MAX), Ok(0));
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
        assert_eq!(c.hello(7, 9, MAX), Ok(0));
        assert_eq!(c.admit(9), Admit::Duplicate);
        assert_eq!(c.admit(11), Admit::Apply);
        // Spool overflowed while disconnected: oldest held is 15.
        assert_eq!(c.hello(7, 15, MAX), Ok(4));
        assert_eq!(c.admit(15), Admit::Apply);
        assert_eq!(c.skip_to(20, MAX), Ok(6));
        assert_eq!(c.skip_to(3, MAX), Ok(0));
    }

    #[test]
    fn new_incarnation_starts_over() {
        let mut c = Cursor {
            incarnation: 7,
            last_seq: 10,
        };
        assert_eq!(c.hello(8, 1, MAX), Ok(0));
        assert_eq!(c.admit(1), Admit::Apply);
    }

    #[test]
    fn absurd_gaps_are_refused_and_the_end_of_the_range_is_not_an_overflow() {
        let mut c = Cursor {
            incarnation: 1,
            last_seq: 5,
        };
        assert_eq!(
            c.skip_to(u64::MAX, MAX),
            Err(SkipTooLarge {
                from: 5,
                to: u64::MAX,
                max: MAX
            })
        );
        assert_eq!(c.last_seq, 5, "a refused gap moves nothing");
        assert!(c.hello(2, u64::MAX, MAX).is_err());
        assert_eq!(c.incarnation, 1);
        assert_eq!(c.skip_to(5 + MAX, MAX), Ok(MAX));
        let end = Cursor {
            incarnation: 1,
            last_seq: u64::MAX,
        };
        assert_eq!(end.admit(u64::MAX), Admit::Exhausted);
        assert_eq!(end.admit(3), Admit::Exhausted);
    }
}
