//! Per-broker request timings, for the labs' evidence: kgate sees both sides of every request,
//! so it can split what a client waits for into the broker's own time (request forwarded →
//! response back from the broker) and the rest (injected delays, the network to the client).
//!
//! Off unless [`crate::GatewayConfig::timings`] is set; then each forwarded request that gets a
//! response adds one sample under its broker and API (a bounded window per pair).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Samples kept per (broker, API): the most recent ones.
pub const WINDOW: usize = 2048;

/// Timings of the requests kgate forwarded, by upstream broker and API key.
#[derive(Debug, Default)]
pub struct Timings {
    samples: Mutex<BTreeMap<(i32, i16), Window>>,
}

#[derive(Debug, Default)]
struct Window {
    count: u64,
    /// Broker time and total time in kgate, in microseconds.
    recent: VecDeque<(u64, u64)>,
}

/// Percentiles of one (broker, API) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct TimingSummary {
    /// The upstream broker's node id.
    pub broker: i32,
    /// Kafka API key.
    pub api: i16,
    /// Requests counted since the last reset.
    pub count: u64,
    /// Broker time (kgate → broker → kgate), median and 99th percentile, in ms.
    pub broker_p50_ms: f64,
    /// See `broker_p50_ms`.
    pub broker_p99_ms: f64,
    /// Time from the request's arrival at kgate to its response leaving kgate, in ms.
    pub total_p50_ms: f64,
    /// See `total_p50_ms`.
    pub total_p99_ms: f64,
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied().unwrap_or(0) as f64 / 1000.0
}

impl Timings {
    /// Adds one request's timing.
    pub fn record(&self, broker: i32, api: i16, broker_time: Duration, total: Duration) {
        let Ok(mut map) = self.samples.lock() else {
            return;
        };
        let w = map.entry((broker, api)).or_default();
        w.count += 1;
        if w.recent.len() >= WINDOW {
            w.recent.pop_front();
        }
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        w.recent.push_back((us(broker_time), us(total)));
    }

    /// Forgets every sample (a new measurement starts).
    pub fn reset(&self) {
        if let Ok(mut map) = self.samples.lock() {
            map.clear();
        }
    }

    /// Percentiles per (broker, API), in broker then API order.
    pub fn summary(&self) -> Vec<TimingSummary> {
        let Ok(map) = self.samples.lock() else {
            return Vec::new();
        };
        map.iter()
            .map(|(&(broker, api), w)| {
                let mut b: Vec<u64> = w.recent.iter().map(|s| s.0).collect();
                let mut t: Vec<u64> = w.recent.iter().map(|s| s.1).collect();
                b.sort_unstable();
                t.sort_unstable();
                TimingSummary {
                    broker,
                    api,
                    count: w.count,
                    broker_p50_ms: pct(&b, 0.5),
                    broker_p99_ms: pct(&b, 0.99),
                    total_p50_ms: pct(&t, 0.5),
                    total_p99_ms: pct(&t, 0.99),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_per_broker_and_api() {
        let t = Timings::default();
        for ms in 1..=100 {
            t.record(
                2,
                0,
                Duration::from_millis(ms),
                Duration::from_millis(ms + 10),
            );
        }
        t.record(1, 0, Duration::from_millis(1), Duration::from_millis(1));
        let s = t.summary();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].broker, 2);
        assert_eq!(s[1].count, 100);
        assert!((s[1].broker_p99_ms - 99.0).abs() < 1.5, "{s:?}");
        assert!((s[1].total_p50_ms - s[1].broker_p50_ms - 10.0).abs() < 0.01);
        t.reset();
        assert!(t.summary().is_empty());
    }
}
