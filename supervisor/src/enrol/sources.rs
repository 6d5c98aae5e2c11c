//! How often one source may try to enrol without a certificate: a token
//! bucket per address (IPv6 per /64, what one host can hold), so that a
//! client guessing join tokens or filling the store's writer gets
//! `per_source_per_minute` attempts and no more, while other sources go on.
//! At most `max_sources` addresses are followed; when that many are and a
//! new one comes, those whose bucket has refilled are forgotten (they are
//! no different from new ones), and if none has, the newcomer is refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use vcp_common::session::bucket::Bucket;

use crate::config::limits::EnrolLimits;

pub struct Sources {
    rate: f64,
    burst: f64,
    max: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// The address a source is counted under.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
        v4 => v4,
    }
}

impl Sources {
    pub fn new(limits: &EnrolLimits) -> Sources {
        Sources {
            rate: limits.per_source_per_minute / 60.0,
            burst: limits.per_source_burst.max(1.0),
            max: limits.max_sources,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt of `ip`'s; false when it has none left (or no
    /// more sources can be followed).
    pub fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        let key = key(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max && !buckets.contains_key(&key) {
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= self.max {
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(rate, burst, now))
            .try_take(1.0, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sources(per_minute: f64, burst: f64, max: usize) -> Sources {
        Sources::new(&EnrolLimits {
            per_source_per_minute: per_minute,
            per_source_burst: burst,
            max_sources: max,
            ..Default::default()
        })
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let s = sources(60.0, 3.0, 100);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        assert_eq!((0..5).map(|_| s.admit(a, t)).filter(|&x| x).count(), 3);
        assert!(s.admit(b, t), "another source is not held back");
        assert!(s.admit(a, t + Duration::from_secs(1)), "one a second");
        assert!(!s.admit(a, t + Duration::from_secs(1)));
    }

    #[test]
    fn one_host_is_one_source_whatever_its_addresses() {
        let s = sources(60.0, 2.0, 100);
        let t = Instant::now();
        let mine = ["2001:db8::1", "2001:db8::ffff:2", "2001:db8:0:0:1::"];
        let admitted = mine
            .iter()
            .filter(|ip| s.admit(ip.parse().unwrap(), t))
            .count();
        assert_eq!(admitted, 2);
        assert!(
            s.admit("2001:db8:0:1::1".parse().unwrap(), t),
            "the next /64"
        );
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert!(s.admit(mapped, t) && s.admit("10.0.0.9".parse().unwrap(), t));
        assert!(!s.admit(mapped, t), "v4-mapped is the v4 address");
    }

    #[test]
    fn sources_followed_are_bounded() {
        let s = sources(60.0, 1.0, 2);
        let t = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert!(s.admit(ip(1), t) && s.admit(ip(2), t));
        assert!(!s.admit(ip(3), t), "two followed, both still counting");
        let later = t + Duration::from_secs(2);
        assert!(s.admit(ip(3), later), "refilled sources are forgotten");
        assert!(s.buckets.lock().unwrap().len() <= 2);
    }
}
