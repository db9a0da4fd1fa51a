//! Faults a scenario schedules, and which service each one can touch.
//!
//! A fault is a verb applied at a simulated instant, optionally for a while: a broker crashes and
//! restarts, a consumer slows down, a quota drops. Each model decides what the fault does to it
//! (a Kafka broker crash elects new leaders; on Event Hubs the provider fails the partition over
//! for a moment), and records the mechanisms in the causal trail.

use serde::Serialize;

use crate::error::Location;
use crate::profile::ServiceKind;
use crate::time::SimTime;

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// A broker process dies; it restarts after the fault's `duration` (never without one).
    BrokerCrash {
        /// Broker index (0-based).
        broker: usize,
    },
    /// The controller moves leadership of a partition (or all of a broker's) cleanly.
    LeaderFailover {
        /// The partition whose leader moves; `None` moves the leaders of broker 0.
        partition: Option<usize>,
    },
    /// A network partition: one broker cut off from the others and the clients, or (with no
    /// broker) the clients cut off from the service.
    NetworkPartition {
        /// The isolated broker; `None` isolates the clients.
        broker: Option<usize>,
    },
    /// Extra one-way network latency on every client request.
    AddedLatency {
        /// The added latency.
        latency: SimTime,
    },
    /// Consumers take longer per message.
    SlowConsumer {
        /// Processing time per message while the fault lasts.
        processing: SimTime,
        /// Only this consumer (0-based); `None` slows all of them.
        consumer: Option<usize>,
    },
    /// A consumer process dies; it restarts after the fault's `duration` (never without one).
    ConsumerCrash {
        /// Consumer index (0-based).
        consumer: usize,
    },
    /// A broker's log directory fills up: writes fail with a storage error.
    DiskFull {
        /// Broker index (0-based).
        broker: usize,
    },
    /// The service's capacity (quota, throughput units, shard limits) drops to a fraction.
    ThrottlingSpike {
        /// Remaining share of capacity, in `(0, 1]`.
        capacity_factor: f64,
    },
    /// Consumers keep leaving and joining the group: a rebalance every `interval`.
    RebalanceStorm {
        /// Time between rebalances.
        interval: SimTime,
    },
    /// Not a fault but an operator's action on a provisioned Kinesis stream: `UpdateShardCount`
    /// with uniform scaling splits (or merges) shards until the stream has `shards` open ones.
    /// Applied to Kinesis only.
    UpdateShardCount {
        /// The target number of open shards (at most double, at least half the current).
        shards: usize,
    },
}

impl FaultKind {
    /// The name used in scenario files and trails.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::BrokerCrash { .. } => "broker_crash",
            FaultKind::LeaderFailover { .. } => "leader_failover",
            FaultKind::NetworkPartition { .. } => "network_partition",
            FaultKind::AddedLatency { .. } => "added_latency",
            FaultKind::SlowConsumer { .. } => "slow_consumer",
            FaultKind::ConsumerCrash { .. } => "consumer_crash",
            FaultKind::DiskFull { .. } => "disk_full",
            FaultKind::ThrottlingSpike { .. } => "throttling_spike",
            FaultKind::RebalanceStorm { .. } => "rebalance_storm",
            FaultKind::UpdateShardCount { .. } => "update_shard_count",
        }
    }

    /// Every fault name, for error messages.
    pub const NAMES: [&'static str; 10] = [
        "broker_crash",
        "leader_failover",
        "network_partition",
        "added_latency",
        "slow_consumer",
        "consumer_crash",
        "disk_full",
        "throttling_spike",
        "rebalance_storm",
        "update_shard_count",
    ];
}

/// A fault placed in time.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    /// Its index in the scenario, which trails and reports refer to.
    pub id: usize,
    /// What goes wrong.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// When it starts.
    pub at: SimTime,
    /// How long it lasts (for crashes: time until restart); `None` means until the end.
    pub duration: Option<SimTime>,
    /// The services it is applied to; `None` means every service in the run.
    pub services: Option<Vec<ServiceKind>>,
    /// Where the scenario file declared it.
    #[serde(skip)]
    pub origin: Option<Location>,
    /// Where each of its fields (`at`, `broker`, `partition`, `consumer`) was written, so a
    /// value that does not fit the run is reported where it stands.
    #[serde(skip)]
    pub field_origins: Vec<(&'static str, Location)>,
}

impl Fault {
    /// A fault with no service filter, for building scenarios in code.
    pub fn new(id: usize, kind: FaultKind, at: SimTime, duration: Option<SimTime>) -> Fault {
        Fault {
            id,
            kind,
            at,
            duration,
            services: None,
            origin: None,
            field_origins: Vec::new(),
        }
    }

    /// Where `field` of this fault was written: the field itself if known, else the fault's
    /// `kind` line, else nowhere.
    pub fn field_origin(&self, field: &str) -> Option<Location> {
        self.field_origins
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, l)| l.clone())
            .or_else(|| {
                self.origin
                    .clone()
                    .map(|l| l.with_field(&format!("fault.{field}")))
            })
    }

    /// The index this fault names in `field` (`broker`, `partition` or `consumer`), if any.
    pub fn index(&self, field: &str) -> Option<usize> {
        match (&self.kind, field) {
            (FaultKind::BrokerCrash { broker }, "broker")
            | (FaultKind::DiskFull { broker }, "broker") => Some(*broker),
            (FaultKind::NetworkPartition { broker }, "broker") => *broker,
            (FaultKind::LeaderFailover { partition }, "partition") => *partition,
            (FaultKind::ConsumerCrash { consumer }, "consumer") => Some(*consumer),
            (FaultKind::SlowConsumer { consumer, .. }, "consumer") => *consumer,
            _ => None,
        }
    }

    /// When the fault is over (its start plus duration, or never).
    pub fn end(&self) -> SimTime {
        self.duration.map_or(SimTime::NEVER, |d| self.at.plus(d))
    }

    /// Whether the scenario applies this fault to `service`.
    pub fn targets(&self, service: ServiceKind) -> bool {
        if matches!(self.kind, FaultKind::UpdateShardCount { .. })
            && service != ServiceKind::Kinesis
        {
            return false;
        }
        self.services.as_ref().is_none_or(|s| s.contains(&service))
    }
}
