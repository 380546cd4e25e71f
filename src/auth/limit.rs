//! Failed logins, per client address: after [`FREE_FAILURES`] failures an
//! address must wait [`FIRST_LOCK`] before its next try, twice as long
//! after each further failure, up to [`MAX_LOCK`]; while it waits every password
//! from it is refused unchecked (429), right or wrong, so guessing costs
//! the guesser time and us nothing. An address is forgotten
//! [`FORGET`] after its last failure. A success does not clear the count:
//! otherwise one known account would let a guesser reset it between
//! guesses.
//!
//! The table is bounded ([`MAX_ADDRESSES`]): when full, the entry idle
//! the longest makes room. IPv6 addresses count by /64, since one host
//! usually holds a whole /64 and could otherwise rotate through it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures after which the waits begin.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; each further failure doubles it.
pub const FIRST_LOCK: Duration = Duration::from_secs(1);
/// The longest wait.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// An address with no failure for this long starts afresh.
pub const FORGET: Duration = Duration::from_secs(60 * 60);
/// Addresses tracked at once.
pub const MAX_ADDRESSES: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The failure counts.
pub struct Limiter {
    table: Mutex<HashMap<IpAddr, Entry>>,
    max: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(MAX_ADDRESSES)
    }
}

/// The key an address counts under.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The wait after `failures` failures: none before [`FREE_FAILURES`],
/// then [`FIRST_LOCK`] doubled for each failure beyond it, capped.
pub fn lock_for(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    // Past 2^20 the cap applies anyway; the shift must not overflow.
    Some(FIRST_LOCK.saturating_mul(1 << over.min(20)).min(MAX_LOCK))
}

impl Limiter {
    pub fn new(max: usize) -> Limiter {
        Limiter {
            table: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// `Err(wait)` when `ip` must not try a password now.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match t.get(&key(ip)).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failed password from `ip`; returns the wait it now has.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(ip);
        if !t.contains_key(&k) && t.len() >= self.max {
            t.retain(|_, e| now.saturating_duration_since(e.last) < FORGET);
            if t.len() >= self.max {
                // Full of recent failures: the idlest goes.
                if let Some(old) = t.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| *k) {
                    t.remove(&old);
                }
            }
        }
        let e = t.entry(k).or_insert(Entry {
            failures: 0,
            last: now,
            locked_until: None,
        });
        if now.saturating_duration_since(e.last) >= FORGET {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        let wait = lock_for(e.failures);
        e.locked_until = wait.map(|w| now + w);
        wait
    }

    /// Addresses tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    #[test]
    fn locks_after_free_failures_with_doubling_waits() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for i in 1..FREE_FAILURES {
            assert_eq!(l.fail(ip(1), t0), None, "failure {i}");
            assert!(l.check(ip(1), t0).is_ok());
        }
        // The fifth failure: one second.
        assert_eq!(l.fail(ip(1), t0), Some(Duration::from_secs(1)));
        assert_eq!(l.check(ip(1), t0), Err(Duration::from_secs(1)));
        // Others are not affected.
        assert!(l.check(ip(2), t0).is_ok());
        // Once the wait is over it may try again; failing doubles it.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check(ip(1), t1).is_ok());
        assert_eq!(l.fail(ip(1), t1), Some(Duration::from_secs(2)));
        assert_eq!(l.fail(ip(1), t1), Some(Duration::from_secs(4)));
        assert!(l.check(ip(1), t1 + Duration::from_secs(3)).is_err());
        assert!(l.check(ip(1), t1 + Duration::from_secs(4)).is_ok());
        // The wait is capped.
        let mut t = t1;
        for _ in 0..100 {
            t += Duration::from_secs(1);
            l.fail(ip(1), t);
        }
        assert_eq!(l.check(ip(1), t), Err(MAX_LOCK));
        // Forgotten after an hour without failures.
        let later = t + FORGET;
        assert!(l.check(ip(1), later).is_ok());
        assert_eq!(l.fail(ip(1), later), None);
        assert_eq!(l.check(ip(1), later), Ok(()));
    }

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_v4_as_v4() {
        let l = Limiter::default();
        let t = Instant::now();
        for i in 0..FREE_FAILURES {
            let a: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            l.fail(a, t);
        }
        let other_host: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(l.check(other_host, t).is_err());
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check(other_net, t).is_ok());
        for _ in 0..FREE_FAILURES {
            l.fail("::ffff:192.0.2.9".parse().unwrap(), t);
        }
        assert!(l.check(ip(9), t).is_err());
    }

    #[test]
    fn table_is_bounded() {
        let l = Limiter::new(8);
        let t = Instant::now();
        for n in 0..100u8 {
            l.fail(ip(n), t + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(l.len(), 8);
        // The newest are the ones kept.
        for _ in 0..FREE_FAILURES {
            l.fail(ip(99), t + Duration::from_secs(1));
        }
        assert!(l.check(ip(99), t + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn wait_schedule() {
        assert_eq!(lock_for(0), None);
        assert_eq!(lock_for(FREE_FAILURES - 1), None);
        assert_eq!(lock_for(FREE_FAILURES), Some(FIRST_LOCK));
        assert_eq!(lock_for(FREE_FAILURES + 1), Some(FIRST_LOCK * 2));
        assert_eq!(lock_for(u32::MAX), Some(MAX_LOCK));
    }
}
