//! Cluster operations a student performs with `kgate lab cluster ...` from the lab directory:
//! the fixes of a troubleshooting lab (move leadership, restart or replace a broker, add
//! consumers, raise a quota, repair the network).
//!
//! The command appends one line to [`OPS_FILE`] in the lab directory; the running lab applies
//! new lines before every check (as it reloads `kgate.toml`), and a separate
//! `kgate lab check` replays them all, so a fix survives across invocations.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The operations file of a lab directory, one operation per line.
pub const OPS_FILE: &str = "cluster-ops.txt";

/// One operation on the lab cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterOp {
    /// `consumers N`: the probes' consumer group runs N consumers that share the partitions.
    Consumers {
        /// Consumers in the group.
        count: usize,
    },
    /// `move-leader TOPIC PARTITION BROKER`: a preferred-leader change (a reassignment).
    MoveLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The new leader.
        broker: i32,
    },
    /// `raise-quota`: lifts the client quotas (throttling) in force.
    RaiseQuota,
    /// `replace-broker N`: the broker restarts on new hardware (a new disk).
    ReplaceBroker {
        /// Broker id.
        broker: i32,
    },
    /// `repair-network`: the congested network path is fixed.
    RepairNetwork,
    /// `restart-broker N`: a broker that is down starts again (its hardware unchanged).
    RestartBroker {
        /// Broker id.
        broker: i32,
    },
}

/// Why an operation line is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpError(String);

/// What each operation looks like, for messages and help.
pub const USAGE: &str = "move-leader TOPIC PARTITION BROKER | restart-broker N | \
                         replace-broker N | consumers N | raise-quota | repair-network";

impl FromStr for ClusterOp {
    type Err = OpError;

    fn from_str(s: &str) -> Result<Self, OpError> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let num = |w: &str, what: &str| -> Result<i32, OpError> {
            w.parse::<i32>()
                .map_err(|_| OpError(format!("{what} must be a number, not {w:?}")))
        };
        Ok(match words.as_slice() {
            ["move-leader", topic, partition, broker] => ClusterOp::MoveLeader {
                topic: (*topic).to_owned(),
                partition: num(partition, "the partition")?,
                broker: num(broker, "the broker")?,
            },
            ["restart-broker", b] => ClusterOp::RestartBroker {
                broker: num(b, "the broker")?,
            },
            ["replace-broker", b] => ClusterOp::ReplaceBroker {
                broker: num(b, "the broker")?,
            },
            ["consumers", n] => {
                let count = num(n, "the number of consumers")?;
                if !(1..=16).contains(&count) {
                    return Err(OpError("a group of 1 to 16 consumers".into()));
                }
                ClusterOp::Consumers {
                    count: count as usize,
                }
            }
            ["raise-quota"] => ClusterOp::RaiseQuota,
            ["repair-network"] => ClusterOp::RepairNetwork,
            _ => {
                return Err(OpError(format!(
                    "unknown operation {s:?}; the operations: {USAGE}"
                )))
            }
        })
    }
}

impl fmt::Display for ClusterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterOp::Consumers { count } => write!(f, "consumers {count}"),
            ClusterOp::MoveLeader {
                topic,
                partition,
                broker,
            } => write!(f, "move-leader {topic} {partition} {broker}"),
            ClusterOp::RaiseQuota => f.write_str("raise-quota"),
            ClusterOp::ReplaceBroker { broker } => write!(f, "replace-broker {broker}"),
            ClusterOp::RepairNetwork => f.write_str("repair-network"),
            ClusterOp::RestartBroker { broker } => write!(f, "restart-broker {broker}"),
        }
    }
}

/// Appends an operation to the lab directory's operations file.
///
/// # Errors
/// The file cannot be written.
pub fn record(dir: &Path, op: &ClusterOp) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(OPS_FILE))?;
    writeln!(f, "{op}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_through_text() {
        for line in [
            "move-leader vehicle-telemetry 1 3",
            "restart-broker 3",
            "replace-broker 2",
            "consumers 3",
            "raise-quota",
            "repair-network",
        ] {
            let op: ClusterOp = line.parse().unwrap();
            assert_eq!(op.to_string(), line);
        }
        assert!("consumers 0".parse::<ClusterOp>().is_err());
        let e = "reboot everything".parse::<ClusterOp>().unwrap_err();
        assert!(e.to_string().contains("move-leader"), "{e}");
    }
}
