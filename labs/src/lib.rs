//! kgate's lab side: the embedded Kafka-protocol cluster the labs and the demo run on.

pub mod cluster;

pub use cluster::{ClusterCommand, ClusterError, EmbeddedCluster};
