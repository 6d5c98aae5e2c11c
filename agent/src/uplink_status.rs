//! Counters the uplink shares with the status sensor: lock-free, written by
//! the uplink task and read once per sample.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct UplinkStatus {
    epoch: Instant,
    /// Nanoseconds after `epoch` of the last acknowledgement, plus one;
    /// 0 when none was ever received.
    last_ack: AtomicU64,
    /// Readings dropped because the spool was full, since the agent started.
    dropped_readings: AtomicU64,
    /// Batches in the spool waiting for an acknowledgement.
    spooled_batches: AtomicU64,
}

impl Default for UplinkStatus {
    fn default() -> Self {
        UplinkStatus {
            epoch: Instant::now(),
            last_ack: AtomicU64::new(0),
            dropped_readings: AtomicU64::new(0),
            spooled_batches: AtomicU64::new(0),
        }
    }
}

impl UplinkStatus {
    pub fn record_ack(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.last_ack
            .store(nanos.saturating_add(1), Ordering::Relaxed);
    }

    /// Time since the last acknowledgement, if there was one.
    pub fn since_ack(&self, now: Instant) -> Option<Duration> {
        match self.last_ack.load(Ordering::Relaxed) {
            0 => None,
            n => {
                let at = self.epoch + Duration::from_nanos(n - 1);
                Some(now.saturating_duration_since(at))
            }
        }
    }

    pub fn add_dropped(&self, readings: u64) {
        self.dropped_readings.fetch_add(readings, Ordering::Relaxed);
    }

    pub fn dropped_readings(&self) -> u64 {
        self.dropped_readings.load(Ordering::Relaxed)
    }

    pub fn set_spooled(&self, batches: u64) {
        self.spooled_batches.store(batches, Ordering::Relaxed);
    }

    pub fn spooled_batches(&self) -> u64 {
        self.spooled_batches.load(Ordering::Relaxed)
    }
}
