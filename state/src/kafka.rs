//! The state topic on the upstream cluster: created or checked at start, read from the start
//! until caught up, then tailed; changes are produced to it and count as done once this
//! instance has read them back.
//!
//! One partition gives every instance the same order of changes, so "the later offset wins"
//! is one outcome everywhere. A change made here is produced with `acks=all` and idempotence,
//! then [`KafkaState::commit`] waits until the tail has applied its offset: the change is in
//! force here when the admin request is answered, and every record (ours and other
//! instances') is put in force by the same thread in offset order.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use kgate_auth::{CredentialSink, CredentialStore, SharedCredentials, StoreError};
use kgate_policies::{Authorizer, Policy, PolicyError, PolicyStore};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::key::StateKey;
use crate::model::{credential_entries, diff, policy_entries, State};
use crate::record::{Entry, Record};

/// The state topic's name unless configured.
pub const DEFAULT_TOPIC: &str = "__kgate_state";

/// The record header that carries the MAC.
pub const MAC_HEADER: &str = "kgate-mac";

/// Where the state lives and how long to wait for it.
#[derive(Clone, Debug)]
pub struct StateOptions {
    /// The upstream cluster's bootstrap servers, comma-separated.
    pub bootstrap: String,
    /// The state topic.
    pub topic: String,
    /// The shared signing key.
    pub key: StateKey,
    /// Longest wait to reach the cluster and to read the topic to its end at start.
    pub start_timeout: Duration,
    /// Longest wait for a change to be written and read back.
    pub commit_timeout: Duration,
}

impl StateOptions {
    /// Options with the default topic and timeouts (30 s to start, 10 s per change).
    pub fn new(bootstrap: impl Into<String>, key: StateKey) -> Self {
        StateOptions {
            bootstrap: bootstrap.into(),
            topic: DEFAULT_TOPIC.into(),
            key,
            start_timeout: Duration::from_secs(30),
            commit_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the state could not be opened or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// librdkafka refused the client settings.
    #[error("cannot create a Kafka client for {bootstrap}: {source}")]
    Client {
        /// The cluster.
        bootstrap: String,
        /// librdkafka's reason.
        source: KafkaError,
    },
    /// The cluster did not answer.
    #[error("cannot reach the upstream cluster at {bootstrap} within {waited:?} to read the state topic {topic}: {reason}; check --upstream and that the cluster is up")]
    Unreachable {
        /// The cluster.
        bootstrap: String,
        /// The topic.
        topic: String,
        /// How long kgate waited.
        waited: Duration,
        /// librdkafka's last error.
        reason: String,
    },
    /// The topic is missing and could not be created.
    #[error("the state topic {topic} does not exist and kgate cannot create it ({reason}): create it with one partition and cleanup.policy=compact, e.g. `kafka-topics.sh --create --topic {topic} --partitions 1 --config cleanup.policy=compact`")]
    Create {
        /// The topic.
        topic: String,
        /// The cluster's answer.
        reason: String,
    },
    /// The topic has more than one partition: instances would disagree on the order.
    #[error("the state topic {topic} has {partitions} partitions; it needs exactly 1 so that every gateway applies changes in one order: delete it and let kgate create it, or name another with state_topic")]
    Partitions {
        /// The topic.
        topic: String,
        /// How many it has.
        partitions: usize,
    },
    /// The topic would lose state: records must be kept until replaced.
    #[error("the state topic {topic} has cleanup.policy={policy}; it must be `compact` (with `delete`, bindings and users vanish after retention.ms): `kafka-configs.sh --alter --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact`")]
    CleanupPolicy {
        /// The topic.
        topic: String,
        /// What it has.
        policy: String,
    },
    /// The topic could not be read to its end in time.
    #[error("could not read the state topic {topic} to its end within {waited:?} (read up to offset {offset}): {reason}")]
    CatchUp {
        /// The topic.
        topic: String,
        /// How long kgate waited.
        waited: Duration,
        /// The next offset it would have read.
        offset: i64,
        /// The last error seen.
        reason: String,
    },
    /// A change could not be written.
    #[error("cannot write to the state topic {topic}: {reason}")]
    Write {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// A change was written but not read back in time.
    #[error("a change was written to the state topic {topic} at offset {offset} but not read back within {waited:?}")]
    ReadBack {
        /// The topic.
        topic: String,
        /// The change's last offset.
        offset: i64,
        /// How long kgate waited.
        waited: Duration,
    },
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct StateMetrics {
    /// The next offset to read (one past the last applied).
    pub next_offset: AtomicI64,
    /// The topic's end as last asked.
    pub high_watermark: AtomicI64,
    /// Records ignored because their MAC did not verify (or was missing).
    pub mac_failures: AtomicU64,
    /// Records ignored because kgate could not read them.
    pub invalid_records: AtomicU64,
    /// Entries in force (bindings, memberships, credentials, settings).
    pub entries: AtomicU64,
    /// Whether the topic has been read to its end once.
    pub caught_up: AtomicBool,
    /// How long the first read to the end took (from connecting), in milliseconds.
    pub caught_up_ms: AtomicU64,
    /// Records were deleted from the topic before this instance read them.
    pub records_lost: AtomicBool,
}

impl StateMetrics {
    /// Records not yet applied.
    pub fn lag(&self) -> i64 {
        (self.high_watermark.load(Ordering::Relaxed) - self.next_offset.load(Ordering::Relaxed))
            .max(0)
    }

    /// The Prometheus lines.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let lines = [
            (
                "kgate_state_ready",
                "gauge",
                "1 once the state topic has been read to its end",
                i64::from(self.caught_up.load(Ordering::Relaxed)),
            ),
            (
                "kgate_state_last_offset_applied",
                "gauge",
                "offset of the last state record applied",
                self.next_offset.load(Ordering::Relaxed) - 1,
            ),
            (
                "kgate_state_lag_records",
                "gauge",
                "state records written but not yet applied here",
                self.lag(),
            ),
            (
                "kgate_state_entries",
                "gauge",
                "bindings, memberships, settings and credentials in force",
                self.entries.load(Ordering::Relaxed) as i64,
            ),
            (
                "kgate_state_mac_failures_total",
                "counter",
                "state records ignored because their MAC did not verify",
                self.mac_failures.load(Ordering::Relaxed) as i64,
            ),
            (
                "kgate_state_invalid_records_total",
                "counter",
                "state records ignored because they could not be read",
                self.invalid_records.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

/// What the tail puts changes in force into.
struct Targets {
    authorizer: Option<Arc<Authorizer>>,
    credentials: Option<SharedCredentials>,
}

/// What the tail has read.
struct Progress {
    state: State,
    next_offset: i64,
    caught_up: bool,
    last_error: Option<String>,
    /// Records were deleted before they were read: the state is incomplete for good.
    broken: bool,
}

struct Inner {
    topic: String,
    key: StateKey,
    bootstrap: String,
    commit_timeout: Duration,
    producer: ThreadedProducer<Delivery>,
    progress: Mutex<Progress>,
    changed: Condvar,
    targets: OnceLock<Targets>,
    metrics: Arc<StateMetrics>,
    stop: AtomicBool,
    /// When a bad record was last logged (one line a second at most).
    bad_logged: Mutex<Option<Instant>>,
}

/// The state topic, read and tailed by a thread of its own. Cheap to clone.
#[derive(Clone)]
pub struct KafkaState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaState")
            .field("topic", &self.inner.topic)
            .field("bootstrap", &self.inner.bootstrap)
            .finish_non_exhaustive()
    }
}

/// The producer's delivery reports go back to the committing thread.
struct Delivery;

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = Box<mpsc::Sender<Result<i64, String>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let _ = reply.send(match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.to_string()),
        });
    }
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "kgate-state")
        .set("log_level", "3")
        .set("socket.connection.setup.timeout.ms", "5000");
    c
}

impl KafkaState {
    /// Connects, creates or checks the topic, and reads it to its end. Nothing is served from
    /// a half-read state: this returns only once caught up, or fails.
    ///
    /// # Errors
    /// [`StateError`]: unreachable cluster, a topic that cannot be used, a read that does not
    /// finish in `start_timeout`.
    pub fn open(options: StateOptions) -> Result<Self, StateError> {
        let started = Instant::now();
        let client_err = |source| StateError::Client {
            bootstrap: options.bootstrap.clone(),
            source,
        };
        let consumer: BaseConsumer = base_config(&options.bootstrap)
            // librdkafka wants a group for assign(); it is never joined nor committed to.
            .set("group.id", "kgate-state-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            // Records gone before they were read (retention on the topic, or a cluster that
            // keeps little) must stop the instance, never be skipped in silence.
            .set("auto.offset.reset", "error")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", "50")
            .set("fetch.error.backoff.ms", "100")
            .set("queued.max.messages.kbytes", "16384")
            .create()
            .map_err(client_err)?;
        let policy_check = ensure_topic(&consumer, &options)?;
        let producer: ThreadedProducer<Delivery> = base_config(&options.bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .set(
                "message.timeout.ms",
                options.commit_timeout.as_millis().to_string(),
            )
            .create_with_context(Delivery)
            .map_err(client_err)?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&options.topic, 0, Offset::Beginning)
            .map_err(client_err)?;
        consumer.assign(&assignment).map_err(client_err)?;

        let state = KafkaState {
            inner: Arc::new(Inner {
                topic: options.topic.clone(),
                key: options.key.clone(),
                bootstrap: options.bootstrap.clone(),
                commit_timeout: options.commit_timeout,
                producer,
                progress: Mutex::new(Progress {
                    state: State::default(),
                    next_offset: 0,
                    caught_up: false,
                    last_error: None,
                    broken: false,
                }),
                changed: Condvar::new(),
                targets: OnceLock::new(),
                metrics: Arc::new(StateMetrics::default()),
                stop: AtomicBool::new(false),
                bad_logged: Mutex::new(None),
            }),
        };
        let inner = state.inner.clone();
        std::thread::Builder::new()
            .name("kgate-state".into())
            .spawn(move || tail(&inner, &consumer))
            .map_err(|e| StateError::Write {
                topic: options.topic.clone(),
                reason: format!("cannot start the state thread: {e}"),
            })?;
        let deadline = started + options.start_timeout;
        let progress = state.lock();
        let (progress, _) = state
            .inner
            .changed
            .wait_timeout_while(
                progress,
                deadline.saturating_duration_since(Instant::now()),
                |p| !p.caught_up,
            )
            .unwrap_or_else(PoisonError::into_inner);
        if !progress.caught_up || progress.broken {
            let err = StateError::CatchUp {
                topic: options.topic.clone(),
                waited: started.elapsed(),
                offset: progress.next_offset,
                reason: progress
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no error, the cluster is slow".into()),
            };
            drop(progress);
            state.stop();
            return Err(err);
        }
        let caught_up_after = started.elapsed();
        drop(progress);
        if let Some(check) = policy_check {
            match check.join().ok().flatten() {
                Some(p) if p.trim() == "compact" => {}
                Some(p) => {
                    state.stop();
                    return Err(StateError::CleanupPolicy {
                        topic: options.topic.clone(),
                        policy: p,
                    });
                }
                None => {
                    warn!(topic = %options.topic, "the cluster does not say the state topic's cleanup.policy; make sure it is `compact`")
                }
            }
        }
        let progress = state.lock();
        state
            .inner
            .metrics
            .caught_up_ms
            .store(caught_up_after.as_millis() as u64, Ordering::Relaxed);
        info!(
            topic = %options.topic,
            entries = progress.state.len(),
            offset = progress.next_offset,
            took_ms = started.elapsed().as_millis() as u64,
            "read the shared state"
        );
        drop(progress);
        Ok(state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.inner
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The policy read so far.
    pub fn policy(&self) -> Policy {
        self.lock().state.policy()
    }

    /// The credentials read so far.
    pub fn credentials(&self) -> CredentialStore {
        self.lock().state.credentials()
    }

    /// Entries in force.
    pub fn entries(&self) -> usize {
        self.lock().state.len()
    }

    /// The state topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> Arc<StateMetrics> {
        self.inner.metrics.clone()
    }

    /// From now on, every change read is put in force in `authorizer` and `credentials`;
    /// what has been read so far is put in force at once. Call once.
    pub fn attach(
        &self,
        authorizer: Option<Arc<Authorizer>>,
        credentials: Option<SharedCredentials>,
    ) {
        let progress = self.lock();
        let targets = Targets {
            authorizer,
            credentials,
        };
        install(&targets, &progress.state, true, true);
        let _ = self.inner.targets.set(targets);
    }

    /// Writes the records that turn `before` into `after` and waits until they are in force
    /// here.
    ///
    /// # Errors
    /// [`StateError::Write`] or [`StateError::ReadBack`].
    pub fn commit_entries(&self, before: &[Entry], after: &[Entry]) -> Result<usize, StateError> {
        let records = diff(before, after);
        self.commit(&records)?;
        Ok(records.len())
    }

    /// Writes `records` (signed) and waits until the tail has applied them.
    ///
    /// # Errors
    /// [`StateError::Write`] or [`StateError::ReadBack`].
    pub fn commit(&self, records: &[Record]) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        // Admin requests arrive on the gateway's async workers: waiting for the cluster there
        // must not stall the other connections of that worker.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                return tokio::task::block_in_place(|| self.commit_blocking(records));
            }
        }
        self.commit_blocking(records)
    }

    fn commit_blocking(&self, records: &[Record]) -> Result<(), StateError> {
        let topic = &self.inner.topic;
        let write = |reason: String| StateError::Write {
            topic: topic.clone(),
            reason,
        };
        let (tx, rx) = mpsc::channel();
        for r in records {
            let mac = self.inner.key.sign(topic, &r.key, r.value.as_deref());
            let headers = OwnedHeaders::new().insert(Header {
                key: MAC_HEADER,
                value: Some(&mac),
            });
            let mut record =
                BaseRecord::<[u8], [u8], _>::with_opaque_to(topic, Box::new(tx.clone()))
                    .key(&r.key)
                    .partition(0)
                    .headers(headers);
            if let Some(v) = &r.value {
                record = record.payload(v);
            }
            self.inner
                .producer
                .send(record)
                .map_err(|(e, _)| write(e.to_string()))?;
        }
        drop(tx);
        let deadline = Instant::now() + self.inner.commit_timeout;
        let mut last = -1;
        for _ in records {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(offset)) => last = last.max(offset),
                Ok(Err(reason)) => return Err(write(reason)),
                Err(_) => return Err(write("no acknowledgement from the cluster in time".into())),
            }
        }
        let progress = self.lock();
        let (progress, _) = self
            .inner
            .changed
            .wait_timeout_while(
                progress,
                deadline.saturating_duration_since(Instant::now()),
                |p| p.next_offset <= last,
            )
            .unwrap_or_else(PoisonError::into_inner);
        if progress.next_offset <= last {
            return Err(StateError::ReadBack {
                topic: topic.clone(),
                offset: last,
                waited: self.inner.commit_timeout,
            });
        }
        Ok(())
    }

    /// Stops the tail thread (it ends within a fraction of a second).
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Release);
    }
}

impl PolicyStore for KafkaState {
    fn commit(&self, before: &Policy, after: &Policy) -> Result<(), PolicyError> {
        self.commit_entries(&policy_entries(before), &policy_entries(after))
            .map(drop)
            .map_err(|e| PolicyError::Store(Box::new(e)))
    }
}

impl CredentialSink for KafkaState {
    fn commit(&self, before: &CredentialStore, after: &CredentialStore) -> Result<(), StoreError> {
        self.commit_entries(&credential_entries(before), &credential_entries(after))
            .map(drop)
            .map_err(|e| StoreError::Shared(Box::new(e)))
    }
}

/// The cleanup.policy check of an existing topic, running beside the catch-up.
type PolicyCheck = std::thread::JoinHandle<Option<String>>;

/// Makes sure the topic exists with one partition; creates it with compaction, or starts the
/// check of an existing one's cleanup.policy.
fn ensure_topic(
    consumer: &BaseConsumer,
    options: &StateOptions,
) -> Result<Option<PolicyCheck>, StateError> {
    let topic = &options.topic;
    let started = Instant::now();
    let metadata = loop {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(m) => break m,
            Err(e) if started.elapsed() >= options.start_timeout.min(Duration::from_secs(10)) => {
                return Err(StateError::Unreachable {
                    bootstrap: options.bootstrap.clone(),
                    topic: topic.clone(),
                    waited: started.elapsed(),
                    reason: e.to_string(),
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let brokers = metadata.brokers().len();
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    match found {
        None => {
            let admin: AdminClient<DefaultClientContext> = base_config(&options.bootstrap)
                .create()
                .map_err(|source| StateError::Client {
                    bootstrap: options.bootstrap.clone(),
                    source,
                })?;
            let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
            let replication = i32::try_from(brokers.clamp(1, 3)).unwrap_or(1);
            let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication))
                .set("cleanup.policy", "compact");
            let created = block_on(admin.create_topics([&new], &opts));
            match created {
                Ok(results) => {
                    for r in results {
                        if let Err((_, code)) = r {
                            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                                return Err(StateError::Create {
                                    topic: topic.clone(),
                                    reason: code.to_string(),
                                });
                            }
                        }
                    }
                    info!(%topic, replication, "created the shared state topic (1 partition, cleanup.policy=compact)");
                }
                Err(e) => {
                    return Err(StateError::Create {
                        topic: topic.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Some(t) if t.partitions().len() != 1 => {
            return Err(StateError::Partitions {
                topic: topic.clone(),
                partitions: t.partitions().len(),
            })
        }
        Some(_) => {
            // Asked beside the catch-up: a cluster without DescribeConfigs (the embedded
            // one) makes librdkafka wait for its timeout, which must not add to the start.
            let bootstrap = options.bootstrap.clone();
            let topic = topic.clone();
            let check = std::thread::Builder::new()
                .name("kgate-state-check".into())
                .spawn(move || cleanup_policy(&bootstrap, &topic))
                .ok();
            return Ok(check);
        }
    }
    Ok(None)
}

/// The topic's cleanup.policy, if the cluster says (within 3 s).
fn cleanup_policy(bootstrap: &str, topic: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap).create().ok()?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(3)));
    let described = block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts));
    described
        .ok()?
        .into_iter()
        .next()?
        .ok()?
        .get("cleanup.policy")?
        .value
        .clone()
}

/// The tail: applies records in offset order until stopped.
fn tail(inner: &Inner, consumer: &BaseConsumer) {
    let mut batch: Vec<(i64, Vec<u8>, Option<Entry>)> = Vec::new();
    let mut last_watermark = Instant::now() - Duration::from_secs(10);
    while !inner.stop.load(Ordering::Acquire) {
        let mut reached_end = false;
        let mut wait = Duration::from_millis(100);
        // Drain what is ready, then apply it as one batch (one rebuild of the policy).
        loop {
            match consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    wait = Duration::ZERO;
                    let key = m.key().unwrap_or_default().to_vec();
                    let value = m.payload();
                    let mac = m
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == MAC_HEADER).and_then(|h| h.value));
                    let signed =
                        mac.is_some_and(|mac| inner.key.verify(&inner.topic, &key, value, mac));
                    if !signed {
                        inner.metrics.mac_failures.fetch_add(1, Ordering::Relaxed);
                        log_bad(
                            inner,
                            m.offset(),
                            "its MAC does not verify (written without the shared key?): ignored",
                        );
                        batch.push((m.offset(), Vec::new(), None));
                        continue;
                    }
                    match value.map(|v| Entry::decode(&key, v)).transpose() {
                        Ok(entry) => batch.push((m.offset(), key, entry)),
                        Err(e) => {
                            inner
                                .metrics
                                .invalid_records
                                .fetch_add(1, Ordering::Relaxed);
                            log_bad(inner, m.offset(), &e.to_string());
                            batch.push((m.offset(), Vec::new(), None));
                        }
                    }
                    if batch.len() >= 10_000 {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    reached_end = true;
                    break;
                }
                Some(Err(e)) => {
                    let lost = matches!(
                        e.rdkafka_error_code(),
                        Some(
                            rdkafka::types::RDKafkaErrorCode::AutoOffsetReset
                                | rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange
                        )
                    );
                    if lost && !inner.metrics.records_lost.swap(true, Ordering::Relaxed) {
                        tracing::error!(
                            topic = %inner.topic,
                            error = %e,
                            "state records were deleted before this instance read them (is the \
                             topic's cleanup.policy `compact`, without retention?): the state here \
                             is incomplete, /readyz reports it; fix the topic, then restart"
                        );
                    }
                    let mut progress = inner.lock_progress();
                    progress.last_error = Some(e.to_string());
                    if lost {
                        progress.broken = true;
                    }
                    drop(progress);
                    inner.changed.notify_all();
                    break;
                }
            }
        }
        if !batch.is_empty() || (reached_end && !inner.metrics.caught_up.load(Ordering::Relaxed)) {
            apply(inner, std::mem::take(&mut batch), reached_end);
        }
        if last_watermark.elapsed() >= Duration::from_secs(1) {
            last_watermark = Instant::now();
            if let Ok((_, high)) =
                consumer.fetch_watermarks(&inner.topic, 0, Duration::from_millis(500))
            {
                inner.metrics.high_watermark.store(high, Ordering::Relaxed);
            }
        }
    }
}

impl Inner {
    fn lock_progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn log_bad(inner: &Inner, offset: i64, why: &str) {
    let mut last = inner
        .bad_logged
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        *last = Some(Instant::now());
        warn!(
            topic = %inner.topic,
            offset,
            mac_failures = inner.metrics.mac_failures.load(Ordering::Relaxed),
            invalid = inner.metrics.invalid_records.load(Ordering::Relaxed),
            "state record ignored: {why}"
        );
    }
}

fn apply(inner: &Inner, batch: Vec<(i64, Vec<u8>, Option<Entry>)>, reached_end: bool) {
    let started = Instant::now();
    let records = batch.len();
    let mut progress = inner.lock_progress();
    let (mut policy, mut credentials) = (false, false);
    for (offset, key, entry) in batch {
        progress.next_offset = progress.next_offset.max(offset + 1);
        if key.is_empty() {
            continue; // ignored record: its offset still counts as read
        }
        if progress.state.apply(key, entry) {
            policy = true;
        } else {
            credentials = true;
        }
    }
    if reached_end && !progress.caught_up {
        progress.caught_up = true;
        inner.metrics.caught_up.store(true, Ordering::Relaxed);
    }
    if let Some(targets) = inner.targets.get() {
        install(targets, &progress.state, policy, credentials);
    }
    inner
        .metrics
        .next_offset
        .store(progress.next_offset, Ordering::Relaxed);
    inner
        .metrics
        .high_watermark
        .fetch_max(progress.next_offset, Ordering::Relaxed);
    inner
        .metrics
        .entries
        .store(progress.state.len() as u64, Ordering::Relaxed);
    progress.last_error = None;
    tracing::debug!(
        records,
        next_offset = progress.next_offset,
        policy,
        credentials,
        took_ms = started.elapsed().as_millis() as u64,
        "state records applied"
    );
    drop(progress);
    inner.changed.notify_all();
}

fn install(targets: &Targets, state: &State, policy: bool, credentials: bool) {
    if policy {
        if let Some(a) = &targets.authorizer {
            a.install_from_store(state.policy());
        }
    }
    if credentials {
        if let Some(c) = &targets.credentials {
            c.install_from_sink(state.credentials());
        }
    }
}

/// Runs a future to completion on this thread (librdkafka's background thread completes
/// admin futures, so no async runtime is needed, and this works inside one too).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}
