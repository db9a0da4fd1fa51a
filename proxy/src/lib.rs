//! kgate's Kafka protocol gateway.
//!
//! A client connects to a kgate listener (the bootstrap port, or the port kgate gives one
//! upstream broker), finishes TLS, authenticates with SASL or a client certificate, and from
//! then on every request is checked against an allow-table and forwarded to its broker.
//! Responses come back in order with every broker address replaced by kgate's own.
//!
//! # Layout
//! - [`frame`]: the 4-byte size prefix, with a size cap enforced before allocating.
//! - [`read_ahead`]: sockets that take up to 64 KiB per `recv` (fewer system calls).
//! - [`header`]: request and response headers read with checked lengths.
//! - [`registry`]: every Kafka API kgate serves, declared once (versions, who answers, checks,
//!   names carried, rewriting, faults), and those it leaves out with the reason.
//! - [`versions`]: the versions offered (from the registry and the upstream) and ApiVersions.
//! - [`sasl`]: Kafka's SASL framing (handshake v0 and v1) around pluggable mechanisms.
//! - [`directory`]: node id → upstream broker and kgate port, and new listeners.
//! - [`rewrite`]: broker addresses in Metadata, FindCoordinator, DescribeCluster and the
//!   leader endpoints of Produce, Fetch, ShareFetch and ShareAcknowledge.
//! - [`scan`]: whether a Produce or Fetch answer names brokers, found without decoding it.
//! - [`upstream`]: connecting to and discovering the upstream cluster.
//! - [`connection`]: pipelined forwarding for one authenticated client.
//! - [`authz`]: Kafka's authorization checks per API, with Kafka-shaped denials.
//! - [`faults`]: latency, errors and disconnects injected on purpose, per principal or topic.
//! - [`audit`]: one JSON line per authentication and per kind of authorization decision in a
//!   request, written by a thread of its own.
//! - [`log_safe`]: client-chosen names capped and escaped for log lines.
//! - [`metrics`] and [`admin`]: counters and the loopback admin endpoint (health, metrics, reload).
//! - [`server`]: listeners, TLS, the gateway's start and shutdown.
//! - [`timings`]: per-broker request timings (broker time vs the rest), for the labs.
//! - [`held`]: how long kgate holds each request and its answer (the latency it adds).

pub mod admin;
pub mod admin_token;
pub mod audit;
pub mod authz;
pub mod connection;
pub mod counted;
pub mod credentials;
pub mod directory;
pub mod error_response;
pub mod faults;
pub mod frame;
pub mod header;
pub mod held;
pub mod limits;
pub mod log_safe;
pub mod metrics;
pub mod read_ahead;
pub mod reauth;
pub mod registry;
pub mod rewrite;
pub mod sasl;
pub mod scan;
pub mod server;
pub mod timings;
pub mod upstream;
pub mod versions;

pub use server::{Gateway, GatewayConfig, StartError, Target, TlsSettings};
