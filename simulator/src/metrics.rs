//! Measurement: what each service did to each message, and the time series behind the charts.
//!
//! The [`Collector`] keeps one status byte per message id (delivered, duplicated, lost, ...) so a
//! one-hour run at 5,000 messages/s costs 18 MB, not a record per delivery; latency goes into a
//! log-linear histogram; counters are cut into [`Sample`]s every sample interval. It also owns
//! the attribution of mechanisms and symptoms to faults, which becomes the causal trails.

use serde::Serialize;

use crate::fault::Fault;
use crate::profile::ServiceKind;
use crate::time::SimTime;
use crate::trail::{CausalTrail, Stage, TrailStep};
use crate::workload::KeyTable;

/// How many message ids a report lists per category (the counts are always complete).
pub const MAX_LISTED_IDS: usize = 10_000;
/// How many message ids a trail step lists.
pub const MAX_TRAIL_IDS: usize = 1_000;
/// How long after a fault ends its effects are still attributed to it.
pub const SETTLE: SimTime = SimTime::from_secs(30);

const DELIVERED: u8 = 1;
const DUPLICATED: u8 = 2;
const FAILED: u8 = 4;
const LOST: u8 = 8;
const REORDERED: u8 = 16;
const DEAD: u8 = 32;
const PENDING: u8 = 64;
/// Read by a consumer, then cut from the log (unclean leader election): lost from the log
/// although the reader that already had it keeps it.
const CUT_AFTER_READ: u8 = 128;

/// No message of a key delivered yet.
const NO_ID: u64 = u64::MAX;

/// A log-linear latency histogram over microseconds (about 3% precision, fixed 16 KiB).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: f64,
    max: u64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; (64 * SUB) as usize],
            total: 0,
            sum: 0.0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        let sub = (v >> shift) - SUB;
        ((u64::from(shift) + 1) * SUB + sub) as usize
    }

    fn value_at(index: usize) -> u64 {
        let i = index as u64;
        if i < SUB {
            return i;
        }
        let shift = i / SUB - 1;
        let sub = i % SUB;
        // The middle of the bucket.
        ((SUB + sub) << shift) + ((1u64 << shift) >> 1)
    }

    /// Adds one observation.
    pub fn record(&mut self, t: SimTime) {
        let v = t.as_micros();
        let i = Self::index(v).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.sum += v as f64;
        self.max = self.max.max(v);
    }

    /// The value below which `q` (0..=1) of the observations fall.
    pub fn quantile(&self, q: f64) -> SimTime {
        if self.total == 0 {
            return SimTime::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return SimTime::from_micros(Self::value_at(i).min(self.max));
            }
        }
        SimTime::from_micros(self.max)
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The summary a report shows.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            count: self.total,
            mean_ms: if self.total > 0 {
                self.sum / self.total as f64 / 1e3
            } else {
                0.0
            },
            p50_ms: self.quantile(0.50).as_millis_f64(),
            p90_ms: self.quantile(0.90).as_millis_f64(),
            p99_ms: self.quantile(0.99).as_millis_f64(),
            p999_ms: self.quantile(0.999).as_millis_f64(),
            max_ms: self.max as f64 / 1e3,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Observations.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// One point of the time series: what happened during one sample interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// End of the interval, in seconds since the start.
    pub t_s: f64,
    /// Messages the producer offered.
    pub produced: u64,
    /// Messages delivered for the first time.
    pub delivered: u64,
    /// Throttled requests (rejected or delayed by a quota).
    pub throttled: u64,
    /// Producer retries.
    pub retries: u64,
    /// Duplicate deliveries.
    pub duplicates: u64,
    /// Redeliveries by the service (ack deadline, retry schedule, replay).
    pub redeliveries: u64,
    /// Publishes that failed for good.
    pub failed: u64,
    /// Messages stored but not yet consumed, at the end of the interval.
    pub lag_messages: u64,
    /// Age of the oldest unconsumed message, in milliseconds.
    pub lag_age_ms: f64,
    /// Mean end-to-end latency of this interval's deliveries.
    pub latency_mean_ms: f64,
    /// Maximum end-to-end latency of this interval's deliveries.
    pub latency_max_ms: f64,
    /// Partitions with fewer in-sync replicas than replicas (Kafka only, else 0).
    pub under_replicated: u64,
    /// Median end-to-end latency of this interval's deliveries (0 without deliveries).
    pub latency_p50_ms: f64,
    /// 99th percentile end-to-end latency of this interval's deliveries.
    pub latency_p99_ms: f64,
}

/// A list of message ids, capped, with the full count.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdList {
    /// How many messages.
    pub count: u64,
    /// The first [`MAX_LISTED_IDS`] ids, ascending.
    pub ids: Vec<u64>,
    /// Whether `ids` was cut short.
    pub truncated: bool,
}

impl IdList {
    fn push(&mut self, id: u64, cap: usize) {
        self.count += 1;
        if self.ids.len() < cap {
            self.ids.push(id);
        } else {
            self.truncated = true;
        }
    }
}

/// How a cost line scales with time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CostBasis {
    /// A steady-state monthly charge, such as storing the configured retention's worth of
    /// data: `amount` is per month and the run is charged its share of a 730-hour month.
    Month,
    /// Used by the run (hours, requests, bytes moved): `amount` is the run's and a month is
    /// extrapolated from the run's length.
    Run,
}

/// One line of a cost estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostLine {
    /// What is billed (`shard-hours`, `PUT payload units`, ...).
    pub item: String,
    /// How many units: used by the run, or per month for a [`CostBasis::Month`] line.
    pub quantity: f64,
    /// Price per unit, in USD.
    pub unit_price: f64,
    /// `quantity × unit_price`.
    pub amount: f64,
    /// Whether `amount` is the run's or a month's.
    pub basis: CostBasis,
}

/// A cost estimate from the profile's pricing basis.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostEstimate {
    /// Total for the simulated run, USD (monthly lines prorated to the run's length).
    pub run_usd: f64,
    /// A month at the run's rates plus the steady-state monthly lines, USD.
    pub month_usd: f64,
    /// The billed items.
    pub lines: Vec<CostLine>,
    /// Caveats (prices are illustrative: check the vendor's page).
    pub note: String,
}

/// Hours in the month prices are quoted for.
pub const HOURS_PER_MONTH: f64 = 730.0;

impl CostEstimate {
    /// Adds a line the run used (extrapolated to a month by time).
    pub fn line(&mut self, item: &str, quantity: f64, unit_price: f64) {
        self.push(item, quantity, unit_price, CostBasis::Run);
    }

    /// Adds a steady-state monthly line: `quantity` units per month.
    pub fn monthly(&mut self, item: &str, quantity: f64, unit_price: f64) {
        self.push(item, quantity, unit_price, CostBasis::Month);
    }

    fn push(&mut self, item: &str, quantity: f64, unit_price: f64, basis: CostBasis) {
        self.lines.push(CostLine {
            item: item.to_string(),
            quantity,
            unit_price,
            amount: quantity * unit_price,
            basis,
        });
    }

    /// Totals the lines for a run of length `run`.
    pub fn finish(&mut self, run: SimTime, note: &str) {
        let hours = run.as_secs_f64() / 3600.0;
        let sum = |b: CostBasis| -> f64 {
            self.lines
                .iter()
                .filter(|l| l.basis == b)
                .map(|l| l.amount)
                .sum()
        };
        let (used, monthly) = (sum(CostBasis::Run), sum(CostBasis::Month));
        self.run_usd = used + monthly * hours / HOURS_PER_MONTH;
        self.month_usd = monthly
            + if hours > 0.0 {
                used * HOURS_PER_MONTH / hours
            } else {
                0.0
            };
        self.note = note.to_string();
    }
}

/// The stage that limits how many messages per second a service can take and deliver, for
/// the workload offered: the number that binds and what would relieve it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bottleneck {
    /// `producer`, `brokers`, `partitions`, `consumers` or `quota`.
    pub stage: String,
    /// What the stage can carry, messages per second.
    pub capacity_per_s: f64,
    /// What the producer offered, messages per second.
    pub offered_per_s: f64,
    /// Whether the offered rate is above the capacity (the stage is saturated).
    pub binding: bool,
    /// One sentence: how the capacity is made up, against the offered rate, and the remedy.
    pub detail: String,
    /// Facts about limits that are not capacities, such as a partition above what the
    /// service guarantees it (Event Hubs throttles the namespace, not the partition).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Formats a rate for people: `30,000`, `1,234`, `0.5`.
pub(crate) fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        return "unlimited".into();
    }
    if x < 10.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x.round());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Everything one service did in one run.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceReport {
    /// The service.
    pub service: ServiceKind,
    /// The profile's name.
    pub profile: String,
    /// The settings that shaped this run, as `name=value` strings.
    pub settings: Vec<String>,
    /// Messages the producer offered.
    pub produced: u64,
    /// Bytes the producer offered.
    pub produced_bytes: u64,
    /// Messages acknowledged to the producer.
    pub acked: u64,
    /// Distinct messages delivered to consumers.
    pub delivered: u64,
    /// Throttled requests.
    pub throttled: u64,
    /// Producer retries.
    pub retries: u64,
    /// Redeliveries by the service.
    pub redeliveries: u64,
    /// Messages delivered more than once (ids), and the number of extra deliveries.
    pub duplicated: IdList,
    /// Extra deliveries in total.
    pub duplicate_deliveries: u64,
    /// Messages delivered after a later message of the same key.
    pub reordered: IdList,
    /// Messages the service accepted (or the producer sent with acks=0) and then lost: never
    /// delivered, or cut from the log after a consumer had read them (see
    /// `lost_after_delivery`).
    pub lost: IdList,
    /// Of `lost`, how many a consumer had already read before the log lost them (truncation
    /// after an unclean leader election): that reader has records no replay will find again.
    pub lost_after_delivery: u64,
    /// Messages whose publish failed for good (the producer was told).
    pub failed: IdList,
    /// Messages moved to a dead-letter destination.
    pub dead_lettered: IdList,
    /// Messages still stored and not yet consumed when the run ended.
    pub pending: u64,
    /// End-to-end latency, creation to first delivery.
    pub latency: Percentiles,
    /// Publish latency, creation to acknowledgement.
    pub ack_latency: Percentiles,
    /// Cost estimate.
    pub cost: CostEstimate,
    /// The stage that limits the service for this workload.
    pub bottleneck: Bottleneck,
    /// The replay after a consumer bug, when the scenario asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<crate::replay::Replay>,
    /// Mechanisms seen outside any fault window (throttling at the normal quota, ...).
    pub baseline_mechanisms: Vec<TrailStep>,
    /// The time series.
    pub samples: Vec<Sample>,
    /// Simulated time at which the run stopped (end of workload plus drain).
    pub ended_at: SimTime,
    /// Discrete events the engine handled.
    pub events: u64,
}

#[derive(Clone, Debug, Default)]
struct Acc {
    produced: u64,
    delivered: u64,
    throttled: u64,
    retries: u64,
    duplicates: u64,
    redeliveries: u64,
    failed: u64,
    lat_sum: f64,
    lat_n: u64,
    lat_max: u64,
    lat: Histogram,
}

#[derive(Clone, Debug, Default)]
struct MechanismAcc {
    code: &'static str,
    at: SimTime,
    count: u64,
    detail: String,
    ids: Vec<u64>,
}

#[derive(Clone, Debug, Default)]
struct FaultAcc {
    started: bool,
    baseline_p99: Option<SimTime>,
    mechanisms: Vec<MechanismAcc>,
    lost: IdList,
    duplicated: IdList,
    reordered: IdList,
    failed: IdList,
    dead: IdList,
    late: IdList,
    first: [Option<SimTime>; 6],
}

/// Who caused an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A known fault (its scenario index).
    Fault(usize),
    /// Unknown: attribute it to the fault whose window covers the time, if any.
    Window,
}

/// Counts and classifies everything that happens to messages in one service's run.
pub struct Collector {
    service: ServiceKind,
    status: Vec<u8>,
    /// The highest id delivered so far per key ([`NO_ID`] for none): an id below it arrived
    /// out of order.
    last_by_key: KeyTable<u64>,
    latency: Histogram,
    ack_latency: Histogram,
    produced: u64,
    produced_bytes: u64,
    acked: u64,
    delivered: u64,
    throttled: u64,
    retries: u64,
    redeliveries: u64,
    duplicate_deliveries: u64,
    interval: SimTime,
    next_sample: SimTime,
    acc: Acc,
    samples: Vec<Sample>,
    faults: Vec<(usize, SimTime, SimTime, String)>,
    fault_acc: Vec<FaultAcc>,
    baseline: Vec<MechanismAcc>,
    /// Symptoms seen outside every fault window (lost, duplicated, reordered, failed,
    /// dead-lettered), so a trail only claims what rises above the normal rate.
    outside: [u64; 5],
}

impl Collector {
    /// A collector for `service`, attributing to `faults` (those applied to this service).
    pub fn new(service: ServiceKind, faults: &[Fault], interval: SimTime) -> Collector {
        let faults: Vec<_> = faults
            .iter()
            .map(|f| (f.id, f.at, f.end(), f.kind.name().to_string()))
            .collect();
        let n = faults.len();
        Collector {
            service,
            status: Vec::new(),
            last_by_key: KeyTable::new(NO_ID),
            latency: Histogram::default(),
            ack_latency: Histogram::default(),
            produced: 0,
            produced_bytes: 0,
            acked: 0,
            delivered: 0,
            throttled: 0,
            retries: 0,
            redeliveries: 0,
            duplicate_deliveries: 0,
            interval,
            next_sample: interval,
            acc: Acc::default(),
            samples: Vec::new(),
            faults,
            fault_acc: vec![FaultAcc::default(); n],
            baseline: Vec::new(),
            outside: [0; 5],
        }
    }

    /// Bytes offered so far (for cost estimates).
    pub fn produced_bytes(&self) -> u64 {
        self.produced_bytes
    }

    /// Messages offered so far.
    pub fn produced_count(&self) -> u64 {
        self.produced
    }

    /// The sample interval.
    pub fn interval(&self) -> SimTime {
        self.interval
    }

    fn slot(&self, cause: Cause, now: SimTime) -> Option<usize> {
        match cause {
            Cause::Fault(id) => self.faults.iter().position(|f| f.0 == id),
            Cause::Window => {
                let mut best: Option<usize> = None;
                for (i, f) in self.faults.iter().enumerate() {
                    if f.1 <= now && now <= f.2.plus(SETTLE) {
                        best = Some(i);
                    }
                }
                best
            }
        }
    }

    /// Marks the start of a fault, to take the latency baseline that "late" is judged against.
    pub fn fault_started(&mut self, fault_id: usize) {
        let p99 = (self.latency.count() >= 50).then(|| self.latency.quantile(0.99));
        if let Some(i) = self.faults.iter().position(|f| f.0 == fault_id) {
            self.fault_acc[i].started = true;
            self.fault_acc[i].baseline_p99 = p99;
        }
    }

    /// The producer offered `id`.
    pub fn produced(&mut self, id: u64, size: u32) {
        let i = id as usize;
        // Ids come in order: one push per message (a resize call per message cost more).
        if i == self.status.len() {
            self.status.push(0);
        } else if i > self.status.len() {
            self.status.resize(i + 1, 0);
        }
        self.produced += 1;
        self.produced_bytes += u64::from(size);
        self.acc.produced += 1;
    }

    /// The service acknowledged a publish after `latency`.
    pub fn acked(&mut self, latency: SimTime) {
        self.acked += 1;
        self.ack_latency.record(latency);
    }

    /// A request was throttled by a quota.
    pub fn throttled(&mut self, n: u64) {
        self.throttled += n;
        self.acc.throttled += n;
    }

    /// The producer retried a publish.
    pub fn retried(&mut self) {
        self.retries += 1;
        self.acc.retries += 1;
    }

    /// The service redelivered a message (before the consumer sees it again).
    pub fn redelivered(&mut self) {
        self.redeliveries += 1;
        self.acc.redeliveries += 1;
    }

    fn flag(&mut self, id: u64, bit: u8) -> bool {
        match self.status.get_mut(id as usize) {
            Some(s) => {
                let had = *s & bit != 0;
                *s |= bit;
                had
            }
            None => true,
        }
    }

    /// A consumer received message `id` (key `key`, created at `created`) at `at`.
    ///
    /// Returns whether this was its first delivery.
    pub fn delivered(
        &mut self,
        id: u64,
        key: u64,
        created: SimTime,
        at: SimTime,
        cause: Cause,
    ) -> bool {
        if self.flag(id, DELIVERED) {
            self.duplicate_deliveries += 1;
            self.acc.duplicates += 1;
            if !self.flag(id, DUPLICATED) {
                if let Some(i) = self.slot(cause, at) {
                    self.fault_acc[i].duplicated.push(id, MAX_TRAIL_IDS);
                    self.fault_acc[i].first[1].get_or_insert(at);
                } else {
                    self.outside[1] += 1;
                }
            }
            return false;
        }
        self.delivered += 1;
        let lat = at.minus(created);
        self.latency.record(lat);
        self.acc.delivered += 1;
        self.acc.lat_sum += lat.as_micros() as f64;
        self.acc.lat_n += 1;
        self.acc.lat_max = self.acc.lat_max.max(lat.as_micros());
        self.acc.lat.record(lat);
        let last = self.last_by_key.get(key);
        if last != NO_ID && last > id {
            self.flag(id, REORDERED);
            if let Some(i) = self.slot(cause, at) {
                self.fault_acc[i].reordered.push(id, MAX_TRAIL_IDS);
                self.fault_acc[i].first[2].get_or_insert(at);
            } else {
                self.outside[2] += 1;
            }
        } else {
            *self.last_by_key.get_mut(key) = id;
        }
        if let Some(i) = self.slot(Cause::Window, at) {
            let acc = &mut self.fault_acc[i];
            if let Some(base) = acc.baseline_p99 {
                let threshold = base.plus(base).max(base.plus(SimTime::from_secs(1)));
                if lat > threshold {
                    acc.late.push(id, MAX_TRAIL_IDS);
                    acc.first[5].get_or_insert(at);
                }
            }
        }
        true
    }

    /// Message `id` is gone for good although the service had it (or acks=0 sent it).
    pub fn lost(&mut self, id: u64, at: SimTime, cause: Cause) {
        if self
            .status
            .get(id as usize)
            .is_some_and(|s| s & DELIVERED != 0)
        {
            return;
        }
        if !self.flag(id, LOST) {
            if let Some(i) = self.slot(cause, at) {
                self.fault_acc[i].lost.push(id, MAX_TRAIL_IDS);
                self.fault_acc[i].first[0].get_or_insert(at);
            } else {
                self.outside[0] += 1;
            }
        }
    }

    /// Message `id` was cut from the log for good (log truncation). Unlike [`Collector::lost`]
    /// this counts a message a consumer had already read too: the log no longer holds it, so
    /// no other reader and no replay will see it.
    pub fn cut_from_log(&mut self, id: u64, at: SimTime, cause: Cause) {
        if !self.was_delivered(id) {
            self.lost(id, at, cause);
            return;
        }
        if !self.flag(id, CUT_AFTER_READ) {
            if let Some(i) = self.slot(cause, at) {
                self.fault_acc[i].lost.push(id, MAX_TRAIL_IDS);
                self.fault_acc[i].first[0].get_or_insert(at);
            } else {
                self.outside[0] += 1;
            }
        }
    }

    /// The publish of `id` failed for good and the producer was told.
    pub fn failed(&mut self, id: u64, at: SimTime, cause: Cause) {
        if !self.flag(id, FAILED) {
            self.acc.failed += 1;
            if let Some(i) = self.slot(cause, at) {
                self.fault_acc[i].failed.push(id, MAX_TRAIL_IDS);
                self.fault_acc[i].first[3].get_or_insert(at);
            } else {
                self.outside[3] += 1;
            }
        }
    }

    /// Message `id` went to a dead-letter destination.
    pub fn dead_lettered(&mut self, id: u64, at: SimTime, cause: Cause) {
        if !self.flag(id, DEAD) {
            if let Some(i) = self.slot(cause, at) {
                self.fault_acc[i].dead.push(id, MAX_TRAIL_IDS);
                self.fault_acc[i].first[4].get_or_insert(at);
            } else {
                self.outside[4] += 1;
            }
        }
    }

    /// Message `id` is still stored, waiting for a consumer, at the end of the run.
    pub fn pending(&mut self, id: u64) {
        if self
            .status
            .get(id as usize)
            .is_some_and(|s| s & DELIVERED == 0)
        {
            self.flag(id, PENDING);
        }
    }

    /// Whether `id` has been delivered at least once.
    pub fn was_delivered(&self, id: u64) -> bool {
        self.status
            .get(id as usize)
            .is_some_and(|s| s & DELIVERED != 0)
    }

    /// Records a mechanism: the first occurrence per fault and code keeps its time and detail,
    /// later ones are counted (with up to [`MAX_TRAIL_IDS`] message ids).
    pub fn mechanism(
        &mut self,
        at: SimTime,
        cause: Cause,
        code: &'static str,
        detail: impl FnOnce() -> String,
        id: Option<u64>,
    ) {
        let list = match self.slot(cause, at) {
            Some(i) => &mut self.fault_acc[i].mechanisms,
            None => &mut self.baseline,
        };
        match list.iter_mut().find(|m| m.code == code) {
            Some(m) => {
                m.count += 1;
                if let Some(id) = id {
                    if m.ids.len() < MAX_TRAIL_IDS {
                        m.ids.push(id);
                    }
                }
            }
            None => list.push(MechanismAcc {
                code,
                at,
                count: 1,
                detail: detail(),
                ids: id.into_iter().collect(),
            }),
        }
    }

    /// Whether a sample is due at `now`.
    pub fn sample_due(&self, now: SimTime) -> bool {
        now >= self.next_sample
    }

    /// Closes the current interval with the model's gauges.
    pub fn sample(
        &mut self,
        now: SimTime,
        lag_messages: u64,
        lag_age: SimTime,
        under_replicated: u64,
    ) {
        let a = std::mem::take(&mut self.acc);
        self.samples.push(Sample {
            t_s: now.as_secs_f64(),
            produced: a.produced,
            delivered: a.delivered,
            throttled: a.throttled,
            retries: a.retries,
            duplicates: a.duplicates,
            redeliveries: a.redeliveries,
            failed: a.failed,
            lag_messages,
            lag_age_ms: lag_age.as_millis_f64(),
            latency_mean_ms: if a.lat_n > 0 {
                a.lat_sum / a.lat_n as f64 / 1e3
            } else {
                0.0
            },
            latency_max_ms: a.lat_max as f64 / 1e3,
            under_replicated,
            latency_p50_ms: a.lat.quantile(0.50).as_millis_f64(),
            latency_p99_ms: a.lat.quantile(0.99).as_millis_f64(),
        });
        self.next_sample = now.plus(self.interval);
    }

    /// Ends the run: everything neither delivered, failed, dead-lettered nor pending is lost.
    pub fn finish(
        mut self,
        profile: String,
        settings: Vec<String>,
        cost: CostEstimate,
        bottleneck: Bottleneck,
        ended_at: SimTime,
        events: u64,
    ) -> (ServiceReport, Vec<CausalTrail>) {
        let mut lists: [IdList; 5] = Default::default();
        let mut pending = 0;
        let mut lost_after_delivery = 0;
        for id in 0..self.status.len() {
            let s = self.status[id];
            let id = id as u64;
            if s & DUPLICATED != 0 {
                lists[0].push(id, MAX_LISTED_IDS);
            }
            if s & REORDERED != 0 {
                lists[1].push(id, MAX_LISTED_IDS);
            }
            if s & DELIVERED != 0 && s & CUT_AFTER_READ != 0 {
                lost_after_delivery += 1;
                lists[2].push(id, MAX_LISTED_IDS);
            }
            if s & DELIVERED == 0 {
                if s & FAILED != 0 {
                    lists[3].push(id, MAX_LISTED_IDS);
                } else if s & DEAD != 0 {
                    lists[4].push(id, MAX_LISTED_IDS);
                } else if s & PENDING != 0 {
                    pending += 1;
                } else {
                    if s & LOST == 0 {
                        // Gone without a recorded reason: attribute by time window at the end.
                        self.status[id as usize] |= LOST;
                    }
                    lists[2].push(id, MAX_LISTED_IDS);
                }
            }
        }
        let [duplicated, reordered, lost, failed, dead_lettered] = lists;
        let baseline_mechanisms = self.baseline.iter().map(mechanism_step).collect();
        let trails = self.trails(ended_at);
        let report = ServiceReport {
            service: self.service,
            profile,
            settings,
            produced: self.produced,
            produced_bytes: self.produced_bytes,
            acked: self.acked,
            delivered: self.delivered,
            throttled: self.throttled,
            retries: self.retries,
            redeliveries: self.redeliveries,
            duplicated,
            duplicate_deliveries: self.duplicate_deliveries,
            reordered,
            lost,
            lost_after_delivery,
            failed,
            dead_lettered,
            pending,
            latency: self.latency.percentiles(),
            ack_latency: self.ack_latency.percentiles(),
            cost,
            bottleneck,
            replay: None,
            baseline_mechanisms,
            samples: std::mem::take(&mut self.samples),
            ended_at,
            events,
        };
        (report, trails)
    }

    fn trails(&self, ended_at: SimTime) -> Vec<CausalTrail> {
        let mut out = Vec::new();
        for (slot, (id, start, end, name)) in self.faults.iter().enumerate() {
            if *start > ended_at {
                continue;
            }
            let acc = &self.fault_acc[slot];
            let mut steps = vec![TrailStep {
                stage: Stage::Fault,
                code: name.clone(),
                at: *start,
                count: 1,
                detail: format!("{name} injected at {start}"),
                value: None,
                baseline: None,
                message_ids: Vec::new(),
            }];
            steps.extend(acc.mechanisms.iter().map(mechanism_step));
            steps.extend(self.metric_steps(*start, (*end).min(ended_at).plus(SETTLE)));
            let symptoms: [(&str, &IdList, usize, &str); 6] = [
                (
                    "messages_lost",
                    &acc.lost,
                    0,
                    "messages the service had accepted are gone",
                ),
                (
                    "duplicates",
                    &acc.duplicated,
                    1,
                    "messages delivered more than once",
                ),
                (
                    "reordered",
                    &acc.reordered,
                    2,
                    "messages delivered after a later message of the same key",
                ),
                (
                    "publish_failures",
                    &acc.failed,
                    3,
                    "publishes failed for good; the producer saw errors",
                ),
                (
                    "dead_lettered",
                    &acc.dead,
                    4,
                    "messages moved to the dead-letter destination",
                ),
                (
                    "late_data",
                    &acc.late,
                    5,
                    "messages arrived far later than before the fault",
                ),
            ];
            let window = |f: &(usize, SimTime, SimTime, String)| {
                f.2.min(ended_at).plus(SETTLE).minus(f.1).as_secs_f64()
            };
            let outside_secs =
                (ended_at.as_secs_f64() - self.faults.iter().map(window).sum::<f64>()).max(1.0);
            let this_window = window(&self.faults[slot]);
            let mut any = false;
            for (code, list, k, what) in symptoms {
                // What the service does anyway (Pub/Sub reorders without ordering keys,
                // throttling at the normal quota) is not the fault's doing.
                let expected = self
                    .outside
                    .get(k)
                    .map_or(0.0, |&n| n as f64 / outside_secs * this_window);
                let above = if expected > 0.0 {
                    2.0 * expected + 5.0
                } else {
                    0.0
                };
                if list.count > 0 && list.count as f64 > above {
                    any = true;
                    steps.push(TrailStep {
                        stage: Stage::Symptom,
                        code: code.to_string(),
                        at: acc.first[k].unwrap_or(*start),
                        count: list.count,
                        detail: format!("{} {what}", list.count),
                        value: Some(list.count as f64),
                        baseline: (expected > 0.0).then_some(expected),
                        message_ids: list.ids.clone(),
                    });
                }
            }
            if !any && !steps.iter().any(|s| s.stage == Stage::Metric) {
                steps.push(TrailStep {
                    stage: Stage::Symptom,
                    code: "no_visible_effect".into(),
                    at: *start,
                    count: 0,
                    detail:
                        "no message was lost, duplicated, reordered or late, and no metric moved"
                            .into(),
                    value: None,
                    baseline: None,
                    message_ids: Vec::new(),
                });
            }
            steps.sort_by(|a, b| a.stage.cmp(&b.stage).then(a.at.cmp(&b.at)));
            out.push(CausalTrail {
                fault_id: *id,
                fault: name.clone(),
                service: self.service,
                steps,
            });
        }
        out
    }

    fn metric_steps(&self, start: SimTime, end: SimTime) -> Vec<TrailStep> {
        let s0 = start.as_secs_f64();
        let s1 = end.as_secs_f64();
        let secs = self.interval.as_secs_f64().max(1e-9);
        let before: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.t_s <= s0 && s.t_s > s0 - 60.0)
            .collect();
        let during: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.t_s > s0 && s.t_s <= s1 + secs)
            .collect();
        if during.is_empty() {
            return Vec::new();
        }
        let mean = |v: &[&Sample], f: &dyn Fn(&Sample) -> f64| -> f64 {
            if v.is_empty() {
                0.0
            } else {
                v.iter().map(|s| f(s)).sum::<f64>() / v.len() as f64
            }
        };
        let peak = |v: &[&Sample], f: &dyn Fn(&Sample) -> f64| -> (f64, f64) {
            v.iter().fold((0.0, s0), |(best, t), s| {
                let x = f(s);
                if x > best {
                    (x, s.t_s)
                } else {
                    (best, t)
                }
            })
        };
        let mut steps = Vec::new();
        let mut push = |code: &str, at: f64, value: f64, baseline: f64, detail: String| {
            steps.push(TrailStep {
                stage: Stage::Metric,
                code: code.to_string(),
                at: SimTime::from_secs_f64(at),
                count: 1,
                detail,
                value: Some(value),
                baseline: Some(baseline),
                message_ids: Vec::new(),
            });
        };
        let lag = |s: &Sample| s.lag_messages as f64;
        let (lag_peak, lag_t) = peak(&during, &lag);
        let lag_base = mean(&before, &lag);
        if lag_peak > (2.0 * lag_base).max(lag_base + 100.0) {
            push(
                "consumer_lag",
                lag_t,
                lag_peak,
                lag_base,
                format!(
                    "consumer lag peaked at {lag_peak:.0} messages (about {lag_base:.0} before)"
                ),
            );
        }
        let lat = |s: &Sample| s.latency_max_ms;
        let (lat_peak, lat_t) = peak(&during, &lat);
        let lat_base = before.iter().map(|s| s.latency_max_ms).fold(0.0, f64::max);
        if lat_peak > (2.0 * lat_base).max(lat_base + 50.0) {
            push(
                "end_to_end_latency",
                lat_t,
                lat_peak,
                lat_base,
                format!("max end-to-end latency rose to {lat_peak:.0} ms (at most {lat_base:.0} ms before)"),
            );
        }
        let thr: f64 = during.iter().map(|s| s.throttled as f64).sum();
        let thr_base = mean(&before, &|s| s.throttled as f64) * during.len() as f64;
        if thr > (1.5 * thr_base).max(10.0) {
            let (_, t) = peak(&during, &|s| s.throttled as f64);
            push(
                "throttled_requests",
                t,
                thr,
                thr_base,
                format!("{thr:.0} throttled requests in the fault window (about {thr_base:.0} expected)"),
            );
        }
        let (urp, urp_t) = peak(&during, &|s| s.under_replicated as f64);
        let urp_base = mean(&before, &|s| s.under_replicated as f64);
        if urp > urp_base {
            push(
                "under_replicated_partitions",
                urp_t,
                urp,
                urp_base,
                format!("{urp:.0} under-replicated partitions"),
            );
        }
        let rate = |s: &Sample| s.delivered as f64 / secs;
        let rate_base = mean(&before, &rate);
        let (rate_min, rate_t) = during.iter().fold((f64::MAX, s0), |(m, t), s| {
            if rate(s) < m {
                (rate(s), s.t_s)
            } else {
                (m, t)
            }
        });
        if rate_base > 0.0 && rate_min < 0.5 * rate_base {
            push(
                "delivered_rate",
                rate_t,
                rate_min,
                rate_base,
                format!("deliveries fell to {rate_min:.0}/s (about {rate_base:.0}/s before)"),
            );
        }
        let retries: f64 = during.iter().map(|s| s.retries as f64).sum();
        let retries_base = mean(&before, &|s| s.retries as f64) * during.len() as f64;
        if retries > (1.5 * retries_base).max(1.0) {
            let (_, t) = peak(&during, &|s| s.retries as f64);
            push(
                "retries",
                t,
                retries,
                retries_base,
                format!("{retries:.0} producer retries in the fault window"),
            );
        }
        steps
    }
}

fn mechanism_step(m: &MechanismAcc) -> TrailStep {
    TrailStep {
        stage: Stage::Mechanism,
        code: m.code.to_string(),
        at: m.at,
        count: m.count,
        detail: m.detail.clone(),
        value: None,
        baseline: None,
        message_ids: m.ids.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_a_few_percent() {
        let mut h = Histogram::default();
        for ms in 1..=1000u64 {
            h.record(SimTime::from_millis(ms));
        }
        let p50 = h.quantile(0.5).as_millis_f64();
        let p99 = h.quantile(0.99).as_millis_f64();
        assert!((p50 - 500.0).abs() / 500.0 < 0.04, "{p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.04, "{p99}");
        assert_eq!(h.percentiles().max_ms, 1000.0);
    }

    #[test]
    fn second_delivery_counts_as_duplicate_and_earlier_id_as_reordered() {
        let mut c = Collector::new(ServiceKind::Kafka, &[], SimTime::from_secs(1));
        for id in 0..3 {
            c.produced(id, 10);
        }
        let t = SimTime::from_millis(5);
        assert!(c.delivered(0, 7, SimTime::ZERO, t, Cause::Window));
        assert!(c.delivered(2, 7, SimTime::ZERO, t, Cause::Window));
        assert!(c.delivered(1, 7, SimTime::ZERO, t, Cause::Window));
        assert!(!c.delivered(0, 7, SimTime::ZERO, t, Cause::Window));
        let (r, _) = c.finish(
            String::new(),
            vec![],
            CostEstimate::default(),
            Bottleneck::default(),
            t,
            0,
        );
        assert_eq!(r.delivered, 3);
        assert_eq!(r.duplicated.ids, vec![0]);
        assert_eq!(r.reordered.ids, vec![1]);
        assert_eq!(r.lost.count, 0);
    }

    #[test]
    fn undelivered_and_unexplained_messages_count_as_lost() {
        let mut c = Collector::new(ServiceKind::Kafka, &[], SimTime::from_secs(1));
        for id in 0..4 {
            c.produced(id, 10);
        }
        c.delivered(0, 1, SimTime::ZERO, SimTime::ZERO, Cause::Window);
        c.failed(1, SimTime::ZERO, Cause::Window);
        c.pending(2);
        let (r, _) = c.finish(
            String::new(),
            vec![],
            CostEstimate::default(),
            Bottleneck::default(),
            SimTime::ZERO,
            0,
        );
        assert_eq!(r.failed.ids, vec![1]);
        assert_eq!(r.pending, 1);
        assert_eq!(r.lost.ids, vec![3]);
    }
}
