//! How long a gateway child held the requests of one run, and how long they took to arrive,
//! read from its admin endpoint.
//!
//! The gateway counts, per API, the time between a request read whole and its forward plus
//! the time between the broker's answer read whole and its delivery to the client
//! (`kgate_request_held_seconds`, see `kgate_proxy::held`), and the time from a request's
//! first bytes to its last (`kgate_request_receive_seconds`). Scraped before and after a run,
//! the difference is that run's histograms: the latency kgate itself added, apart from the
//! clients' TLS and the broker, and how long the clients took to send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};
use kgate_proxy::held::{BOUNDS_NS, METRIC, RECEIVE_METRIC};

/// Cumulative counts of one API's histogram: `BOUNDS_NS.len()` buckets, then `+Inf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCounts(Vec<u64>);

impl HeldCounts {
    /// Counts of the requests between `earlier` and `self`.
    pub fn since(&self, earlier: &HeldCounts) -> HeldCounts {
        HeldCounts(
            self.0
                .iter()
                .zip(&earlier.0)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
        )
    }

    /// Requests counted.
    pub fn total(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    /// The `q`-quantile (0–1) in milliseconds, interpolated linearly inside its bucket as
    /// Prometheus' `histogram_quantile` does; `None` without samples or when it lies above
    /// the last bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        let mut lower_ns = 0u64;
        for (bound, cumulative) in BOUNDS_NS.iter().zip(&self.0) {
            if *cumulative as f64 >= rank && *cumulative > below {
                let inside = (rank - below as f64) / (*cumulative - below) as f64;
                let ns = lower_ns as f64 + inside.clamp(0.0, 1.0) * (bound - lower_ns) as f64;
                return Some(ns / 1e6);
            }
            below = *cumulative;
            lower_ns = *bound;
        }
        None
    }
}

/// Both histograms of one API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTimes {
    /// How long the gateway held the requests and their answers.
    pub held: HeldCounts,
    /// How long the requests took to arrive.
    pub receive: HeldCounts,
}

impl GatewayTimes {
    /// The requests between `earlier` and `self`.
    pub fn since(&self, earlier: &GatewayTimes) -> GatewayTimes {
        GatewayTimes {
            held: self.held.since(&earlier.held),
            receive: self.receive.since(&earlier.receive),
        }
    }
}

/// Reads `api`'s cumulative histograms from the admin endpoint at `admin` (all zero when the
/// gateway has not forwarded that API yet).
///
/// # Errors
/// When the endpoint does not answer 200, or answers a histogram kgate does not write.
pub fn scrape(admin: SocketAddr, api: &str) -> anyhow::Result<GatewayTimes> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("reading /metrics from {admin}"))?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!(
            "{admin} answered /metrics with {:?}",
            answer.lines().next().unwrap_or_default()
        );
    }
    Ok(GatewayTimes {
        held: parse(&answer, METRIC, api)?,
        receive: parse(&answer, RECEIVE_METRIC, api)?,
    })
}

/// The cumulative bucket counts of `metric` for `api` in a Prometheus exposition.
fn parse(exposition: &str, metric: &str, api: &str) -> anyhow::Result<HeldCounts> {
    let prefix = format!("{metric}_bucket{{api=\"{api}\",le=\"");
    let counts: Vec<u64> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| {
            let value = rest.rsplit(' ').next().unwrap_or_default();
            value
                .parse()
                .with_context(|| format!("bad bucket count {value:?} in {metric}"))
        })
        .collect::<anyhow::Result<_>>()?;
    match counts.len() {
        0 => Ok(HeldCounts(vec![0; BOUNDS_NS.len() + 1])),
        n if n == BOUNDS_NS.len() + 1 => Ok(HeldCounts(counts)),
        n => bail!(
            "{metric} for {api} has {n} buckets, this build expects {} (a gateway of another version?)",
            BOUNDS_NS.len() + 1
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;
    use kgate_proxy::held::RequestTimes;

    fn counts_of(times_us: &[u64]) -> HeldCounts {
        let times = RequestTimes::default();
        for t in times_us {
            times
                .held
                .record(ApiKey::Produce, Duration::from_micros(*t));
            // The other histogram must not leak into this one.
            times
                .receive
                .record(ApiKey::Produce, Duration::from_secs(1));
        }
        let mut out = String::new();
        times.render(&mut out);
        parse(&out, METRIC, "Produce").unwrap()
    }

    #[test]
    fn quantiles_come_from_the_gateways_own_exposition() {
        // 100 requests between 100 and 160 µs, spread evenly: the median is in that bucket.
        let times: Vec<u64> = (0..100).map(|i| 101 + i * 59 / 100).collect();
        let c = counts_of(&times);
        assert_eq!(c.total(), 100);
        let p50 = c.quantile_ms(0.5).unwrap();
        assert!((0.100..=0.160).contains(&p50), "{p50}");
        // One slow request of 3 ms moves p99 of 100 into its bucket, not the median.
        let mut slow = times.clone();
        slow.truncate(98);
        slow.extend([3_000, 3_000]);
        let c = counts_of(&slow);
        assert!(c.quantile_ms(0.5).unwrap() < 0.160);
        let p99 = c.quantile_ms(0.99).unwrap();
        assert!((2.5..=4.0).contains(&p99), "{p99}");
    }

    #[test]
    fn a_run_is_the_difference_of_two_scrapes() {
        let before = counts_of(&[50, 50]);
        let after = counts_of(&[50, 50, 2_000, 2_000]);
        let run = after.since(&before);
        assert_eq!(run.total(), 2);
        let p50 = run.quantile_ms(0.5).unwrap();
        assert!((1.6..=2.5).contains(&p50), "{p50}");
        assert_eq!(before.since(&before).quantile_ms(0.5), None);
    }

    #[test]
    fn an_api_not_yet_seen_is_all_zero_and_a_foreign_layout_is_refused() {
        assert_eq!(counts_of(&[]).total(), 0);
        let odd = format!("{METRIC}_bucket{{api=\"Produce\",le=\"0.1\"}} 3\n");
        assert!(parse(&odd, METRIC, "Produce").is_err());
        let bad = format!("{METRIC}_bucket{{api=\"Produce\",le=\"0.1\"}} x\n");
        assert!(parse(&bad, METRIC, "Produce").is_err());
    }
}
