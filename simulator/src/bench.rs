//! `kgate bench sim`: how fast the engine runs and how much memory a long run takes.
//!
//! Three measurements, all on the four-service comparison of the telemetry workload:
//! - **speed:** simulated events handled per CPU second (what one core does; target
//!   ≥ 1,000,000) and per wall second (the services run in parallel, one thread each), over a
//!   run of [`BenchOptions::speed_duration`] at [`BenchOptions::rate`];
//! - **overload:** the wall time of a run of [`BenchOptions::overload_duration`] at
//!   [`BenchOptions::overload_rate`] (ten minutes at 50,000 messages/s: over eight times the
//!   6,000/s that the default 6 throughput units and 6 shards take, so most requests are
//!   throttled and retried; target under 20 s);
//! - **memory:** the process's peak resident set (`VmHWM` in `/proc/self/status`) during a
//!   one-hour simulated run at 5,000 messages/s (target ≤ 200 MB). The peak is reset first
//!   through `/proc/self/clear_refs` where the kernel allows it.
//!
//! Speed and overload are timed [`BenchOptions::rounds`] times and reported as the median and
//! the spread (lowest to highest): on a shared machine one round can be slowed by others' work,
//! and a single figure would hide that. The simulated results are the same in every round
//! (one seed); only the wall time varies.

use std::time::Instant;

use serde::Serialize;

use crate::profile::ServiceKind;
use crate::scenario::Scenario;
use crate::time::SimTime;
use crate::workload::WorkloadSpec;
use crate::SimError;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Offered messages per second in the speed and memory runs.
    pub rate: f64,
    /// Simulated length of the speed run.
    pub speed_duration: SimTime,
    /// Offered messages per second in the overload run.
    pub overload_rate: f64,
    /// Simulated length of the overload run (`None` skips it).
    pub overload_duration: Option<SimTime>,
    /// Simulated length of the memory run (`None` skips it).
    pub memory_duration: Option<SimTime>,
    /// How many times the speed and overload runs are timed (at least 1).
    pub rounds: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            rate: 5_000.0,
            speed_duration: SimTime::from_secs(600),
            overload_rate: 50_000.0,
            overload_duration: Some(SimTime::from_secs(600)),
            memory_duration: Some(SimTime::from_secs(3600)),
            rounds: 3,
        }
    }
}
/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRun {
    /// Simulated seconds.
    pub simulated_s: f64,
    /// Messages offered per service.
    pub messages_per_service: u64,
    /// Discrete events handled over all services.
    pub events: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// `events / wall_s`.
    pub events_per_s: f64,
    /// `events / cpu_s`: what one core does (the services run in parallel, so this is the
    /// figure to compare across machines with different numbers of cores).
    pub events_per_cpu_s: Option<f64>,
    /// Messages (over all services) simulated per wall second.
    pub messages_per_s: f64,
    /// Peak resident memory in MiB, where `/proc` tells it.
    pub peak_rss_mib: Option<f64>,
    /// Seconds the run spent on the CPUs (all threads), where `/proc` tells it: on a machine
    /// busy with other work the wall time grows and this does not (much).
    pub cpu_s: Option<f64>,
}

/// A figure measured in several rounds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Spread {
    /// The middle round (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The lowest round.
    pub min: f64,
    /// The highest round.
    pub max: f64,
    /// Every round, in the order measured.
    pub rounds: Vec<f64>,
}

impl Spread {
    /// The median and spread of `values` (empty gives zeros).
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Spread {
            median,
            min: v.first().copied().unwrap_or(0.0),
            max: v.last().copied().unwrap_or(0.0),
            rounds: values.to_vec(),
        }
    }
}

/// Rounds of one run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRounds {
    /// The last round's figures (simulated counts are the same in every round).
    pub last: BenchRun,
    /// Wall seconds per round.
    pub wall_s: Spread,
    /// Simulated events per wall second, per round.
    pub events_per_s: Spread,
    /// Simulated events per CPU second, per round (none where `/proc` is missing).
    pub events_per_cpu_s: Option<Spread>,
    /// CPU seconds per round (none where `/proc` is missing).
    pub cpu_s: Option<Spread>,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The speed runs (four services, telemetry).
    pub speed: BenchRounds,
    /// The overload runs (four services, telemetry, far above the quotas).
    pub overload: Option<BenchRounds>,
    /// The one-hour memory run.
    pub memory: Option<BenchRun>,
    /// The targets, for people reading the JSON.
    pub targets: String,
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Time this process has spent on the CPUs, user and system, every thread included (those
/// that have ended too): `utime` and `stime` of `/proc/self/stat`, in the kernel's USER_HZ
/// ticks (100 a second on Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are the 12th and 13th after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn reset_peak() {
    // "5" resets the peak resident set size (Linux ≥ 4.0); harmless where refused.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn measure(rate: f64, duration: SimTime) -> Result<BenchRun, SimError> {
    let workload = WorkloadSpec::named("telemetry", rate)?;
    let scenario = Scenario::compare(workload, duration, &ServiceKind::COMPARE)?;
    reset_peak();
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let report = scenario.run()?;
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    let cpu_s = cpu_start.and_then(|a| cpu_seconds().map(|b| b - a));
    let events = report.events();
    let messages: u64 = report.services.iter().map(|s| s.produced).sum();
    Ok(BenchRun {
        simulated_s: duration.as_secs_f64(),
        messages_per_service: report.services.first().map_or(0, |s| s.produced),
        events,
        wall_s: wall,
        events_per_s: events as f64 / wall,
        events_per_cpu_s: cpu_s.filter(|c| *c > 0.0).map(|c| events as f64 / c),
        messages_per_s: messages as f64 / wall,
        peak_rss_mib: peak_rss_mib(),
        cpu_s,
    })
}

fn rounds(rate: f64, duration: SimTime, n: usize) -> Result<BenchRounds, SimError> {
    let mut runs = Vec::new();
    for _ in 0..n.max(1) {
        runs.push(measure(rate, duration)?);
    }
    let wall: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
    let eps: Vec<f64> = runs.iter().map(|r| r.events_per_s).collect();
    let cpu: Option<Vec<f64>> = runs.iter().map(|r| r.cpu_s).collect();
    let per_cpu: Option<Vec<f64>> = runs.iter().map(|r| r.events_per_cpu_s).collect();
    let last = runs
        .pop()
        .ok_or_else(|| SimError::Invalid("no round ran".into()))?;
    Ok(BenchRounds {
        last,
        wall_s: Spread::of(&wall),
        events_per_s: Spread::of(&eps),
        events_per_cpu_s: per_cpu.map(|c| Spread::of(&c)),
        cpu_s: cpu.map(|c| Spread::of(&c)),
    })
}

/// Runs the benchmark.
///
/// # Errors
/// Only if the embedded profiles were broken.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, SimError> {
    let memory = match opts.memory_duration {
        Some(d) => Some(measure(opts.rate, d)?),
        None => None,
    };
    let speed = rounds(opts.rate, opts.speed_duration, opts.rounds)?;
    let overload = match opts.overload_duration {
        Some(d) => Some(rounds(opts.overload_rate, d, opts.rounds)?),
        None => None,
    };
    Ok(BenchReport {
        speed,
        overload,
        memory,
        targets: "speed >= 1,000,000 events per CPU second (one core); overload (10 min at \
                  50,000/s) < 20 s of wall time; memory <= 200 MiB for one hour at 5,000/s"
            .into(),
    })
}

impl BenchReport {
    /// A few lines for people.
    pub fn to_text(&self) -> String {
        let sp = &self.speed;
        let n = sp.wall_s.rounds.len();
        let per_core = sp.events_per_cpu_s.as_ref().map_or_else(
            || "per CPU second unknown (no /proc)".to_string(),
            |c| {
                format!(
                    "{} per CPU second (one core; spread {} to {})",
                    millions(c.median),
                    millions(c.min),
                    millions(c.max)
                )
            },
        );
        let mut out = format!(
            "speed: {per_core}; {} per wall second with the 4 services in parallel, median of \
             {n} rounds (spread {} to {}); each round {} events, {} s simulated at {:.0} \
             messages/s per service, {:.2} s of wall time (median)\n",
            millions(sp.events_per_s.median),
            millions(sp.events_per_s.min),
            millions(sp.events_per_s.max),
            sp.last.events,
            sp.last.simulated_s,
            sp.last.messages_per_service as f64 / sp.last.simulated_s.max(1e-9),
            sp.wall_s.median
        );
        if let Some(o) = &self.overload {
            out.push_str(&format!(
                "overload: {:.1} s of wall time, median of {} rounds (spread {:.1} to {:.1} s), \
                 for {} s simulated at {:.0} messages/s per service, 4 services ({} events, {} \
                 events/s)\n",
                o.wall_s.median,
                o.wall_s.rounds.len(),
                o.wall_s.min,
                o.wall_s.max,
                o.last.simulated_s,
                o.last.messages_per_service as f64 / o.last.simulated_s.max(1e-9),
                o.last.events,
                millions(o.events_per_s.median)
            ));
            if let Some(c) = &o.cpu_s {
                out.push_str(&format!(
                    "overload on the CPUs: {:.1} s, median of {} rounds (spread {:.1} to {:.1} \
                     s), all threads together; the wall time above is shorter with several \
                     cores and longer when other processes have them\n",
                    c.median,
                    c.rounds.len(),
                    c.min,
                    c.max
                ));
            }
        }
        if let Some(m) = &self.memory {
            out.push_str(&format!(
                "memory: peak {} for {} s simulated at {:.0} messages/s per service ({} events, {:.1} s wall, {:.0} events/s)\n",
                m.peak_rss_mib.map_or("unknown (no /proc)".to_string(), |p| format!("{p:.1} MiB")),
                m.simulated_s,
                m.messages_per_service as f64 / m.simulated_s.max(1e-9),
                m.events,
                m.wall_s,
                m.events_per_s
            ));
        }
        out.push_str(&format!("targets: {}\n", self.targets));
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// `8.76 M` for 8,760,000.
fn millions(x: f64) -> String {
    format!("{:.2} M", x / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_gives_the_middle_round_and_the_extremes() {
        let s = Spread::of(&[14.0, 19.5, 13.0]);
        assert_eq!((s.median, s.min, s.max), (14.0, 13.0, 19.5));
        assert_eq!(s.rounds, vec![14.0, 19.5, 13.0]);
        assert_eq!(Spread::of(&[1.0, 4.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Spread::of(&[]).median, 0.0);
    }

    #[test]
    fn every_round_is_timed_and_simulates_the_same_run() {
        let r = rounds(2_000.0, SimTime::from_secs(2), 3).unwrap();
        assert_eq!(r.wall_s.rounds.len(), 3);
        assert_eq!(r.events_per_s.rounds.len(), 3);
        assert!(r.wall_s.min <= r.wall_s.median && r.wall_s.median <= r.wall_s.max);
        assert!(r.last.events > 0 && r.last.messages_per_service > 3_000);
    }
}
