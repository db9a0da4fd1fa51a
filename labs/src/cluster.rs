//! The embedded lab cluster: librdkafka's mock cluster, running in this process.
//!
//! It speaks the Kafka protocol on loopback with several brokers, Produce, Fetch, consumer
//! groups and transactions, and fault hooks (a broker down, added round-trip time, injected
//! request errors). It lets `kgate demo`, the labs and the tests run on a laptop with no Kafka.
//!
//! librdkafka's handle is not thread-safe to move around, so the cluster lives on a thread of
//! its own and [`EmbeddedCluster`] sends it commands; the handle is `Send + Sync` and can be
//! shared by async tasks.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// librdkafka refused to create the cluster or to apply an operation.
    #[error("embedded cluster: {0}")]
    Mock(String),
    /// The cluster's thread is gone.
    #[error("the embedded cluster has stopped")]
    Stopped,
}

/// A fault or change to apply to the running cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClusterCommand {
    /// Creates a topic.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Number of partitions.
        partitions: i32,
        /// Replication factor.
        replication: i32,
    },
    /// Makes a broker refuse connections (-1: all brokers).
    BrokerDown(i32),
    /// Makes a broker accept connections again (-1: all brokers).
    BrokerUp(i32),
    /// Adds round-trip time to every response of a broker.
    RoundTripTime {
        /// Broker id.
        broker: i32,
        /// Added delay.
        delay: Duration,
    },
    /// Moves the leadership of a partition (`None`: leaderless).
    PartitionLeader {
        /// Topic name.
        topic: String,
        /// Partition.
        partition: i32,
        /// New leader.
        broker: Option<i32>,
    },
    /// The next requests of one API get these errors, in order (Kafka error codes).
    RequestErrors {
        /// Kafka API key.
        api_key: i16,
        /// Kafka error codes.
        errors: Vec<i16>,
    },
    /// Removes injected request errors of one API.
    ClearRequestErrors {
        /// Kafka API key.
        api_key: i16,
    },
}

type Reply = mpsc::Sender<Result<(), ClusterError>>;

/// A running embedded cluster; dropping it stops the cluster.
#[derive(Debug)]
pub struct EmbeddedCluster {
    bootstrap: String,
    brokers: i32,
    commands: mpsc::Sender<(ClusterCommand, Reply)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Starts a cluster of `brokers` brokers (node ids 1..=brokers) on loopback.
    ///
    /// # Errors
    /// [`ClusterError::Mock`] if librdkafka cannot create it.
    pub fn start(brokers: i32) -> Result<Self, ClusterError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands, rx) = mpsc::channel::<(ClusterCommand, Reply)>();
        let thread = thread::Builder::new()
            .name("kgate-cluster".into())
            .spawn(move || {
                let mock = match MockCluster::new(brokers) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ClusterError::Mock(e.to_string())));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(mock.bootstrap_servers()));
                while let Ok((command, reply)) = rx.recv() {
                    let _ = reply.send(apply(&mock, command));
                }
            })
            .map_err(|e| ClusterError::Mock(format!("cannot start its thread: {e}")))?;
        let bootstrap = ready_rx.recv().map_err(|_| ClusterError::Stopped)??;
        Ok(Self {
            bootstrap,
            brokers,
            commands,
            thread: Some(thread),
        })
    }

    /// The cluster's own `bootstrap.servers` (the upstream kgate sits in front of).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Number of brokers.
    pub fn broker_count(&self) -> i32 {
        self.brokers
    }

    /// Applies a command and waits for librdkafka's answer.
    ///
    /// # Errors
    /// [`ClusterError`] if librdkafka refuses it or the cluster has stopped.
    pub fn apply(&self, command: ClusterCommand) -> Result<(), ClusterError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send((command, tx))
            .map_err(|_| ClusterError::Stopped)?;
        rx.recv().map_err(|_| ClusterError::Stopped)?
    }

    /// Creates a topic with `partitions` partitions, replicated on every broker (at most 3).
    ///
    /// # Errors
    /// As [`EmbeddedCluster::apply`].
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), ClusterError> {
        self.apply(ClusterCommand::CreateTopic {
            name: name.to_owned(),
            partitions,
            replication: self.brokers.min(3),
        })
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        // Closing the command channel ends the thread, which drops the mock cluster.
        let (dead, _) = mpsc::channel();
        self.commands = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn apply<C: rdkafka::ClientContext>(
    mock: &MockCluster<'_, C>,
    command: ClusterCommand,
) -> Result<(), ClusterError> {
    let result = match command {
        ClusterCommand::CreateTopic {
            name,
            partitions,
            replication,
        } => mock.create_topic(&name, partitions, replication),
        ClusterCommand::BrokerDown(b) => mock.broker_down(b),
        ClusterCommand::BrokerUp(b) => mock.broker_up(b),
        ClusterCommand::RoundTripTime { broker, delay } => {
            mock.broker_round_trip_time(broker, delay)
        }
        ClusterCommand::PartitionLeader {
            topic,
            partition,
            broker,
        } => mock.partition_leader(&topic, partition, broker),
        ClusterCommand::RequestErrors { api_key, errors } => {
            let key = api_key_from_i16(api_key)?;
            let errors = errors
                .into_iter()
                .map(resp_err)
                .collect::<Result<Vec<_>, _>>()?;
            mock.request_errors(key, &errors);
            Ok(())
        }
        ClusterCommand::ClearRequestErrors { api_key } => {
            mock.clear_request_errors(api_key_from_i16(api_key)?);
            Ok(())
        }
    };
    result.map_err(|e| ClusterError::Mock(e.to_string()))
}

fn api_key_from_i16(key: i16) -> Result<RDKafkaApiKey, ClusterError> {
    use RDKafkaApiKey as K;
    Ok(match key {
        0 => K::Produce,
        1 => K::Fetch,
        2 => K::ListOffsets,
        3 => K::Metadata,
        8 => K::OffsetCommit,
        9 => K::OffsetFetch,
        10 => K::FindCoordinator,
        11 => K::JoinGroup,
        12 => K::Heartbeat,
        13 => K::LeaveGroup,
        14 => K::SyncGroup,
        22 => K::InitProducerId,
        24 => K::AddPartitionsToTxn,
        25 => K::AddOffsetsToTxn,
        26 => K::EndTxn,
        28 => K::TxnOffsetCommit,
        other => {
            return Err(ClusterError::Mock(format!(
                "request errors cannot be injected for API key {other}"
            )))
        }
    })
}

/// The Kafka error codes that can be injected (the ones labs and tests use).
fn resp_err(code: i16) -> Result<RDKafkaRespErr, ClusterError> {
    use RDKafkaRespErr as E;
    Ok(match code {
        3 => E::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        5 => E::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        6 => E::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        7 => E::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        8 => E::RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
        14 => E::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        15 => E::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        16 => E::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        19 => E::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        20 => E::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        27 => E::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        56 => E::RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        89 => E::RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
        other => {
            return Err(ClusterError::Mock(format!(
                "error code {other} cannot be injected (supported: 3, 5, 6, 7, 8, 14, 15, 16, 19, 20, 27, 56, 89)"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_creates_topics_and_stops() {
        let cluster = EmbeddedCluster::start(3).unwrap();
        assert_eq!(cluster.bootstrap_servers().split(',').count(), 3);
        cluster.create_topic("t", 6).unwrap();
        cluster.apply(ClusterCommand::BrokerDown(2)).unwrap();
        cluster.apply(ClusterCommand::BrokerUp(2)).unwrap();
        drop(cluster);
    }
}
