//! Workloads: the stream of messages a producer offers, identical for every service.
//!
//! Three generators stand for the course's cases, plus replay of a recorded trace:
//! - **telemetry**: vehicle health readings as in the predictive-maintenance case (many vehicles
//!   as keys, a few hundred bytes each, steady Poisson arrivals);
//! - **clickstream**: web sessions with a few very hot keys and a traffic wave (bursty);
//! - **payments**: many accounts, small messages where per-key order matters;
//! - **trace**: CSV or JSON lines of `timestamp, key, size`.
//!
//! A generator is lazy: it yields one [`Msg`] at a time, so a one-hour run never holds its
//! eighteen million messages in memory. Message ids count up from 0 in creation order; reports
//! name lost, duplicated and reordered messages by these ids.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Location, SimError};
use crate::rng::{fnv1a, FixedState, LatencyDist, SimRng};
use crate::time::{parse_duration, SimTime};

/// The first key a generator makes: key `i` of a workload is `KEY_BASE + i`. Traces map their
/// keys to the same range in order of first appearance, so per-key state everywhere can live in
/// a plain vector ([`KeyTable`]) rather than a hash map looked up several times per message.
pub(crate) const KEY_BASE: u64 = 0x9e37_79b9;

/// Keys up to this index get a vector slot (8 bytes each for a time); any others a hash entry.
const DENSE_KEYS: u64 = 1 << 21;

/// Per-key state: a vector for the keys workloads make (`KEY_BASE + i`), a hash map for the
/// rest, so that a key nobody made (a test's, a huge `keys` setting) still works.
///
/// Ordering and reorder detection look a key up for every record on every hop; with the
/// telemetry workload's 5,000 keys, a hash map made those lookups a quarter of a run's time.
#[derive(Clone, Debug)]
pub(crate) struct KeyTable<T: Copy> {
    dense: Vec<T>,
    sparse: HashMap<u64, T, FixedState>,
    empty: T,
}

impl<T: Copy> KeyTable<T> {
    /// A table where every key starts as `empty`.
    pub fn new(empty: T) -> KeyTable<T> {
        KeyTable {
            dense: Vec::new(),
            sparse: HashMap::default(),
            empty,
        }
    }

    /// The state of `key`, created as `empty` if new.
    #[inline]
    pub fn get_mut(&mut self, key: u64) -> &mut T {
        let i = key.wrapping_sub(KEY_BASE);
        if i < DENSE_KEYS {
            let i = i as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, self.empty);
            }
            &mut self.dense[i]
        } else {
            self.sparse.entry(key).or_insert(self.empty)
        }
    }

    /// The state of `key` (`empty` if never set).
    #[inline]
    pub fn get(&self, key: u64) -> T {
        let i = key.wrapping_sub(KEY_BASE);
        if i < DENSE_KEYS {
            self.dense.get(i as usize).copied().unwrap_or(self.empty)
        } else {
            self.sparse.get(&key).copied().unwrap_or(self.empty)
        }
    }
}

/// One message offered by the producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    /// Sequential id, unique in the run.
    pub id: u64,
    /// Hash of the message key (partition key, ordering key).
    pub key: u64,
    /// Payload size in bytes.
    pub size: u32,
    /// When the producer created it.
    pub created: SimTime,
}

/// Which generator.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Vehicle telemetry (predictive maintenance).
    Telemetry,
    /// Web clickstream with hot sessions and a traffic wave.
    Clickstream,
    /// Keyed payments.
    Payments,
    /// Replay of a recorded trace.
    Trace(#[serde(skip)] Arc<Trace>),
}

impl WorkloadKind {
    /// The name used on the command line and in files.
    pub fn name(&self) -> &'static str {
        match self {
            WorkloadKind::Telemetry => "telemetry",
            WorkloadKind::Clickstream => "clickstream",
            WorkloadKind::Payments => "payments",
            WorkloadKind::Trace(_) => "trace",
        }
    }
}

/// What to generate: a kind, a rate and optional shape overrides.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadSpec {
    /// The generator.
    pub kind: WorkloadKind,
    /// Mean messages per second (ignored by trace replay, which keeps its own timing).
    pub rate: f64,
    /// Number of distinct keys (vehicles, sessions, accounts); `None` takes the generator's
    /// default.
    pub keys: Option<u64>,
    /// Fixed message size in bytes; `None` takes the generator's size distribution.
    pub message_bytes: Option<u32>,
    /// The share of messages (0 to 1) that carry one hot key, the first; the others spread as
    /// the generator spreads them. A key lives in one partition or shard, so that partition
    /// takes this share of the traffic whatever the partition count: the lesson of hot keys.
    pub hot_key_share: Option<f64>,
}

impl WorkloadSpec {
    /// A generator by name: `telemetry`, `clickstream` or `payments`, at `rate` messages/s.
    ///
    /// # Errors
    /// An unknown name ([`SimError::Invalid`]); traces are built with [`WorkloadSpec::trace`].
    pub fn named(name: &str, rate: f64) -> Result<WorkloadSpec, SimError> {
        let kind = match name.trim().to_ascii_lowercase().as_str() {
            "telemetry" => WorkloadKind::Telemetry,
            "clickstream" => WorkloadKind::Clickstream,
            "payments" => WorkloadKind::Payments,
            other => {
                return Err(SimError::Invalid(format!(
                    "unknown workload `{other}`; expected telemetry, clickstream, payments \
                     or a trace file"
                )))
            }
        };
        Ok(WorkloadSpec {
            kind,
            rate,
            keys: None,
            message_bytes: None,
            hot_key_share: None,
        })
    }

    /// Replay of `trace`.
    pub fn trace(trace: Trace) -> WorkloadSpec {
        let rate = trace.mean_rate();
        WorkloadSpec {
            kind: WorkloadKind::Trace(Arc::new(trace)),
            rate,
            keys: None,
            message_bytes: None,
            hot_key_share: None,
        }
    }

    /// A generator of this workload for a run of `duration`, seeded from the run seed.
    pub fn generator(&self, seed: u64, duration: SimTime) -> Workload {
        let (default_keys, size) = match self.kind {
            WorkloadKind::Telemetry => (
                5_000,
                LatencyDist::from_p50_p99(SimTime(400), SimTime(1_100)),
            ),
            WorkloadKind::Clickstream => (
                50_000,
                LatencyDist::from_p50_p99(SimTime(900), SimTime(3_000)),
            ),
            WorkloadKind::Payments => (
                100_000,
                LatencyDist::from_p50_p99(SimTime(350), SimTime(700)),
            ),
            WorkloadKind::Trace(_) => (1, LatencyDist::constant(SimTime(1))),
        };
        // Sizes reuse the log-normal fit of `LatencyDist` with "microseconds" read as bytes.
        let size = match self.message_bytes {
            Some(b) => LatencyDist::constant(SimTime(u64::from(b.max(1)))),
            None => size,
        };
        Workload {
            spec: self.clone(),
            rng: SimRng::derive(seed, "workload"),
            keys: self.keys.unwrap_or(default_keys).max(1),
            size,
            duration,
            next_id: 0,
            next_time: SimTime::ZERO,
            trace_pos: 0,
            started: false,
        }
    }
}

/// A lazy message generator.
pub struct Workload {
    spec: WorkloadSpec,
    rng: SimRng,
    keys: u64,
    size: LatencyDist,
    duration: SimTime,
    next_id: u64,
    next_time: SimTime,
    trace_pos: usize,
    started: bool,
}

/// The period of the clickstream traffic wave.
const CLICK_WAVE: f64 = 120.0;

impl Workload {
    /// The next message, or `None` once the run's duration is reached.
    pub fn next_msg(&mut self) -> Option<Msg> {
        let id = self.next_id;
        let (created, key, size) = match &self.spec.kind {
            WorkloadKind::Trace(trace) => {
                let r = trace.records.get(self.trace_pos)?;
                self.trace_pos += 1;
                (r.at, r.key, r.size)
            }
            kind => {
                let mean_gap = 1.0 / self.spec.rate.max(1e-9);
                let gap = match kind {
                    WorkloadKind::Clickstream => {
                        // A ±40% wave: the instantaneous rate follows the time of day.
                        let phase = self.next_time.as_secs_f64() / CLICK_WAVE;
                        let factor = 1.0 + 0.4 * (std::f64::consts::TAU * phase).sin();
                        self.rng.exp(mean_gap / factor)
                    }
                    _ => self.rng.exp(mean_gap),
                };
                if self.started {
                    self.next_time = self.next_time.plus(SimTime::from_secs_f64(gap));
                } else {
                    self.started = true;
                    self.next_time = SimTime::from_secs_f64(gap);
                }
                let u = self.rng.unit();
                // The hot key takes its share first (one more draw, only when asked for, so
                // other workloads keep their message streams).
                let hot = self
                    .spec
                    .hot_key_share
                    .is_some_and(|share| self.rng.unit() < share);
                let key_index = match kind {
                    _ if hot => 0,
                    // A power law: a small share of sessions makes most of the clicks.
                    WorkloadKind::Clickstream => (self.keys as f64 * u * u * u) as u64,
                    _ => (self.keys as f64 * u) as u64,
                };
                let size = self
                    .rng
                    .latency(&self.size)
                    .as_micros()
                    .clamp(1, u64::from(u32::MAX));
                (
                    self.next_time,
                    key_index.wrapping_add(KEY_BASE),
                    size as u32,
                )
            }
        };
        if created >= self.duration {
            return None;
        }
        self.next_id += 1;
        Some(Msg {
            id,
            key,
            size,
            created,
        })
    }

    /// The share of messages with the hot key (0 for none).
    pub fn hot_key_share(&self) -> f64 {
        self.spec.hot_key_share.unwrap_or(0.0)
    }

    /// Messages generated so far.
    pub fn generated(&self) -> u64 {
        self.next_id
    }
}

/// A recorded trace: timestamps relative to its first record, hashed keys, sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The file it came from.
    pub file: String,
    records: Vec<TraceRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct TraceRecord {
    at: SimTime,
    key: u64,
    size: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRecord {
    timestamp: serde_json::Value,
    #[serde(default)]
    key: serde_json::Value,
    size: u64,
}

impl Trace {
    /// Reads a trace file: `.jsonl`/`.json`/`.ndjson` as JSON lines, anything else as CSV.
    ///
    /// # Errors
    /// An unreadable file, or a malformed record (with file, line and field).
    pub fn from_file(path: &Path) -> Result<Trace, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::io(path, e))?;
        let name = path.display().to_string();
        let json = path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| matches!(x, "jsonl" | "json" | "ndjson"));
        if json {
            Trace::from_json_lines(&text, &name)
        } else {
            Trace::from_csv(&text, &name)
        }
    }

    /// Parses CSV with the columns `timestamp,key,size` (a header line is optional).
    ///
    /// `timestamp` is seconds (fractional allowed, absolute epoch seconds fine) or a duration
    /// such as `250ms`; times are taken relative to the earliest record.
    ///
    /// # Errors
    /// A malformed line, naming file, line and column.
    pub fn from_csv(text: &str, file: &str) -> Result<Trace, SimError> {
        let mut raw = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = l.split(',').map(str::trim).collect();
            if raw.is_empty()
                && cols
                    .first()
                    .is_some_and(|c| c.eq_ignore_ascii_case("timestamp"))
            {
                continue;
            }
            let loc = |col: usize, field: &str| Location {
                file: file.to_string(),
                line: i + 1,
                column: col,
                field: Some(field.to_string()),
            };
            if cols.len() != 3 {
                return Err(SimError::at(
                    loc(1, "record"),
                    format!("expected 3 columns timestamp,key,size, got {}", cols.len()),
                ));
            }
            let ts_col = 1;
            let key_col = cols[0].len() + 2;
            let size_col = key_col + cols[1].len() + 1;
            let ts =
                parse_timestamp(cols[0]).map_err(|m| SimError::at(loc(ts_col, "timestamp"), m))?;
            let size: u32 = cols[2].parse().map_err(|_| {
                SimError::at(
                    loc(size_col, "size"),
                    format!("expected a size in bytes, got `{}`", cols[2]),
                )
            })?;
            raw.push((ts, fnv1a(cols[1].as_bytes()), size));
        }
        Trace::from_raw(raw, file)
    }

    /// Parses JSON lines: `{"timestamp": 1.25, "key": "vin-1", "size": 420}` per line.
    ///
    /// # Errors
    /// A malformed line, naming file, line and column.
    pub fn from_json_lines(text: &str, file: &str) -> Result<Trace, SimError> {
        let mut raw = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let loc = |col: usize, field: Option<&str>| Location {
                file: file.to_string(),
                line: i + 1,
                column: col,
                field: field.map(str::to_string),
            };
            let rec: JsonRecord = serde_json::from_str(line)
                .map_err(|e| SimError::at(loc(e.column().max(1), None), e.to_string()))?;
            let ts = match &rec.timestamp {
                serde_json::Value::Number(n) => {
                    n.as_f64().ok_or("bad number").map_err(|m| m.to_string())
                }
                serde_json::Value::String(s) => parse_timestamp(s),
                other => Err(format!("expected seconds or a duration, got {other}")),
            }
            .map_err(|m| SimError::at(loc(1, Some("timestamp")), m))?;
            let key = match &rec.key {
                serde_json::Value::String(s) => fnv1a(s.as_bytes()),
                serde_json::Value::Null => fnv1a(b""),
                other => fnv1a(other.to_string().as_bytes()),
            };
            let size = u32::try_from(rec.size).map_err(|_| {
                SimError::at(
                    loc(1, Some("size")),
                    format!("size {} is too large", rec.size),
                )
            })?;
            raw.push((ts, key, size));
        }
        Trace::from_raw(raw, file)
    }

    fn from_raw(mut raw: Vec<(f64, u64, u32)>, file: &str) -> Result<Trace, SimError> {
        if raw.is_empty() {
            return Err(SimError::at(
                Location::file_start(file),
                "the trace has no records",
            ));
        }
        raw.sort_by(|a, b| a.0.total_cmp(&b.0));
        let t0 = raw[0].0;
        // Keys are numbered in order of first appearance, like a generator's.
        let mut index: HashMap<u64, u64, FixedState> = HashMap::default();
        let records = raw
            .into_iter()
            .map(|(t, hash, size)| {
                let next = index.len() as u64;
                let key = KEY_BASE.wrapping_add(*index.entry(hash).or_insert(next));
                TraceRecord {
                    at: SimTime::from_secs_f64(t - t0),
                    key,
                    size: size.max(1),
                }
            })
            .collect();
        Ok(Trace {
            file: file.to_string(),
            records,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the trace is empty (never true for a parsed trace).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The time of the last record.
    pub fn span(&self) -> SimTime {
        self.records.last().map_or(SimTime::ZERO, |r| r.at)
    }

    /// Records per second over the trace's span.
    pub fn mean_rate(&self) -> f64 {
        let span = self.span().as_secs_f64();
        if span > 0.0 {
            self.records.len() as f64 / span
        } else {
            self.records.len() as f64
        }
    }
}

fn parse_timestamp(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Ok(_) => Err(format!(
            "timestamp `{s}` must be a non-negative number of seconds"
        )),
        Err(_) => parse_duration(s)
            .map(|t| t.as_secs_f64())
            .map_err(|_| format!("expected seconds or a duration such as 250ms, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(spec: &WorkloadSpec, secs: u64) -> Vec<Msg> {
        let mut g = spec.generator(9, SimTime::from_secs(secs));
        std::iter::from_fn(|| g.next_msg()).collect()
    }

    #[test]
    fn telemetry_offers_the_requested_rate() {
        let spec = WorkloadSpec::named("telemetry", 2_000.0).unwrap();
        let n = collect(&spec, 10).len() as f64;
        assert!((n - 20_000.0).abs() < 600.0, "{n}");
    }

    #[test]
    fn ids_count_up_and_times_never_go_back() {
        let spec = WorkloadSpec::named("clickstream", 500.0).unwrap();
        let msgs = collect(&spec, 5);
        assert!(msgs
            .windows(2)
            .all(|w| w[1].id == w[0].id + 1 && w[1].created >= w[0].created));
    }

    #[test]
    fn one_seed_gives_one_message_stream() {
        let spec = WorkloadSpec::named("payments", 300.0).unwrap();
        assert_eq!(collect(&spec, 3), collect(&spec, 3));
    }

    #[test]
    fn a_hot_key_carries_its_share_of_the_messages() {
        let mut spec = WorkloadSpec::named("telemetry", 5_000.0).unwrap();
        spec.hot_key_share = Some(0.3);
        let msgs = collect(&spec, 4);
        let hot = msgs.iter().filter(|m| m.key == KEY_BASE).count() as f64;
        // 30% by choice plus the 1 in 5,000 that the uniform spread gives key 0 anyway.
        let expected = 0.3 + 0.7 / 5_000.0;
        let share = hot / msgs.len() as f64;
        let sd = (expected * (1.0 - expected) / msgs.len() as f64).sqrt();
        assert!((share - expected).abs() < 5.0 * sd, "hot share {share}");
    }

    #[test]
    fn csv_trace_is_read_relative_to_its_first_record() {
        let t = Trace::from_csv(
            "timestamp,key,size\n100.5,a,10\n100.0,b,20\n101,a,30\n",
            "t.csv",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.span(), SimTime::from_secs(1));
        let spec = WorkloadSpec::trace(t);
        let msgs = collect(&spec, 10);
        assert_eq!(msgs[0].size, 20);
        assert_eq!(msgs[1].created, SimTime::from_millis(500));
    }

    #[test]
    fn bad_csv_size_names_line_and_column() {
        let err = Trace::from_csv("0,a,10\n1,b,big\n", "t.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "t.csv:2:5: field `size`: expected a size in bytes, got `big`"
        );
    }

    #[test]
    fn json_lines_trace_accepts_duration_strings() {
        let t = Trace::from_json_lines(
            "{\"timestamp\": \"0ms\", \"key\": \"v1\", \"size\": 5}\n\
             {\"timestamp\": \"250ms\", \"key\": \"v2\", \"size\": 7}\n",
            "t.jsonl",
        )
        .unwrap();
        assert_eq!(t.span(), SimTime::from_millis(250));
        let err = Trace::from_json_lines("{\"timestamp\": 1}\n", "t.jsonl").unwrap_err();
        assert!(err.to_string().starts_with("t.jsonl:1:"), "{err}");
    }
}
