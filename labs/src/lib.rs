//! kgate's lab side: the embedded Kafka-protocol cluster the labs and the demo run on, the
//! real-client routines they drive it with, and the guided lab runner.
//!
//! # Layout
//! - [`cluster`]: the embedded 3-broker cluster with fault hooks.
//! - [`client`]: librdkafka produce/consume routines.
//! - [`lab`]: the lab file (TOML with Markdown narrative) and its validation; the labs shipped
//!   in the binary live in `labs/scenarios/`.
//! - [`env`]: the live environment: the cluster plus the gateway configured by the lab
//!   directory's `kgate.toml`.
//! - [`check`]: checks with real clients, probes with faults, the audit log, simulator runs.
//! - [`live`]: the instructor's live view and the class view in the browser (SSE, embedded page).
//! - [`ops`]: cluster operations students run as fixes (`kgate lab cluster ...`).
//! - [`rca`]: grading answers, including 5 whys, fishbone and fault trees against a causal
//!   trail.
//! - [`runner`]: guided runs, single-step checks, `--auto`, reset.
//!
//! # Example
//! ```
//! let labs = kgate_labs::lab::Lab::embedded().expect("the shipped labs are valid");
//! assert!(labs.iter().any(|l| l.id == "secure-the-cluster"));
//! ```

pub mod check;
pub mod client;
pub mod cluster;
pub mod env;
pub mod lab;
pub mod live;
pub mod ops;
pub mod rca;
pub mod runner;

pub use cluster::{ClusterCommand, ClusterError, EmbeddedCluster};
pub use lab::{Lab, LabError};
pub use runner::{Options, Session};
