//! Small librdkafka producer and consumer routines shared by the demo's self-test, the
//! benchmarks and the labs: real clients, so what they report is what an application sees.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Why a client routine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// librdkafka refused the configuration or an operation.
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Not every message arrived in time.
    #[error("timed out after {got} of {want} messages")]
    Timeout {
        /// Messages received.
        got: usize,
        /// Messages expected.
        want: usize,
    },
}

/// What a produce run measured.
#[derive(Debug, Clone)]
pub struct ProduceReport {
    /// Acknowledged messages.
    pub acked: usize,
    /// Wall time from the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// Time from send to acknowledgement of each message.
    pub latencies: Vec<Duration>,
}

/// Produces `n` messages of `size` bytes with keys `key-{i % keys}` and waits for every
/// acknowledgement. The value starts with the message number in decimal, then padding.
///
/// # Errors
/// The first message that could not be delivered.
pub async fn produce(
    config: &ClientConfig,
    topic: &str,
    n: usize,
    size: usize,
    keys: usize,
) -> Result<ProduceReport, ClientError> {
    let producer: FutureProducer = config.create()?;
    let start = Instant::now();
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{}", i % keys.max(1));
        let mut value = i.to_string().into_bytes();
        value.push(b' ');
        value.resize(size.max(value.len()), b'x');
        let mut record = FutureRecord::to(topic).key(&key).payload(&value);
        let sent = Instant::now();
        loop {
            match producer.send_result(record) {
                Ok(ack) => {
                    acks.push((sent, ack));
                    break;
                }
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    let mut latencies = Vec::with_capacity(n);
    for (sent, ack) in acks {
        match ack.await {
            Ok(Ok(_)) => latencies.push(sent.elapsed()),
            Ok(Err((e, _))) => return Err(e.into()),
            Err(_) => return Err(rdkafka::error::KafkaError::Canceled.into()),
        }
    }
    Ok(ProduceReport {
        acked: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    })
}

/// Consumes `n` messages in consumer group `group` from the beginning; returns the message
/// numbers per partition in arrival order.
///
/// # Errors
/// [`ClientError::Timeout`] if fewer than `n` arrive within `timeout`.
pub async fn consume(
    config: &ClientConfig,
    topic: &str,
    group: &str,
    n: usize,
    timeout: Duration,
) -> Result<BTreeMap<i32, Vec<u64>>, ClientError> {
    let consumer: StreamConsumer = config
        .clone()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + timeout;
    let mut got: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let mut count = 0;
    while count < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(m) => m?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    got: count,
                    want: n,
                })
            }
        };
        let number = msg
            .payload()
            .and_then(|p| p.split(|b| *b == b' ').next())
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse().ok())
            .unwrap_or(u64::MAX);
        got.entry(msg.partition()).or_default().push(number);
        count += 1;
    }
    Ok(got)
}
