//! # kgate-sim: one workload on Kafka, Event Hubs, Kinesis and Pub/Sub, side by side
//!
//! A deterministic discrete-event simulator for teaching: it replays one workload against
//! models of Apache Kafka, Azure Event Hubs (and Event Grid push delivery), AWS Kinesis Data
//! Streams and Google Cloud Pub/Sub, injects faults, and reports what each service delivered,
//! throttled, duplicated, reordered and lost — naming the messages — with latency percentiles,
//! consumer lag over time, a cost estimate, and for every fault a **causal trail**
//! (fault → mechanism → metric → symptom) that a lab can grade.
//!
//! ## Layout
//! - [`engine`]: the clock and the event queue. Simulated time only; ties break by insertion
//!   order, so a seed replays a run byte for byte.
//! - [`rng`]: seeded random streams (xoshiro256++), one per service and one for the workload.
//! - [`profile`]: service profiles, TOML data with a `source_url` and `as_of` on every number,
//!   embedded in the binary and replaceable at run time.
//! - [`workload`]: telemetry, clickstream and payments generators, and trace replay.
//! - [`fault`]: the faults a scenario schedules.
//! - `models` (private): one state machine per service.
//! - [`metrics`]: per-message accounting, latency histograms, time series.
//! - [`replay`]: rewinding after a consumer bug, and what each service can still give back.
//! - [`trail`]: causal trails.
//! - [`scenario`]: the scenario file and running it; [`report`]: tables, JSON and CSV;
//!   charts (SVG and PNG) come with [`Report::write_dir`].
//! - [`bench`]: the `kgate bench sim` measurements.
//!
//! ## Example
//! ```
//! use kgate_sim::{Scenario, ServiceKind, Stage};
//!
//! let scenario = Scenario::from_toml_str(
//!     r#"
//!     name = "leader crash with acks=1"
//!     seed = 7
//!     duration = "4s"
//!     services = ["kafka"]
//!
//!     [workload]
//!     kind = "telemetry"
//!     rate = "1000/s"
//!
//!     [kafka]
//!     acks = "1"
//!     replication_p50_ms = 20
//!     replication_p99_ms = 20
//!
//!     [[fault]]
//!     kind = "broker_crash"
//!     broker = 0
//!     at = "2s"
//!     "#,
//!     "example.toml",
//! )?;
//! let report = scenario.run()?;
//! let kafka = report.service(ServiceKind::Kafka).expect("kafka ran");
//! let trail = report.trail(0, ServiceKind::Kafka).expect("the fault left a trail");
//! assert!(trail.has(Stage::Mechanism, "leader_election"));
//! assert!(trail.has(Stage::Symptom, "messages_lost"));
//! assert!(kafka.lost.count > 0);
//! # Ok::<(), kgate_sim::SimError>(())
//! ```
//!
//! ## Determinism
//! Nothing reads wall time, and every random choice comes from [`rng::SimRng`] streams derived
//! from the scenario's seed; hash maps use a fixed hasher and are never iterated into output.
//! Reports always carry the seed.

#![warn(missing_docs)]

pub mod bench;
mod chart;
pub mod engine;
pub mod error;
pub mod fault;
pub mod metrics;
mod models;
pub mod profile;
pub mod replay;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod time;
pub mod trail;
pub mod workload;

pub use error::{Location, SimError};
pub use fault::{Fault, FaultKind};
pub use metrics::{IdList, Percentiles, Sample, ServiceReport};
pub use profile::{Param, ParamValue, Profile, ProfileSet, ServiceKind};
pub use replay::{PubSubSeek, Replay, ReplaySpec};
pub use report::Report;
pub use scenario::{Progress, Scenario};
pub use time::{parse_duration, parse_rate, SimTime};
pub use trail::{CausalTrail, Stage, TrailStep};
pub use workload::{Trace, WorkloadKind, WorkloadSpec};
