//! How long kgate holds each forwarded request and its answer: the latency the gateway itself
//! adds, apart from the broker's and the network's.
//!
//! What a client sees through kgate (send → answer) mixes three things: the broker's time, the
//! bytes' travel (and, with TLS, the client's own encryption: librdkafka writes a produce
//! request as two TLS records per Kafka record, so a 30 KiB request takes the client about
//! half a millisecond to send), and kgate's own work. Only kgate can tell the last apart, so it
//! measures it: from the moment a request has been read whole to the moment it is written
//! upstream (authorization, audit, fault rules), plus from the moment the broker's answer has
//! been read whole to the moment it is handed to the client's socket (filtering, address
//! rewriting, encryption; an injected delay counts too, as it is kgate holding the answer).
//!
//! Not counted: the time an answer waits in the upstream socket behind an earlier, larger
//! answer of the same connection (kgate reads answers in order), and the time bytes take to
//! arrive (a frame is forwarded once it is whole: store and forward).
//!
//! The other side of the same split is how long a request took to *arrive*: from its first
//! bytes (the size prefix) to its last. A client that sends slowly, or a busy network, shows
//! there (`kgate_request_receive_seconds`), not in the time kgate held the request.
//!
//! One fixed histogram per API key, bumped with two relaxed atomic adds; exposed on the admin
//! endpoint as Prometheus histograms and read by `kgate bench gateway` for its latency curve.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Upper bounds of the buckets, in nanoseconds: five per decade (1, 1.6, 2.5, 4, 6.3) from
/// 10 µs to 10 s, fine enough that a quantile read from them is within a few per cent.
pub const BOUNDS_NS: [u64; 31] = [
    10_000,
    16_000,
    25_000,
    40_000,
    63_000,
    100_000,
    160_000,
    250_000,
    400_000,
    630_000,
    1_000_000,
    1_600_000,
    2_500_000,
    4_000_000,
    6_300_000,
    10_000_000,
    16_000_000,
    25_000_000,
    40_000_000,
    63_000_000,
    100_000_000,
    160_000_000,
    250_000_000,
    400_000_000,
    630_000_000,
    1_000_000_000,
    1_600_000_000,
    2_500_000_000,
    4_000_000_000,
    6_300_000_000,
    10_000_000_000,
];

/// API keys kept apart; every key kgate forwards is below this.
const API_SLOTS: usize = 128;

/// The held time's name in the Prometheus exposition.
pub const METRIC: &str = "kgate_request_held_seconds";

/// Its help line.
const HELP: &str = "Time kgate held a forwarded request and its answer (request read -> sent upstream, plus answer read -> written to the client), by API: the latency the gateway adds, without the broker's or the network's.";

/// The receive time's name in the Prometheus exposition.
pub const RECEIVE_METRIC: &str = "kgate_request_receive_seconds";

/// Its help line.
const RECEIVE_HELP: &str = "Time from a forwarded request's first bytes to its last, by API: how long clients (and the network) take to send a request.";

/// One API's histogram: a count per bucket (the last one is "above every bound"), and the sum.
#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

/// Times of forwarded requests, by API key: a histogram per key.
#[derive(Debug)]
pub struct ApiTimes {
    per_api: Box<[Histogram]>,
}

/// The two times kgate measures for every forwarded request.
#[derive(Debug, Default)]
pub struct RequestTimes {
    /// How long kgate held the request and its answer.
    pub held: ApiTimes,
    /// How long the request took to arrive.
    pub receive: ApiTimes,
}

impl RequestTimes {
    /// Appends both histograms to `out`.
    pub fn render(&self, out: &mut String) {
        self.held.render(out, METRIC, HELP);
        self.receive.render(out, RECEIVE_METRIC, RECEIVE_HELP);
    }
}

impl Default for ApiTimes {
    fn default() -> Self {
        Self {
            per_api: (0..API_SLOTS).map(|_| Histogram::default()).collect(),
        }
    }
}

impl ApiTimes {
    /// Counts one request of `api` that took `held`.
    pub fn record(&self, api: ApiKey, held: Duration) {
        let Some(h) = usize::try_from(api as i16)
            .ok()
            .and_then(|i| self.per_api.get(i))
        else {
            return;
        };
        let ns = u64::try_from(held.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.partition_point(|bound| *bound < ns);
        if let Some(b) = h.buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        h.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Appends the Prometheus histogram `metric` (cumulative buckets, one series per API
    /// that has been seen) to `out`.
    pub fn render(&self, out: &mut String, metric: &str, help: &str) {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} histogram");
        for (key, h) in self.per_api.iter().enumerate() {
            let counts: Vec<u64> = h
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let name = i16::try_from(key)
                .ok()
                .and_then(|k| ApiKey::try_from(k).ok())
                .map_or_else(|| key.to_string(), |k| format!("{k:?}"));
            let mut cumulative = 0;
            for (bound, count) in BOUNDS_NS.iter().zip(&counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{metric}_bucket{{api=\"{name}\",le=\"{}\"}} {cumulative}",
                    *bound as f64 / 1e9
                );
            }
            let _ = writeln!(
                out,
                "{metric}_bucket{{api=\"{name}\",le=\"+Inf\"}} {total}\n{metric}_sum{{api=\"{name}\"}} {}\n{metric}_count{{api=\"{name}\"}} {total}",
                h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_time_lands_in_the_first_bucket_that_holds_it_and_renders_cumulatively() {
        let times = RequestTimes::default();
        let held = &times.held;
        held.record(ApiKey::Produce, Duration::from_micros(5));
        held.record(ApiKey::Produce, Duration::from_micros(10));
        held.record(ApiKey::Produce, Duration::from_micros(11));
        held.record(ApiKey::Produce, Duration::from_secs(60));
        held.record(ApiKey::Fetch, Duration::from_millis(2));
        times
            .receive
            .record(ApiKey::Produce, Duration::from_millis(1));
        let mut out = String::new();
        times.render(&mut out);
        let line = |series: &str| {
            out.lines()
                .find(|l| l.starts_with(series))
                .unwrap_or_else(|| panic!("no {series} in\n{out}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        // 5 µs and exactly 10 µs are at most 10 µs; 11 µs is in the next bucket.
        assert_eq!(
            line("kgate_request_held_seconds_bucket{api=\"Produce\",le=\"0.00001\"}"),
            "2"
        );
        assert_eq!(
            line("kgate_request_held_seconds_bucket{api=\"Produce\",le=\"0.000016\"}"),
            "3"
        );
        assert_eq!(
            line("kgate_request_held_seconds_bucket{api=\"Produce\",le=\"10\"}"),
            "3"
        );
        assert_eq!(
            line("kgate_request_held_seconds_bucket{api=\"Produce\",le=\"+Inf\"}"),
            "4"
        );
        assert_eq!(
            line("kgate_request_held_seconds_count{api=\"Produce\"}"),
            "4"
        );
        assert_eq!(
            line("kgate_request_held_seconds_bucket{api=\"Fetch\",le=\"0.0016\"}"),
            "0"
        );
        assert_eq!(
            line("kgate_request_held_seconds_bucket{api=\"Fetch\",le=\"0.0025\"}"),
            "1"
        );
        // APIs never seen have no series; each histogram keeps its own counts.
        assert!(!out.contains("api=\"Metadata\""));
        assert!(!out.contains("kgate_request_receive_seconds_count{api=\"Fetch\"}"));
        assert_eq!(
            line("kgate_request_receive_seconds_bucket{api=\"Produce\",le=\"0.001\"}"),
            "1"
        );
    }
}
