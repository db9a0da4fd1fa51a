//! The result of a run, and its renderings: a side-by-side table, one JSON document, CSV.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::SimError;
use crate::fault::Fault;
use crate::metrics::ServiceReport;
use crate::profile::ServiceKind;
use crate::scenario::Scenario;
use crate::time::SimTime;
use crate::trail::CausalTrail;

/// Format version of the JSON document; bumped when a field changes meaning.
pub const REPORT_VERSION: u32 = 1;

/// The offered workload, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadSummary {
    /// `telemetry`, `clickstream`, `payments` or `trace`.
    pub kind: String,
    /// Mean offered messages per second.
    pub rate_per_s: f64,
    /// Distinct keys, when fixed by the scenario.
    pub keys: Option<u64>,
    /// Fixed message size, when set.
    pub message_bytes: Option<u32>,
}

/// Everything a run produced: per-service results and the causal trail of every fault.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's description.
    pub description: String,
    /// The seed that reproduces this report.
    pub seed: u64,
    /// How long the producer ran.
    pub duration: SimTime,
    /// The workload.
    pub workload: WorkloadSummary,
    /// The faults as scheduled.
    pub faults: Vec<Fault>,
    /// One result per service, in the scenario's order.
    pub services: Vec<ServiceReport>,
    /// One trail per fault and service it was applied to.
    pub trails: Vec<CausalTrail>,
}

impl Report {
    pub(crate) fn new(
        s: &Scenario,
        services: Vec<ServiceReport>,
        trails: Vec<CausalTrail>,
    ) -> Report {
        Report {
            version: REPORT_VERSION,
            scenario: s.name.clone(),
            description: s.description.clone(),
            seed: s.seed,
            duration: s.duration,
            workload: WorkloadSummary {
                kind: s.workload.kind.name().to_string(),
                rate_per_s: s.workload.rate,
                keys: s.workload.keys,
                message_bytes: s.workload.message_bytes,
            },
            faults: s.faults.clone(),
            services,
            trails,
        }
    }

    /// The result of one service.
    pub fn service(&self, kind: ServiceKind) -> Option<&ServiceReport> {
        self.services.iter().find(|s| s.service == kind)
    }

    /// The trail of fault `fault_id` on `service`.
    pub fn trail(&self, fault_id: usize, service: ServiceKind) -> Option<&CausalTrail> {
        self.trails
            .iter()
            .find(|t| t.fault_id == fault_id && t.service == service)
    }

    /// Total discrete events handled, over all services.
    pub fn events(&self) -> u64 {
        self.services.iter().map(|s| s.events).sum()
    }

    /// The whole report as one pretty-printed JSON document.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One CSV row per service with the headline numbers.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "service,produced,acked,delivered,throttled,retries,redeliveries,duplicated,reordered,\
             lost,failed,dead_lettered,pending,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,cost_run_usd,cost_month_usd\n",
        );
        for s in &self.services {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.4},{:.2}",
                s.service,
                s.produced,
                s.acked,
                s.delivered,
                s.throttled,
                s.retries,
                s.redeliveries,
                s.duplicated.count,
                s.reordered.count,
                s.lost.count,
                s.failed.count,
                s.dead_lettered.count,
                s.pending,
                s.latency.p50_ms,
                s.latency.p90_ms,
                s.latency.p99_ms,
                s.latency.p999_ms,
                s.latency.max_ms,
                s.cost.run_usd,
                s.cost.month_usd
            );
        }
        out
    }

    /// The time series of one service as CSV.
    pub fn timeseries_csv(&self, kind: ServiceKind) -> Option<String> {
        let s = self.service(kind)?;
        let mut out = String::from(
            "t_s,produced,delivered,throttled,retries,duplicates,redeliveries,failed,lag_messages,\
             lag_age_ms,latency_mean_ms,latency_max_ms,under_replicated,latency_p50_ms,\
             latency_p99_ms\n",
        );
        for x in &s.samples {
            let _ = writeln!(
                out,
                "{:.3},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{},{:.3},{:.3}",
                x.t_s,
                x.produced,
                x.delivered,
                x.throttled,
                x.retries,
                x.duplicates,
                x.redeliveries,
                x.failed,
                x.lag_messages,
                x.lag_age_ms,
                x.latency_mean_ms,
                x.latency_max_ms,
                x.under_replicated,
                x.latency_p50_ms,
                x.latency_p99_ms
            );
        }
        Some(out)
    }

    /// The causal trails as CSV, one row per step.
    pub fn trails_csv(&self) -> String {
        let mut out =
            String::from("fault_id,fault,service,stage,code,at_ms,count,value,baseline,detail\n");
        for t in &self.trails {
            for s in &t.steps {
                let stage = match s.stage {
                    crate::trail::Stage::Fault => "fault",
                    crate::trail::Stage::Mechanism => "mechanism",
                    crate::trail::Stage::Metric => "metric",
                    crate::trail::Stage::Symptom => "symptom",
                };
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{:.3},{},{},{},\"{}\"",
                    t.fault_id,
                    t.fault,
                    t.service,
                    stage,
                    s.code,
                    s.at.as_millis_f64(),
                    s.count,
                    s.value.map(|v| format!("{v:.3}")).unwrap_or_default(),
                    s.baseline.map(|v| format!("{v:.3}")).unwrap_or_default(),
                    s.detail.replace('"', "'")
                );
            }
        }
        out
    }

    /// The side-by-side table `compare` and `run` print.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} at {:.0} msg/s for {} (seed {})",
            self.scenario, self.workload.kind, self.workload.rate_per_s, self.duration, self.seed
        );
        let width = 16;
        let mut row = |label: &str, f: &dyn Fn(&ServiceReport) -> String| {
            let _ = write!(out, "{label:<22}");
            for s in &self.services {
                let _ = write!(out, "{:>width$}", f(s));
            }
            out.push('\n');
        };
        row("", &|s| s.service.name().to_string());
        row("produced", &|s| s.produced.to_string());
        row("delivered", &|s| s.delivered.to_string());
        row("throttled requests", &|s| s.throttled.to_string());
        row("producer retries", &|s| s.retries.to_string());
        row("redeliveries", &|s| s.redeliveries.to_string());
        row("duplicated", &|s| s.duplicated.count.to_string());
        row("reordered", &|s| s.reordered.count.to_string());
        row("lost", &|s| s.lost.count.to_string());
        row("publish failed", &|s| s.failed.count.to_string());
        row("dead-lettered", &|s| s.dead_lettered.count.to_string());
        row("still pending", &|s| s.pending.to_string());
        row("latency p50 ms", &|s| fmt_ms(s.latency.p50_ms));
        row("latency p99 ms", &|s| fmt_ms(s.latency.p99_ms));
        row("latency p99.9 ms", &|s| fmt_ms(s.latency.p999_ms));
        row("latency max ms", &|s| fmt_ms(s.latency.max_ms));
        row("publish ack p99 ms", &|s| fmt_ms(s.ack_latency.p99_ms));
        row("peak lag (messages)", &|s| {
            s.samples
                .iter()
                .map(|x| x.lag_messages)
                .max()
                .unwrap_or(0)
                .to_string()
        });
        if self.services.iter().any(|s| s.replay.is_some()) {
            row("replay: reprocessed", &|s| {
                s.replay
                    .as_ref()
                    .map_or(String::new(), |r| r.reprocessed.to_string())
            });
            row("replay: lost", &|s| {
                s.replay
                    .as_ref()
                    .map_or(String::new(), |r| r.lost.to_string())
            });
        }
        row("cost this run USD", &|s| format!("{:.4}", s.cost.run_usd));
        row("cost per month USD", &|s| {
            format!("{:.0}", s.cost.month_usd)
        });
        let _ = writeln!(
            out,
            "(costs: illustrative list prices in USD for one region, not a quote; each billed \
             line, its price and its source are in --json; check the vendor's pricing page)"
        );
        for s in &self.services {
            let _ = writeln!(
                out,
                "\n{} ({}): {}",
                s.service,
                s.profile,
                s.settings.join(" ")
            );
            let _ = writeln!(out, "  bottleneck: {}", s.bottleneck.detail);
            for note in &s.bottleneck.notes {
                let _ = writeln!(out, "  note: {note}");
            }
            if let Some(r) = &s.replay {
                let _ = writeln!(
                    out,
                    "  replay: {} of {} records reprocessed, {} lost: {}",
                    r.reprocessed, r.affected, r.lost, r.detail
                );
            }
            for m in &s.baseline_mechanisms {
                let _ = writeln!(
                    out,
                    "  without any fault: {} ×{}: {}",
                    m.code, m.count, m.detail
                );
            }
            for (what, list) in [
                ("lost", &s.lost),
                ("duplicated", &s.duplicated),
                ("reordered", &s.reordered),
                ("failed", &s.failed),
            ] {
                if list.count > 0 {
                    let shown: Vec<String> = list.ids.iter().take(8).map(u64::to_string).collect();
                    let more = if list.count > 8 { ", ..." } else { "" };
                    let _ = writeln!(out, "  {what} ids: {}{more}", shown.join(", "));
                }
            }
        }
        if !self.trails.is_empty() {
            let _ = writeln!(
                out,
                "\ncausal trails (fault → mechanism → metric → symptom):"
            );
            for t in &self.trails {
                let _ = writeln!(
                    out,
                    "  #{} {} on {}: {}",
                    t.fault_id,
                    t.fault,
                    t.service,
                    t.summary()
                );
            }
        }
        out
    }

    /// Writes `summary.csv`, `trails.csv`, `report.json`, one `timeseries-<service>.csv` per
    /// service and the charts (SVG and PNG) into `dir`, creating it if needed.
    ///
    /// # Errors
    /// A file that cannot be written, or a chart that cannot be drawn.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| SimError::io(dir, e))?;
        let mut written = Vec::new();
        let mut put = |name: &str, text: &str| -> Result<(), SimError> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| SimError::io(&path, e))?;
            written.push(path);
            Ok(())
        };
        put("summary.csv", &self.to_csv())?;
        put("trails.csv", &self.trails_csv())?;
        put("report.json", &self.to_json())?;
        for s in &self.services {
            if let Some(csv) = self.timeseries_csv(s.service) {
                put(&format!("timeseries-{}.csv", s.service), &csv)?;
            }
        }
        written.extend(crate::chart::write_charts(self, dir)?);
        Ok(written)
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.2}")
    }
}
