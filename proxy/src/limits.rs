//! Resources a client can take before it has proven who it is: connections per address and
//! repeated failed logins.
//!
//! Kafka caps connections per address (`max.connections.per.ip`) and delays the close after a
//! failed login (`connection.failed.authentication.delay.ms`). kgate does both, and for an
//! address that keeps failing it holds each failure's *answer* twice as long as the last (up
//! to [`MAX_FAILURE_DELAY`]), so a password guesser learns each verdict later and later while
//! everyone else is served as usual. A successful login from the address does not clear its
//! history (behind NAT, or on loopback, a real user's login must not reset a guesser's
//! backoff); a minute without failures does. The table holds an
//! entry only for an address with an open connection or a recent failure, and forgets quiet
//! addresses, so many source addresses cannot grow it without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest delay before a failed login's connection is closed.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// An address with no failure for this long starts again from the base delay.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// Past this many entries, quiet ones are swept on the next insert.
const SWEEP_ABOVE: usize = 4096;

#[derive(Debug, Default)]
struct Entry {
    open: usize,
    failures: u32,
    last_failure: Option<Instant>,
}

impl Entry {
    fn quiet(&self, now: Instant) -> bool {
        self.open == 0
            && self
                .last_failure
                .is_none_or(|t| now.duration_since(t) >= FAILURE_MEMORY)
    }
}

/// Per-address connection counts and failed-login history, shared by every listener.
#[derive(Debug)]
pub struct AddressLimits {
    per_ip: usize,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

/// One open connection of an address; dropping it gives the slot back.
#[derive(Debug)]
pub struct AddressPermit {
    limits: Arc<AddressLimits>,
    ip: IpAddr,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut table = self.limits.lock();
        if let Some(e) = table.get_mut(&self.ip) {
            e.open = e.open.saturating_sub(1);
            if e.quiet(Instant::now()) {
                table.remove(&self.ip);
            }
        }
    }
}

impl AddressLimits {
    /// At most `per_ip` connections from one address at a time.
    pub fn new(per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            table: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it already has `per_ip`.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPermit> {
        let mut table = self.lock();
        if table.len() > SWEEP_ABOVE && !table.contains_key(&ip) {
            let now = Instant::now();
            table.retain(|_, e| !e.quiet(now));
        }
        let entry = table.entry(ip).or_default();
        if entry.open >= self.per_ip {
            return None;
        }
        entry.open += 1;
        Some(AddressPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Records a failed login from `ip` and returns how long to wait before closing:
    /// `base` for the first failure, doubled for each further one within
    /// [`FAILURE_MEMORY`], at most [`MAX_FAILURE_DELAY`].
    pub fn failed_login(&self, ip: IpAddr, base: Duration) -> Duration {
        let now = Instant::now();
        let mut table = self.lock();
        let entry = table.entry(ip).or_default();
        if entry
            .last_failure
            .is_some_and(|t| now.duration_since(t) >= FAILURE_MEMORY)
        {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = Some(now);
        let doublings = entry.failures.saturating_sub(1).min(16);
        base.saturating_mul(1 << doublings)
            .min(MAX_FAILURE_DELAY.max(base))
    }

    /// Addresses currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_at_most_its_share_and_slots_come_back() {
        let limits = AddressLimits::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = limits.try_open(a).unwrap();
        let _p2 = limits.try_open(a).unwrap();
        assert!(limits.try_open(a).is_none());
        assert!(
            limits.try_open(b).is_some(),
            "another address is not affected"
        );
        drop(p1);
        assert!(limits.try_open(a).is_some());
    }

    #[test]
    fn failed_logins_double_the_delay_up_to_the_cap() {
        let limits = AddressLimits::new(10);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let base = Duration::from_millis(100);
        let delays: Vec<u128> = (0..8)
            .map(|_| limits.failed_login(a, base).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(limits.failed_login(other, base), base);
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let limits = AddressLimits::new(10);
        for i in 0..100u8 {
            let ip: IpAddr = format!("10.1.0.{i}").parse().unwrap();
            drop(limits.try_open(ip).unwrap());
        }
        assert_eq!(limits.tracked(), 0);
    }
}
