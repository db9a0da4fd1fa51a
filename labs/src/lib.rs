//! kgate's lab side: the embedded Kafka-protocol cluster the labs and the demo run on, and
//! the real-client routines they drive it with.

pub mod client;
pub mod cluster;

pub use cluster::{ClusterCommand, ClusterError, EmbeddedCluster};
