//! `kgate bench`: benchmark programs (not timed tests). Each program runs real clients
//! against the embedded cluster and prints its figures as a table or as one JSON document.
//!
//! - [`gateway`]: throughput, latency, CPU and memory of the gateway (issue 2's targets).
//! - [`hostile`]: a producer's throughput, kgate's memory and log under a pre-authentication
//!   attack (issue 12's targets).
//! - [`authz`]: decision cost and throughput with authorization on vs off (issue 3's targets).
//! - [`state`]: how fast several gateways sharing state agree, and a new one catches up
//!   (issue 11's targets).
//! - `kgate bench sim` runs `kgate_sim::bench` (issue 4's targets).
//!
//! Helpers that other benchmarks may reuse: [`process`] (a child `kgate` process that is
//! always killed, and its CPU, RSS and file descriptors from `/proc`), [`stats`]
//! (percentiles, PASS/MISS), [`wire`] (a minimal Kafka client over TLS with SCRAM).

pub mod authz;
pub mod gateway;
pub mod hostile;
pub mod process;
pub mod state;
pub mod stats;
pub mod wire;
