//! Shared gateway state in the upstream cluster.
//!
//! Several kgate instances in front of one cluster must enforce one policy and accept one
//! set of users. The cluster is already a replicated, durable log, so that is where they keep
//! them: one compacted topic (`__kgate_state`), one record per ACL binding, role binding,
//! group membership, super user, setting and SCRAM credential, keyed so compaction keeps the
//! latest, a tombstone for a delete. Every record is signed with a key the instances share
//! ([`key`]), because anyone who reaches the unsecured cluster directly could write to it.
//!
//! - [`record`]: what a record holds and its bytes.
//! - [`key`]: the shared signing key and its file.
//! - [`KafkaState`]: the topic itself: created or checked, read to its end at start, tailed.

mod kafka;
pub mod key;
mod model;
pub mod record;

pub use kafka::{KafkaState, StateError, StateMetrics, StateOptions, DEFAULT_TOPIC, MAC_HEADER};
pub use key::{KeyError, StateKey};
pub use model::{credential_entries, policy_entries};
