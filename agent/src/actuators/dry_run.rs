//! The dry-run actuator (the default): applies nothing, logs each
//! configuration it receives and keeps the last few in a bounded journal.

use std::collections::VecDeque;

use super::{Actuator, ActuatorError, Applied, Configuration};

/// Journal entries kept by [`DryRun::default`].
pub const DEFAULT_JOURNAL: usize = 256;

/// Records what would be applied.
#[derive(Debug)]
pub struct DryRun {
    journal: VecDeque<Configuration>,
    capacity: usize,
    count: u64,
}

impl Default for DryRun {
    fn default() -> Self {
        Self::new(DEFAULT_JOURNAL)
    }
}

impl DryRun {
    /// A dry run keeping the last `capacity` configurations (0 keeps none;
    /// the count still grows).
    pub fn new(capacity: usize) -> Self {
        DryRun {
            journal: VecDeque::with_capacity(capacity.min(DEFAULT_JOURNAL)),
            capacity,
            count: 0,
        }
    }

    /// The last configurations received, oldest first.
    pub fn journal(&self) -> &VecDeque<Configuration> {
        &self.journal
    }

    /// Configurations received since start, including those no longer in
    /// the journal.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Actuator for DryRun {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn apply(&mut self, c: &Configuration) -> Result<Applied, ActuatorError> {
        self.count += 1;
        tracing::info!(
            round = c.round,
            target = %c.target,
            parameter = %c.parameter,
            value = c.value,
            "dry run: configuration not applied"
        );
        if self.capacity > 0 {
            if self.journal.len() >= self.capacity {
                self.journal.pop_front();
            }
            self.journal.push_back(c.clone());
        }
        Ok(Applied {
            detail: format!("dry run: would apply {c}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcp_common::module::Target;

    fn conf(round: u64) -> Configuration {
        Configuration {
            round,
            target: Target::Resource {
                host: "h1".into(),
                resource: vcp_common::resource::ResourceId::new("cgroup/web").unwrap(),
            },
            parameter: "cpu.max".into(),
            value: 1.5,
        }
    }

    #[test]
    fn journal_is_bounded_and_counted() {
        let mut d = DryRun::new(3);
        for r in 1..=5 {
            let a = d.apply(&conf(r)).unwrap();
            assert!(a.detail.contains(&format!("round {r}")), "{}", a.detail);
        }
        assert_eq!(d.count(), 5);
        let rounds: Vec<u64> = d.journal().iter().map(|c| c.round).collect();
        assert_eq!(rounds, [3, 4, 5]);
        assert_eq!(d.journal()[2], conf(5));
        assert_eq!(d.name(), "dry-run");
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_counts() {
        let mut d = DryRun::new(0);
        d.apply(&conf(1)).unwrap();
        assert!(d.journal().is_empty());
        assert_eq!(d.count(), 1);
    }
}
