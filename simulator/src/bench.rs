//! `kgate bench sim`: how fast the engine runs and how much memory a long run takes.
//!
//! Two measurements, both on the four-service comparison of the telemetry workload:
//! - **speed:** simulated events handled per second of wall time (target ≥ 1,000,000 on one
//!   core), over a run of [`BenchOptions::speed_duration`];
//! - **memory:** the process's peak resident set (`VmHWM` in `/proc/self/status`) during a
//!   one-hour simulated run at 5,000 messages/s (target ≤ 200 MB). The peak is reset first
//!   through `/proc/self/clear_refs` where the kernel allows it.

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
    /// Offered messages per second.
    pub rate: f64,
    /// Simulated length of the speed run.
    pub speed_duration: SimTime,
    /// Simulated length of the memory run (`None` skips it).
    pub memory_duration: Option<SimTime>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            rate: 5_000.0,
            speed_duration: SimTime::from_secs(600),
            memory_duration: Some(SimTime::from_secs(3600)),
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
    /// Messages (over all services) simulated per wall second.
    pub messages_per_s: f64,
    /// Peak resident memory in MiB, where `/proc` tells it.
    pub peak_rss_mib: Option<f64>,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The speed run (four services, telemetry).
    pub speed: BenchRun,
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

fn reset_peak() {
    // "5" resets the peak resident set size (Linux ≥ 4.0); harmless where refused.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn measure(rate: f64, duration: SimTime) -> Result<BenchRun, SimError> {
    let workload = WorkloadSpec::named("telemetry", rate)?;
    let scenario = Scenario::compare(workload, duration, &ServiceKind::COMPARE)?;
    reset_peak();
    let start = Instant::now();
    let report = scenario.run()?;
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    let events = report.events();
    let messages: u64 = report.services.iter().map(|s| s.produced).sum();
    Ok(BenchRun {
        simulated_s: duration.as_secs_f64(),
        messages_per_service: report.services.first().map_or(0, |s| s.produced),
        events,
        wall_s: wall,
        events_per_s: events as f64 / wall,
        messages_per_s: messages as f64 / wall,
        peak_rss_mib: peak_rss_mib(),
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
    let speed = measure(opts.rate, opts.speed_duration)?;
    Ok(BenchReport {
        speed,
        memory,
        targets:
            "speed >= 1,000,000 events/s on one core; memory <= 200 MiB for one hour at 5,000/s"
                .into(),
    })
}

impl BenchReport {
    /// A few lines for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "speed: {:.0} simulated events/s ({} events in {:.2} s of wall time; {:.0} messages/s over 4 services, {} s simulated)\n",
            self.speed.events_per_s, self.speed.events, self.speed.wall_s, self.speed.messages_per_s, self.speed.simulated_s
        );
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
