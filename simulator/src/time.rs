//! Simulated time: microseconds since the start of a run, never wall time.
//!
//! Every model reads the clock of its own [`crate::engine::EventQueue`], so two runs with one
//! seed see the same instants whatever the machine is doing.

use std::fmt;

use serde::{Serialize, Serializer};

/// A point or a span of simulated time, in microseconds.
///
/// One type serves both because every model adds spans to instants all the time; the
/// microsecond grain keeps Kafka's sub-millisecond replication visible while a `u64` still
/// covers half a million years.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// A time later than any run reaches; used for "never".
    pub const NEVER: SimTime = SimTime(u64::MAX);

    /// A span of `us` microseconds.
    pub const fn from_micros(us: u64) -> SimTime {
        SimTime(us)
    }

    /// A span of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1_000))
    }

    /// A span of `s` seconds.
    pub const fn from_secs(s: u64) -> SimTime {
        SimTime(s.saturating_mul(1_000_000))
    }

    /// A span of fractional seconds; negative and NaN values become zero.
    pub fn from_secs_f64(s: f64) -> SimTime {
        let us = s * 1e6;
        if !(us > 0.0 && us.is_finite()) {
            SimTime::ZERO
        } else if us < 9.2e18 {
            // Adding a half and truncating rounds a positive value as `round()` does, without
            // the library call that `round()` is on baseline x86-64: every message's
            // inter-arrival gap comes through here.
            SimTime((us + 0.5) as i64 as u64)
        } else {
            SimTime(u64::MAX)
        }
    }

    /// A span of fractional milliseconds; negative and NaN values become zero.
    pub fn from_millis_f64(ms: f64) -> SimTime {
        SimTime::from_secs_f64(ms / 1e3)
    }

    /// Microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }

    /// Fractional milliseconds.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e3
    }

    /// Fractional seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// `self + d`, saturating at [`SimTime::NEVER`].
    pub const fn plus(self, d: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// `self - d`, saturating at zero.
    pub const fn minus(self, d: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(d.0))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if us == u64::MAX {
            f.write_str("never")
        } else if us.is_multiple_of(3_600_000_000) && us > 0 {
            write!(f, "{}h", us / 3_600_000_000)
        } else if us.is_multiple_of(60_000_000) && us > 0 {
            write!(f, "{}m", us / 60_000_000)
        } else if us.is_multiple_of(1_000_000) {
            write!(f, "{}s", us / 1_000_000)
        } else if us.is_multiple_of(1_000) {
            write!(f, "{}ms", us / 1_000)
        } else {
            write!(f, "{:.3}ms", us as f64 / 1e3)
        }
    }
}

impl Serialize for SimTime {
    /// Serialized as fractional milliseconds, the unit dashboards and spreadsheets expect.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_millis_f64())
    }
}

/// Parses a span such as `250ms`, `30s`, `10m`, `1h`, `1h30m` or `1.5s`.
///
/// A bare number is read as seconds, the unit people mean when they type `--duration 60`.
///
/// # Errors
/// A message saying what was expected, for the caller to place in a file or flag context.
pub fn parse_duration(text: &str) -> Result<SimTime, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("expected a duration such as 30s, 10m or 1h, got an empty string".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return check_span(secs, text);
    }
    let mut total = 0.0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "expected a duration such as 30s, 10m or 1h, got `{text}`"
            ));
        }
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("expected a duration such as 30s, 10m or 1h, got `{text}`"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let factor = match unit.trim() {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hours" => 3600.0,
            "d" | "days" => 86_400.0,
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}`; use us, ms, s, m, h or d"
                ))
            }
        };
        total += value * factor;
        rest = next;
    }
    check_span(total, text)
}

fn check_span(secs: f64, text: &str) -> Result<SimTime, String> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration `{text}` is out of range"));
    }
    Ok(SimTime::from_secs_f64(secs))
}

/// Parses a rate such as `5000/s`, `300/min`, `5k/s` or a bare `5000` (per second).
///
/// # Errors
/// A message saying what was expected.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, p)) => (n.trim(), p.trim()),
        None => (t, "s"),
    };
    let (digits, mult) = match num.chars().last() {
        Some('k' | 'K') => (&num[..num.len() - 1], 1e3),
        Some('M') => (&num[..num.len() - 1], 1e6),
        _ => (num, 1.0),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("expected a rate such as 5000/s or 300/min, got `{text}`"))?;
    let per_secs = match per {
        "s" | "sec" => 1.0,
        "min" | "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown rate unit `/{other}` in `{text}`; use /s, /min or /h"
            ))
        }
    };
    let rate = value * mult / per_secs;
    if !rate.is_finite() || rate <= 0.0 || rate > 1e8 {
        return Err(format!("rate `{text}` must be above 0 and at most 100M/s"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(SimTime::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(SimTime::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(SimTime::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(SimTime::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(SimTime::from_millis(1500)));
        assert_eq!(parse_duration("60"), Ok(SimTime::from_secs(60)));
    }

    #[test]
    fn bad_durations_say_what_was_expected() {
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown duration unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn rates_parse_per_second_and_per_minute() {
        assert_eq!(parse_rate("5000/s"), Ok(5000.0));
        assert_eq!(parse_rate("5k/s"), Ok(5000.0));
        assert_eq!(parse_rate("600/min"), Ok(10.0));
        assert_eq!(parse_rate("250"), Ok(250.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0/s").is_err());
    }

    #[test]
    fn display_picks_the_largest_whole_unit() {
        assert_eq!(SimTime::from_secs(600).to_string(), "10m");
        assert_eq!(SimTime::from_millis(1500).to_string(), "1500ms");
        assert_eq!(SimTime::from_secs(7200).to_string(), "2h");
    }
}
