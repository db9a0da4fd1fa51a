//! Scenarios: one workload, some services, some faults, a seed; and running them.
//!
//! # Format
//! ```toml
//! name = "leader crash with acks=1"
//! description = "What the class should see."
//! seed = 42                      # same seed, byte-identical report
//! duration = "5m"                # how long the producer runs
//! drain = "2m"                   # optional: time left to deliver what is in flight
//! sample_interval = "1s"         # optional: time-series resolution
//! services = ["kafka", "eventhubs", "kinesis", "pubsub"]   # optional, these four by default
//! profiles = "my-profiles"       # optional: directory of edited profile files
//!
//! [workload]
//! kind = "telemetry"             # telemetry | clickstream | payments | trace
//! rate = "5000/s"
//! keys = 5000                    # optional
//! message_bytes = 400            # optional: fixed size
//! hot_key_share = 0.3            # optional: this share of messages carries one key (0 to 1)
//! # trace = "recorded.csv"       # with kind = "trace": CSV or JSON lines, path relative to this file
//!
//! [kafka]                        # optional overrides of profile parameters, per service
//! acks = "1"
//!
//! [[fault]]
//! kind = "broker_crash"          # see FaultKind for every kind and its fields
//! broker = 0
//! at = "60s"
//! duration = "90s"               # for crashes: restart after this long
//! services = ["kafka"]           # optional: default every service of the run
//!
//! [[fault]]
//! kind = "update_shard_count"    # an operator's action, Kinesis only (provisioned)
//! shards = 4                     # at most double, at least half the open shards
//! at = "2m"
//!
//! [replay]                       # optional: a consumer bug, found later, then a replay
//! bug_at = "1m"                  # when the bug started (within the run)
//! found_after = "3d"             # how long until it is found (any length: days are fine)
//! pubsub_seek = "time"           # time (needs retained messages) or snapshot
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{CausalTrail, ServiceReport};
use toml::Spanned;

use crate::error::{Location, SimError};
use crate::fault::{Fault, FaultKind};
use crate::models::eventgrid::{EventGrid, EventGridCfg};
use crate::models::eventhubs::{EventHubs, EventHubsCfg};
use crate::models::kafka::{Kafka, KafkaCfg};
use crate::models::kinesis::{Kinesis, KinesisCfg};
use crate::models::pubsub::{PubSub, PubSubCfg};
use crate::models::{drive, RunBounds};
use crate::profile::{to_param_value, ProfileSet, ServiceKind};
use crate::replay::{PubSubSeek, ReplaySpec};
use crate::report::Report;
use crate::time::{parse_duration, parse_rate, SimTime};
use crate::workload::{Trace, WorkloadKind, WorkloadSpec};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// A complete, runnable description of one experiment.
///
/// Build one from a TOML file ([`Scenario::from_file`], [`Scenario::from_toml_str`]) or in code
/// ([`Scenario::compare`]); then [`Scenario::run`] it. Running is pure: the same scenario gives
/// the same [`Report`], byte for byte, on any machine.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// A short title.
    pub name: String,
    /// What the scenario shows, for people.
    pub description: String,
    /// The seed of every random choice in the run.
    pub seed: u64,
    /// How long the producer runs.
    pub duration: SimTime,
    /// Extra time after the producer stops for in-flight messages to arrive.
    pub drain: SimTime,
    /// Resolution of the time series.
    pub sample_interval: SimTime,
    /// The services to run, in report order.
    pub services: Vec<ServiceKind>,
    /// The offered workload.
    pub workload: WorkloadSpec,
    /// The scheduled faults.
    pub faults: Vec<Fault>,
    /// The profiles, with the scenario's overrides applied.
    pub profiles: ProfileSet,
    /// A replay after a consumer bug, reported per service.
    pub replay: Option<ReplaySpec>,
}

/// Where a run is, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// The service being simulated.
    pub service: ServiceKind,
    /// Its position in the run (0-based) and the number of services.
    pub index: usize,
    /// How many services the run has.
    pub of: usize,
    /// Overall completion, 0 to 1.
    pub fraction: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    duration: Option<Spanned<String>>,
    drain: Option<Spanned<String>>,
    sample_interval: Option<Spanned<String>>,
    services: Option<Vec<Spanned<String>>>,
    profiles: Option<Spanned<String>>,
    workload: Option<WorkloadFile>,
    kafka: Option<BTreeMap<String, Spanned<toml::Value>>>,
    eventhubs: Option<BTreeMap<String, Spanned<toml::Value>>>,
    eventgrid: Option<BTreeMap<String, Spanned<toml::Value>>>,
    kinesis: Option<BTreeMap<String, Spanned<toml::Value>>>,
    pubsub: Option<BTreeMap<String, Spanned<toml::Value>>>,
    #[serde(default)]
    fault: Vec<FaultFile>,
    replay: Option<ReplayFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayFile {
    bug_at: Spanned<String>,
    found_after: Spanned<String>,
    pubsub_seek: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    kind: Spanned<String>,
    rate: Option<Spanned<toml::Value>>,
    keys: Option<u64>,
    message_bytes: Option<u32>,
    hot_key_share: Option<Spanned<f64>>,
    trace: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    kind: Spanned<String>,
    at: Spanned<String>,
    duration: Option<Spanned<String>>,
    services: Option<Vec<Spanned<String>>>,
    broker: Option<Spanned<i64>>,
    partition: Option<Spanned<i64>>,
    consumer: Option<Spanned<i64>>,
    latency: Option<Spanned<String>>,
    processing: Option<Spanned<String>>,
    capacity_factor: Option<Spanned<f64>>,
    interval: Option<Spanned<String>>,
    shards: Option<Spanned<i64>>,
}

/// Parsing context: the file name and text, to turn spans into locations.
struct Src<'a> {
    file: &'a str,
    text: &'a str,
}

impl Src<'_> {
    fn loc<T>(&self, s: &Spanned<T>) -> Location {
        Location::at_offset(self.file, self.text, s.span().start)
    }

    fn duration(&self, s: &Spanned<String>) -> Result<SimTime, SimError> {
        parse_duration(s.get_ref()).map_err(|m| SimError::at(self.loc(s), m))
    }

    fn service(&self, s: &Spanned<String>) -> Result<ServiceKind, SimError> {
        ServiceKind::parse(s.get_ref()).ok_or_else(|| {
            SimError::at(
                self.loc(s),
                format!(
                    "unknown service `{}`; expected kafka, eventhubs, eventgrid, kinesis or pubsub",
                    s.get_ref()
                ),
            )
        })
    }

    fn index(
        &self,
        s: &Option<Spanned<i64>>,
        kind: &Spanned<String>,
        field: &str,
    ) -> Result<usize, SimError> {
        match s {
            Some(v) if *v.get_ref() >= 0 && *v.get_ref() < 10_000 => Ok(*v.get_ref() as usize),
            Some(v) => Err(SimError::at(
                self.loc(v),
                format!("expected an index from 0, got {}", v.get_ref()),
            )),
            None => Err(SimError::at(
                self.loc(kind).with_field(&format!("fault.{field}")),
                format!("a {} fault needs `{field}`", kind.get_ref()),
            )),
        }
    }

    fn required_duration(
        &self,
        s: &Option<Spanned<String>>,
        kind: &Spanned<String>,
        field: &str,
    ) -> Result<SimTime, SimError> {
        match s {
            Some(v) => self.duration(v),
            None => Err(SimError::at(
                self.loc(kind).with_field(&format!("fault.{field}")),
                format!("a {} fault needs `{field}`", kind.get_ref()),
            )),
        }
    }
}

/// The default sample interval: one second up to ten minutes, then about 600 points.
fn default_interval(duration: SimTime) -> SimTime {
    let secs = (duration.as_secs_f64() / 600.0).ceil().max(1.0);
    SimTime::from_secs(secs as u64)
}

impl Scenario {
    /// A fault-free comparison of `workload` on `services` for `duration`, with the embedded
    /// profiles and the default seed: what `kgate sim compare` runs.
    ///
    /// # Errors
    /// An empty service list or a zero duration.
    pub fn compare(
        workload: WorkloadSpec,
        duration: SimTime,
        services: &[ServiceKind],
    ) -> Result<Scenario, SimError> {
        if services.is_empty() {
            return Err(SimError::Invalid("name at least one service".into()));
        }
        if duration == SimTime::ZERO {
            return Err(SimError::Invalid("the duration must be above zero".into()));
        }
        Ok(Scenario {
            name: format!("{} comparison", workload.kind.name()),
            description: String::new(),
            seed: DEFAULT_SEED,
            duration,
            drain: SimTime::from_secs(120),
            sample_interval: default_interval(duration),
            services: services.to_vec(),
            workload,
            faults: Vec::new(),
            profiles: ProfileSet::embedded()?,
            replay: None,
        })
    }

    /// The same scenario with another seed.
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// Reads a scenario file; relative `trace` and `profiles` paths are taken from its folder.
    ///
    /// # Errors
    /// An unreadable file, or any mistake in it (with file, line and field).
    pub fn from_file(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::io(path, e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Scenario::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses a scenario from text; `file` names it in error messages and relative paths are
    /// taken from the current directory.
    ///
    /// # Errors
    /// [`SimError::File`] with the file, line, column and field of the first mistake.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Scenario, SimError> {
        Scenario::parse(text, file, Path::new(""))
    }

    fn parse(text: &str, file: &str, base: &Path) -> Result<Scenario, SimError> {
        let src = Src { file, text };
        let raw: ScenarioFile =
            toml::from_str(text).map_err(|e| SimError::from_toml(file, text, &e))?;
        let duration = match &raw.duration {
            Some(d) => src.duration(d)?,
            None => SimTime::from_secs(60),
        };
        if duration == SimTime::ZERO {
            if let Some(d) = &raw.duration {
                return Err(SimError::at(src.loc(d), "the duration must be above zero"));
            }
        }
        let drain = match &raw.drain {
            Some(d) => src.duration(d)?,
            None => SimTime::from_secs(120),
        };
        let sample_interval = match &raw.sample_interval {
            Some(d) => {
                let t = src.duration(d)?;
                if t < SimTime::from_millis(10) {
                    return Err(SimError::at(
                        src.loc(d),
                        "the sample interval must be at least 10ms",
                    ));
                }
                t
            }
            None => default_interval(duration),
        };
        let services = match &raw.services {
            Some(list) if list.is_empty() => {
                return Err(SimError::at(
                    Location::file_start(file).with_field("services"),
                    "name at least one service",
                ))
            }
            Some(list) => {
                let mut out = Vec::new();
                for s in list {
                    let k = src.service(s)?;
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
                out
            }
            None => ServiceKind::COMPARE.to_vec(),
        };
        let mut profiles = match &raw.profiles {
            Some(dir) => ProfileSet::load_dir(&base.join(dir.get_ref())).map_err(|e| match e {
                SimError::Io { path, source } => {
                    SimError::at(src.loc(dir), format!("{path}: {source}"))
                }
                other => other,
            })?,
            None => ProfileSet::embedded()?,
        };
        let overrides = [
            (ServiceKind::Kafka, &raw.kafka),
            (ServiceKind::EventHubs, &raw.eventhubs),
            (ServiceKind::EventGrid, &raw.eventgrid),
            (ServiceKind::Kinesis, &raw.kinesis),
            (ServiceKind::PubSub, &raw.pubsub),
        ];
        for (kind, table) in overrides {
            let Some(table) = table else { continue };
            let mut profile = match profiles.get(kind) {
                Ok(p) => p.clone(),
                // A broken profile of a service the run leaves out blocks nothing.
                Err(_) if !services.contains(&kind) => continue,
                Err(e) => return Err(e),
            };
            for (name, value) in table {
                let loc = src.loc(value).with_field(&format!("{kind}.{name}"));
                let v = to_param_value(value.get_ref(), &loc)?;
                profile.set(name, v, loc)?;
            }
            profiles.insert(profile);
        }
        let workload = match &raw.workload {
            Some(w) => parse_workload(&src, w, base)?,
            None => WorkloadSpec::named("telemetry", 1000.0)?,
        };
        let mut faults = Vec::new();
        for (id, f) in raw.fault.iter().enumerate() {
            faults.push(parse_fault(&src, id, f)?);
        }
        let replay = match &raw.replay {
            Some(r) => Some(parse_replay(&src, r, duration)?),
            None => None,
        };
        let scenario = Scenario {
            replay,
            name: raw.name.unwrap_or_else(|| file.to_string()),
            description: raw.description.unwrap_or_default(),
            seed: raw.seed.unwrap_or(DEFAULT_SEED),
            duration,
            drain,
            sample_interval,
            services,
            workload,
            faults,
            profiles,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks every service's parameters and every fault now, so a bad override or a fault
    /// that cannot happen fails before a long run.
    ///
    /// # Errors
    /// The first invalid parameter, located in the profile or scenario that set it; a fault
    /// that starts after the producer stops, or that names a broker, partition or consumer the
    /// service does not have, located at the fault's field.
    pub fn validate(&self) -> Result<(), SimError> {
        for f in &self.faults {
            if f.at >= self.duration {
                return Err(fault_error(
                    f,
                    "at",
                    format!(
                        "fault {} ({}) starts at {}, after the run ends at {} (its duration): \
                         it would never happen; start it before {}",
                        f.id,
                        f.kind.name(),
                        f.at,
                        self.duration,
                        self.duration
                    ),
                ));
            }
        }
        for &kind in &self.services {
            let shape = self.shape(kind)?;
            for f in self.faults.iter().filter(|f| f.targets(kind)) {
                shape.check(f, kind)?;
            }
        }
        Ok(())
    }

    /// Builds the settings of `kind` (checking them) and returns what a fault may name in it.
    fn shape(&self, kind: ServiceKind) -> Result<Shape, SimError> {
        let p = self.profiles.get(kind)?;
        Ok(match kind {
            ServiceKind::Kafka => {
                let c = KafkaCfg::from_profile(p)?;
                Shape {
                    brokers: Some(c.brokers),
                    partitions: Some((c.partitions, "partition")),
                    consumers: Some((c.group.consumers, "consumer")),
                }
            }
            ServiceKind::EventHubs => {
                let c = EventHubsCfg::from_profile(p)?;
                Shape {
                    brokers: None,
                    partitions: Some((c.partitions, "partition")),
                    consumers: Some((c.group.consumers, "processor")),
                }
            }
            ServiceKind::EventGrid => {
                EventGridCfg::from_profile(p)?;
                Shape::default()
            }
            ServiceKind::Kinesis => {
                let c = KinesisCfg::from_profile(p)?;
                Shape {
                    brokers: None,
                    partitions: None,
                    consumers: Some((c.group.consumers, "KCL worker")),
                }
            }
            ServiceKind::PubSub => {
                let c = PubSubCfg::from_profile(p)?;
                Shape {
                    brokers: None,
                    partitions: None,
                    consumers: Some((c.subscribers, "subscriber")),
                }
            }
        })
    }

    /// Runs every service and returns the report.
    ///
    /// # Errors
    /// Invalid parameters (see [`Scenario::validate`]).
    pub fn run(&self) -> Result<Report, SimError> {
        self.run_with_progress(&mut |_| {})
    }

    /// Runs every service, calling `progress` now and then (every 65,536 events).
    ///
    /// # Errors
    /// Invalid parameters (see [`Scenario::validate`]).
    pub fn run_with_progress(
        &self,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Report, SimError> {
        self.validate()?;
        let bounds = RunBounds {
            replay: self.replay,
            seed: self.seed,
            duration: self.duration,
            drain: self.drain,
            interval: self.sample_interval,
        };
        let total = self.duration.plus(self.drain).as_secs_f64().max(1e-9);
        let of = self.services.len();
        // The services are independent (each has its own random stream, derived from the seed
        // and its name), so they run at once, one thread each: the same report, sooner.
        let results = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel::<(usize, f64)>();
            let runs: Vec<_> = self
                .services
                .iter()
                .enumerate()
                .map(|(index, &service)| {
                    let tx = tx.clone();
                    let bounds = &bounds;
                    scope.spawn(move || {
                        let mut tick = |now: SimTime| {
                            let _ = tx.send((index, (now.as_secs_f64() / total).min(1.0)));
                        };
                        self.run_service(service, bounds, &mut tick)
                    })
                })
                .collect();
            drop(tx);
            let mut done = vec![0.0; of];
            for (index, within) in rx {
                done[index] = within;
                progress(Progress {
                    service: self.services[index],
                    index,
                    of,
                    fraction: done.iter().sum::<f64>() / of as f64,
                });
            }
            runs.into_iter()
                .map(|run| {
                    run.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Vec<_>>()
        });
        let mut reports = Vec::new();
        let mut trails = Vec::new();
        for result in results {
            let (report, t) = result?;
            reports.push(report);
            trails.extend(t);
        }
        Ok(Report::new(self, reports, trails))
    }

    /// Simulates one service of the scenario from start to drain.
    fn run_service(
        &self,
        service: ServiceKind,
        bounds: &RunBounds,
        tick: &mut dyn FnMut(SimTime),
    ) -> Result<(ServiceReport, Vec<CausalTrail>), SimError> {
        let profile = self.profiles.get(service)?;
        let workload = self.workload.generator(self.seed, self.duration);
        let faults: Vec<Fault> = self
            .faults
            .iter()
            .filter(|f| f.targets(service))
            .cloned()
            .collect();
        // Every model is driven the same way, from its own configuration.
        macro_rules! drive_model {
            ($model:ident, $cfg:ident) => {
                drive(
                    $model::new($cfg::from_profile(profile)?),
                    profile,
                    workload,
                    faults,
                    bounds,
                    tick,
                )?
            };
        }
        Ok(match service {
            ServiceKind::Kafka => drive_model!(Kafka, KafkaCfg),
            ServiceKind::EventHubs => drive_model!(EventHubs, EventHubsCfg),
            ServiceKind::EventGrid => drive_model!(EventGrid, EventGridCfg),
            ServiceKind::Kinesis => drive_model!(Kinesis, KinesisCfg),
            ServiceKind::PubSub => drive_model!(PubSub, PubSubCfg),
        })
    }
}

/// What a fault's indices may name in one service. `None` where the service has no such thing
/// a customer sees (a managed service's brokers): any index is then accepted and the fault
/// acts on the service as a whole.
#[derive(Default)]
struct Shape {
    brokers: Option<usize>,
    partitions: Option<(usize, &'static str)>,
    consumers: Option<(usize, &'static str)>,
}

impl Shape {
    fn check(&self, f: &Fault, kind: ServiceKind) -> Result<(), SimError> {
        let fields = [
            ("broker", self.brokers.map(|n| (n, "broker"))),
            ("partition", self.partitions),
            ("consumer", self.consumers),
        ];
        for (field, bound) in fields {
            let (Some(i), Some((n, what))) = (f.index(field), bound) else {
                continue;
            };
            if i >= n {
                return Err(fault_error(
                    f,
                    field,
                    format!(
                        "fault {} ({}) names {what} {i}, but {kind} has {n} {what}s \
                         (numbered 0 to {}); name one of them, or leave {kind} out of the \
                         fault's `services`",
                        f.id,
                        f.kind.name(),
                        n - 1
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An error about `field` of fault `f`, located where the scenario wrote it.
fn fault_error(f: &Fault, field: &str, message: String) -> SimError {
    match f.field_origin(field) {
        Some(loc) => SimError::at(loc, message),
        None => SimError::Invalid(message),
    }
}

fn parse_workload(src: &Src<'_>, w: &WorkloadFile, base: &Path) -> Result<WorkloadSpec, SimError> {
    let rate = match &w.rate {
        None => 1000.0,
        Some(r) => {
            let text = match r.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(x) => x.to_string(),
                _ => String::from("?"),
            };
            parse_rate(&text).map_err(|m| SimError::at(src.loc(r), m))?
        }
    };
    let mut spec = if w.kind.get_ref().eq_ignore_ascii_case("trace") {
        let Some(path) = &w.trace else {
            return Err(SimError::at(
                src.loc(&w.kind).with_field("workload.trace"),
                "a trace workload needs `trace = \"file.csv\"` (CSV or JSON lines)",
            ));
        };
        let full: PathBuf = base.join(path.get_ref());
        let trace = Trace::from_file(&full).map_err(|e| match e {
            SimError::Io { path: p, source } => {
                SimError::at(src.loc(path), format!("{p}: {source}"))
            }
            other => other,
        })?;
        WorkloadSpec::trace(trace)
    } else {
        WorkloadSpec::named(w.kind.get_ref(), rate)
            .map_err(|e| SimError::at(src.loc(&w.kind), e.to_string()))?
    };
    spec.keys = w.keys;
    spec.message_bytes = w.message_bytes;
    if let Some(h) = &w.hot_key_share {
        let share = *h.get_ref();
        if !(0.0..=1.0).contains(&share) {
            return Err(SimError::at(
                src.loc(h).with_field("workload.hot_key_share"),
                format!(
                    "hot_key_share is the share of messages with the hot key, from 0 to 1; \
                     got {share} (write 0.3 for 30%)"
                ),
            ));
        }
        if matches!(spec.kind, WorkloadKind::Trace(_)) {
            return Err(SimError::at(
                src.loc(h).with_field("workload.hot_key_share"),
                "a trace keeps its own keys: remove hot_key_share or use a generated workload",
            ));
        }
        spec.hot_key_share = Some(share);
    }
    Ok(spec)
}

/// The `[replay]` table: a bug that starts within the run and is found some time later.
fn parse_replay(src: &Src<'_>, r: &ReplayFile, duration: SimTime) -> Result<ReplaySpec, SimError> {
    let bug_at = src.duration(&r.bug_at)?;
    if bug_at >= duration {
        return Err(SimError::at(
            src.loc(&r.bug_at).with_field("replay.bug_at"),
            format!(
                "the bug starts at {bug_at}, after the run ends at {duration} (its duration): \
                 start it before {duration}"
            ),
        ));
    }
    let found_after = src.duration(&r.found_after)?;
    if found_after == SimTime::ZERO {
        return Err(SimError::at(
            src.loc(&r.found_after).with_field("replay.found_after"),
            "found_after is how long the bug goes unnoticed and must be above zero: write \
             \"2h\" or \"3d\"",
        ));
    }
    let pubsub_seek = match &r.pubsub_seek {
        None => PubSubSeek::Time,
        Some(k) => match k.get_ref().to_ascii_lowercase().as_str() {
            "time" => PubSubSeek::Time,
            "snapshot" => PubSubSeek::Snapshot,
            other => {
                return Err(SimError::at(
                    src.loc(k).with_field("replay.pubsub_seek"),
                    format!(
                        "unknown Pub/Sub seek `{other}`: write \"time\" (seek to a timestamp) \
                         or \"snapshot\" (seek to a snapshot taken when the bug started)"
                    ),
                ))
            }
        },
    };
    Ok(ReplaySpec {
        bug_at,
        found_after,
        pubsub_seek,
    })
}

fn parse_fault(src: &Src<'_>, id: usize, f: &FaultFile) -> Result<Fault, SimError> {
    let k = &f.kind;
    let kind = match k.get_ref().as_str() {
        "broker_crash" => FaultKind::BrokerCrash {
            broker: src.index(&f.broker, k, "broker")?,
        },
        "leader_failover" => FaultKind::LeaderFailover {
            partition: match &f.partition {
                Some(_) => Some(src.index(&f.partition, k, "partition")?),
                None => None,
            },
        },
        "network_partition" => FaultKind::NetworkPartition {
            broker: match &f.broker {
                Some(_) => Some(src.index(&f.broker, k, "broker")?),
                None => None,
            },
        },
        "added_latency" => FaultKind::AddedLatency {
            latency: src.required_duration(&f.latency, k, "latency")?,
        },
        "slow_consumer" => FaultKind::SlowConsumer {
            processing: src.required_duration(&f.processing, k, "processing")?,
            consumer: match &f.consumer {
                Some(_) => Some(src.index(&f.consumer, k, "consumer")?),
                None => None,
            },
        },
        "consumer_crash" => FaultKind::ConsumerCrash {
            consumer: src.index(&f.consumer, k, "consumer")?,
        },
        "disk_full" => FaultKind::DiskFull {
            broker: src.index(&f.broker, k, "broker")?,
        },
        "throttling_spike" => {
            let factor = match &f.capacity_factor {
                Some(c) if *c.get_ref() > 0.0 && *c.get_ref() <= 1.0 => *c.get_ref(),
                Some(c) => {
                    return Err(SimError::at(
                        src.loc(c),
                        format!(
                            "capacity_factor must be above 0 and at most 1, got {}",
                            c.get_ref()
                        ),
                    ))
                }
                None => 0.25,
            };
            FaultKind::ThrottlingSpike {
                capacity_factor: factor,
            }
        }
        "rebalance_storm" => FaultKind::RebalanceStorm {
            interval: match &f.interval {
                Some(i) => src.duration(i)?,
                None => SimTime::from_secs(10),
            },
        },
        "update_shard_count" => FaultKind::UpdateShardCount {
            shards: match &f.shards {
                Some(v) if *v.get_ref() >= 1 && *v.get_ref() <= 20_000 => *v.get_ref() as usize,
                Some(v) => {
                    return Err(SimError::at(
                        src.loc(v),
                        format!("expected 1 to 20,000 shards, got {}", v.get_ref()),
                    ))
                }
                None => {
                    return Err(SimError::at(
                        src.loc(k).with_field("fault.shards"),
                        "an update_shard_count action needs `shards`",
                    ))
                }
            },
        },
        other => {
            return Err(SimError::at(
                src.loc(k),
                format!(
                    "unknown fault kind `{other}`; expected one of {}",
                    FaultKind::NAMES.join(", ")
                ),
            ))
        }
    };
    if let FaultKind::RebalanceStorm { interval } = kind {
        if interval < SimTime::from_millis(100) {
            if let Some(i) = &f.interval {
                return Err(SimError::at(
                    src.loc(i),
                    "the storm interval must be at least 100ms",
                ));
            }
        }
    }
    let services = match &f.services {
        Some(list) => {
            let mut out = Vec::new();
            for s in list {
                out.push(src.service(s)?);
            }
            Some(out)
        }
        None => None,
    };
    let mut field_origins = vec![("at", src.loc(&f.at))];
    for (name, v) in [
        ("broker", &f.broker),
        ("partition", &f.partition),
        ("consumer", &f.consumer),
    ] {
        if let Some(v) = v {
            field_origins.push((name, src.loc(v)));
        }
    }
    Ok(Fault {
        id,
        kind,
        at: src.duration(&f.at)?,
        duration: match &f.duration {
            Some(d) => Some(src.duration(d)?),
            None => None,
        },
        services,
        origin: Some(src.loc(k)),
        field_origins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
seed = 3
duration = "3s"
services = ["kafka", "pubsub"]

[workload]
kind = "payments"
rate = "200/s"

[[fault]]
kind = "consumer_crash"
consumer = 0
at = "1s"
"#;

    #[test]
    fn two_runs_with_one_seed_are_identical() {
        let every = GOOD.replace(
            "services = [\"kafka\", \"pubsub\"]",
            "services = [\"kafka\", \"eventhubs\", \"eventgrid\", \"kinesis\", \"pubsub\"]",
        );
        let s = Scenario::from_toml_str(&every, "demo.toml").unwrap();
        assert_eq!(s.services.len(), 5);
        let a = s.run().unwrap().to_json();
        let b = s.run().unwrap().to_json();
        assert_eq!(a, b);
        let c = s.clone().with_seed(4).run().unwrap().to_json();
        assert_ne!(a, c, "another seed gives another run");
    }

    #[test]
    fn a_service_runs_the_same_alone_or_beside_others() {
        // The services of a run are simulated in parallel: none may see another's events.
        let alone = GOOD.replace(
            "services = [\"kafka\", \"pubsub\"]",
            "services = [\"kafka\"]",
        );
        let alone = Scenario::from_toml_str(&alone, "demo.toml")
            .unwrap()
            .run()
            .unwrap();
        let both = Scenario::from_toml_str(GOOD, "demo.toml")
            .unwrap()
            .run()
            .unwrap();
        let kafka = |r: &Report| {
            serde_json::to_string(r.service(ServiceKind::Kafka).expect("kafka")).expect("json")
        };
        assert_eq!(kafka(&alone), kafka(&both));
    }

    #[test]
    fn bad_rate_names_file_line_and_field() {
        let text = GOOD.replace("\"200/s\"", "\"fast\"");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("demo.toml:9:8: field `workload.rate`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fault_kind_lists_the_known_ones() {
        let text = GOOD.replace("consumer_crash", "meteor_strike");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("demo.toml:12:8: field `fault.kind`"), "{err}");
        assert!(err.contains("rebalance_storm"), "{err}");
    }

    #[test]
    fn missing_fault_field_is_named() {
        let text = GOOD.replace("consumer = 0\n", "");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `fault.consumer`"), "{err}");
    }

    #[test]
    fn unknown_override_is_refused_where_it_is_written() {
        let text = format!("{GOOD}\n[kafka]\nakcs = \"1\"\n");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `kafka.akcs`"), "{err}");
        assert!(err.contains("unknown parameter"), "{err}");
    }

    #[test]
    fn out_of_range_override_is_reported_at_the_override() {
        let text = format!("{GOOD}\n[kafka]\nmin_insync_replicas = 0\n");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("demo.toml:17:23: field `kafka.min_insync_replicas`"),
            "{err}"
        );
    }

    #[test]
    fn a_hot_key_share_above_one_is_refused_on_its_line_with_the_fix() {
        let text = GOOD.replace("rate = \"200/s\"", "rate = \"200/s\"\nhot_key_share = 30.0");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("demo.toml:10:"), "{err}");
        assert!(err.contains("write 0.3 for 30%"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn unknown_top_level_key_is_a_located_error() {
        let text = format!("durration = \"1s\"\n{GOOD}");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("demo.toml:1:1"), "{err}");
        assert!(err.contains("durration"), "{err}");
    }

    #[test]
    fn a_broker_beyond_the_cluster_is_refused_where_it_is_written() {
        let text = GOOD.replace(
            "kind = \"consumer_crash\"\nconsumer = 0",
            "kind = \"broker_crash\"\nbroker = 7",
        );
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("demo.toml:13:10: field `fault.broker`"),
            "{err}"
        );
        assert!(
            err.contains("kafka has 3 brokers (numbered 0 to 2)"),
            "{err}"
        );
        // Pub/Sub has no brokers a customer sees: the same fault on it alone is fine.
        let pubsub_only = text.replace("at = \"1s\"", "at = \"1s\"\nservices = [\"pubsub\"]");
        assert!(Scenario::from_toml_str(&pubsub_only, "demo.toml").is_ok());
    }

    #[test]
    fn a_consumer_beyond_the_group_is_refused() {
        let text = GOOD.replace("consumer = 0", "consumer = 3");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `fault.consumer`"), "{err}");
        assert!(err.contains("kafka has 3 consumers"), "{err}");
    }

    #[test]
    fn a_fault_after_the_end_of_the_run_is_refused() {
        let text = GOOD.replace("at = \"1s\"", "at = \"5s\"");
        let err = Scenario::from_toml_str(&text, "demo.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("demo.toml:14:6: field `fault.at`"), "{err}");
        assert!(err.contains("after the run ends at 3s"), "{err}");
    }

    #[test]
    fn a_broken_profile_of_a_service_left_out_does_not_block_the_run() {
        let dir = std::env::temp_dir().join(format!("kgate-sim-scn-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("profiles")).unwrap();
        std::fs::write(
            dir.join("profiles/kinesis.toml"),
            "service = \"kinesis\"\n[[[\n",
        )
        .unwrap();
        let with = |services: &str| {
            let text = GOOD
                .replace("services = [\"kafka\", \"pubsub\"]", services)
                .replace("seed = 3", "seed = 3\nprofiles = \"profiles\"");
            let path = dir.join("s.toml");
            std::fs::write(&path, text).unwrap();
            Scenario::from_file(&path).map(|s| s.services.len())
        };
        let fine = with("services = [\"kafka\", \"pubsub\"]\n[kinesis]\nshards = 2");
        let broken = with("services = [\"kafka\", \"kinesis\"]");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(fine.unwrap(), 2);
        let err = broken.unwrap_err().to_string();
        assert!(err.contains("kinesis.toml:2:"), "{err}");
        assert!(err.contains("the kinesis profile is broken"), "{err}");
    }

    #[test]
    fn the_throttling_spike_promises_no_resource_exhausted_and_pubsub_shows_none() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/throttling-spike.toml");
        let mut s = Scenario::from_file(&path).unwrap();
        assert!(s.description.contains("RESOURCE_EXHAUSTED never comes"));
        // A quarter of the 200 MB/s regional quota against a 4,000/s clickstream of about
        // 1 kB: the quota stays ten times above the offered bytes, so nothing is throttled.
        s.services = vec![ServiceKind::PubSub];
        s.duration = SimTime::from_secs(100);
        let r = s.run().unwrap();
        let ps = &r.services[0];
        assert_eq!(ps.throttled, 0);
        assert_eq!(ps.delivered, ps.produced);
    }

    #[test]
    fn every_shipped_scenario_parses_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                let s = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    !s.description.is_empty(),
                    "{} has no description",
                    path.display()
                );
                n += 1;
            }
        }
        assert!(n >= 5, "only {n} scenarios");
    }

    #[test]
    fn trace_path_is_resolved_next_to_the_scenario_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/trace-replay.toml");
        let s = Scenario::from_file(&path).unwrap();
        assert_eq!(s.workload.kind.name(), "trace");
        let missing = "[workload]\nkind = \"trace\"\ntrace = \"nowhere.csv\"\n";
        let err = Scenario::from_toml_str(missing, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.toml:3:9: field `workload.trace`"),
            "{err}"
        );
    }

    const REPLAY: &str = r#"
name = "replay"
seed = 9
duration = "10s"
services = ["kafka", "eventhubs", "eventgrid", "kinesis", "pubsub"]

[workload]
kind = "telemetry"
rate = "1000/s"

[replay]
bug_at = "5s"
found_after = "2d"
"#;

    /// (affected, reprocessed, lost) per service, in the scenario's order.
    fn replayed(text: &str) -> Vec<(ServiceKind, u64, u64, u64)> {
        let r = Scenario::from_toml_str(text, "r.toml")
            .unwrap()
            .run()
            .unwrap();
        r.services
            .iter()
            .map(|s| {
                let p = s.replay.as_ref().unwrap();
                assert_eq!(p.reprocessed + p.lost, p.affected);
                (s.service, p.affected, p.reprocessed, p.lost)
            })
            .collect()
    }

    #[test]
    fn replay_after_a_bug_gives_back_what_each_service_still_holds() {
        // A bug found 2 days later. Kafka keeps 7 days and Event Hubs Standard 7 days: all
        // of it comes back. Kinesis keeps 24 hours: the first day is gone. Pub/Sub deletes
        // acknowledged messages at once unless told to keep them: a seek to the bug's time
        // finds nothing. Event Grid keeps nothing. Counts are the offered rate over 2 days.
        let r = Scenario::from_toml_str(REPLAY, "r.toml")
            .unwrap()
            .run()
            .unwrap();
        let rate = |k: ServiceKind| r.service(k).unwrap().produced as f64 / 10.0;
        let n = |rate: f64, secs: f64| (rate * secs).round() as u64;
        let (day, two) = (86_400.0, 172_800.0);
        let expected = [
            (ServiceKind::Kafka, two),
            (ServiceKind::EventHubs, two),
            (ServiceKind::EventGrid, 0.0),
            (ServiceKind::Kinesis, day),
            (ServiceKind::PubSub, 0.0),
        ];
        for (kind, kept) in expected {
            let p = r.service(kind).unwrap().replay.clone().unwrap();
            let rate = rate(kind);
            assert_eq!(p.affected, n(rate, two), "{kind}");
            assert_eq!(p.reprocessed, n(rate, kept), "{kind}: {}", p.detail);
            assert_eq!(p.lost, p.affected - p.reprocessed, "{kind}");
        }
        let table = r.to_table();
        assert!(table.contains("replay: lost"), "{table}");
        let kinesis = r
            .service(ServiceKind::Kinesis)
            .unwrap()
            .replay
            .clone()
            .unwrap();
        assert!(
            kinesis.detail.contains("AT_TIMESTAMP"),
            "{}",
            kinesis.detail
        );
        assert!(kinesis
            .detail
            .ends_with("the first 24h after the bug are gone"));

        // Pub/Sub keeps acknowledged messages 7 days with retain_acked_messages; a snapshot
        // taken when the bug started works without it, for its 7 days; a topic retention of
        // one day gives back the last day.
        let pubsub = |extra: &str| {
            let text = REPLAY
                .replace(
                    "services = [\"kafka\", \"eventhubs\", \"eventgrid\", \"kinesis\", \"pubsub\"]",
                    "services = [\"pubsub\"]",
                )
                .replace("[replay]", &format!("{extra}\n[replay]"));
            let got = replayed(&text)[0];
            (got.1, got.2, got.3)
        };
        let (all, kept, lost) = pubsub("[pubsub]\nretain_acked_messages = true");
        assert_eq!((kept, lost), (all, 0));
        let text = "[pubsub]\ntopic_retention_days = 1";
        let (all, kept, lost) = pubsub(text);
        assert!((kept as f64 / all as f64 - 0.5).abs() < 1e-6 && lost == all - kept);
        let snapshot = REPLAY.replace(
            "found_after = \"2d\"",
            "found_after = \"2d\"\npubsub_seek = \"snapshot\"",
        );
        let got = replayed(&snapshot);
        assert_eq!(got[4].3, 0, "a 7-day snapshot covers 2 days");
        let late = snapshot.replace("\"2d\"", "\"8d\"");
        let got = replayed(&late);
        assert_eq!(
            (got[4].2, got[0].3),
            (0, n(rate(ServiceKind::Kafka), 86_400.0))
        );
    }

    #[test]
    fn bad_replay_settings_are_refused_where_they_are_written() {
        let err = |from: &str, to: &str| {
            Scenario::from_toml_str(&REPLAY.replace(from, to), "r.toml")
                .unwrap_err()
                .to_string()
        };
        let e = err("bug_at = \"5s\"", "bug_at = \"20s\"");
        assert!(e.starts_with("r.toml:12:10: field `replay.bug_at`"), "{e}");
        assert!(e.contains("start it before 10s"), "{e}");
        let e = err("found_after = \"2d\"", "found_after = \"0s\"");
        assert!(
            e.starts_with("r.toml:13:15: field `replay.found_after`"),
            "{e}"
        );
        assert!(e.contains("write \"2h\" or \"3d\""), "{e}");
        let e = err(
            "found_after = \"2d\"",
            "found_after = \"2d\"\npubsub_seek = \"rewind\"",
        );
        assert!(
            e.starts_with("r.toml:14:15: field `replay.pubsub_seek`"),
            "{e}"
        );
        assert!(e.contains("\"snapshot\""), "{e}");
        let e = err("bug_at = \"5s\"", "bug = \"5s\"");
        assert!(e.starts_with("r.toml:12:1"), "{e}");
        let e = err("[replay]", "[pubsub]\ntopic_retention_days = 40\n[replay]");
        assert!(
            e.starts_with("r.toml:12:24: field `pubsub.topic_retention_days`"),
            "{e}"
        );
        assert!(e.contains("10 minutes to 31 days"), "{e}");
        for e in [
            err("bug_at = \"5s\"", "bug_at = \"20s\""),
            err("[replay]", "[pubsub]\ntopic_retention_days = 40\n[replay]"),
        ] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
