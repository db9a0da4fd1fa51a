//! Small statistics shared by the benchmarks.

use std::time::Duration;

use serde::Serialize;

/// The `p`-th percentile (0–100, nearest rank) of `sorted`, in milliseconds; 0 when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

/// p50 and p99 of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Number of samples.
    pub samples: usize,
}

impl Latency {
    /// Sorts `samples` and takes p50 and p99.
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self {
            p50_ms: percentile_ms(&samples, 50.0),
            p99_ms: percentile_ms(&samples, 99.0),
            samples: samples.len(),
        }
    }
}

/// Median and range of one figure over rounds: the median says what a round typically gives,
/// the range how much this (shared, noisy) machine moved it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of rounds.
    pub rounds: usize,
}

impl Spread {
    /// The spread of `values`; all zero when empty.
    pub fn of(mut values: Vec<f64>) -> Self {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return Self {
                median: 0.0,
                min: 0.0,
                max: 0.0,
                rounds: 0,
            };
        }
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Self {
            median,
            min: values[0],
            max: values[n - 1],
            rounds: n,
        }
    }

    /// `median (min–max)` with `decimals` digits.
    pub fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

/// One target of an issue, checked against a measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured, in words.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// The limit, in the value's unit.
    pub limit: f64,
    /// `">="` or `"<="`.
    pub comparison: &'static str,
    /// Unit of `value` and `limit`.
    pub unit: &'static str,
    /// Whether the value meets the limit.
    pub pass: bool,
}

impl Target {
    /// A target met when `value >= limit`.
    pub fn at_least(name: &str, value: f64, limit: f64, unit: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            value,
            limit,
            comparison: ">=",
            unit,
            pass: value >= limit,
        }
    }

    /// A target met when `value <= limit`.
    pub fn at_most(name: &str, value: f64, limit: f64, unit: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            value,
            limit,
            comparison: "<=",
            unit,
            pass: value <= limit,
        }
    }

    /// `PASS` or `MISS`.
    pub fn verdict(&self) -> &'static str {
        if self.pass {
            "PASS"
        } else {
            "MISS"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((percentile_ms(&ms, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&ms, 99.0) - 99.0).abs() < 1e-9);
        assert!((percentile_ms(&ms, 100.0) - 100.0).abs() < 1e-9);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
        let one = [Duration::from_millis(7)];
        assert!((percentile_ms(&one, 1.0) - 7.0).abs() < 1e-9);
    }

    #[test]
    fn spreads_take_the_median_and_the_range() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.rounds), (2.0, 1.0, 3.0, 3));
        let s = Spread::of(vec![4.0, 1.0, 2.0, 3.0, f64::NAN]);
        assert_eq!((s.median, s.min, s.max, s.rounds), (2.5, 1.0, 4.0, 4));
        assert_eq!(Spread::of(Vec::new()).rounds, 0);
        assert_eq!(Spread::of(vec![1.0, 2.0, 3.0]).show(1), "2.0 (1.0–3.0)");
    }

    #[test]
    fn targets_compare_both_ways() {
        assert!(Target::at_least("x", 0.95, 0.90, "").pass);
        assert!(!Target::at_least("x", 0.85, 0.90, "").pass);
        assert!(Target::at_most("y", 0.5, 1.0, "ms").pass);
        assert_eq!(Target::at_most("y", 2.0, 1.0, "ms").verdict(), "MISS");
    }
}
