//! `kgate bench`: benchmark programs (not timed tests). Each program runs real clients
//! against the embedded cluster and prints its figures as a table or as one JSON document.
//!
//! - [`gateway`]: throughput, a load–latency curve, CPU per byte (free-running and pinned)
//!   and memory of the gateway (issues 2 and 15's targets).
//! - [`hostile`]: a producer's throughput, kgate's memory and log under a pre-authentication
//!   attack (issue 12's targets).
//! - [`authz`]: decision cost and throughput with authorization on vs off (issue 3's targets).
//! - [`state`]: how fast several gateways sharing state agree, and a new one catches up
//!   (issue 11's targets).
//! - `kgate bench sim` runs `kgate_sim::bench` (issue 4's targets).
//!
//! Helpers that other benchmarks may reuse: [`process`] (a child `kgate` process that is
//! always killed, and its CPU, RSS and file descriptors from `/proc`), [`stats`]
//! (percentiles, median and range, PASS/MISS), [`pin`] (CPU pinning with `taskset`),
//! [`chart`] (the load–latency SVG), [`held`] (the time a gateway child held requests, from
//! its admin endpoint), [`wire`] (a minimal Kafka client over TLS with SCRAM).

pub mod authz;
pub mod chart;
pub mod gateway;
pub mod held;
pub mod hostile;
pub mod pin;
pub mod process;
pub mod state;
pub mod stats;
pub mod wire;
