//! Five client implementations through kgate (TLS, SCRAM, a policy) in front of two upstreams:
//! the embedded cluster (librdkafka's mock cluster, 3 brokers) and tansu (a Kafka-compatible
//! broker nobody here wrote, one broker, memory storage).
//!
//! Clients: librdkafka 2.12 (the rdkafka crate), kafka-python 3 and aiokafka (Python, each
//! with its own protocol code), kafkajs 2.2.4 (Node) and kcat (Debian's, librdkafka 2.0, which
//! cannot even parse tansu's ApiVersions answer directly: kgate answers ApiVersions itself).
//! `./test.sh` installs all of them and tansu; a missing one fails its test.
//!
//! For each client and upstream: N keyed records are produced to `allowed`, then consumed in a
//! consumer group (each exactly once, in order per partition, each key on one partition); and
//! the client is denied exactly where Kafka denies it, with the error the client reports:
//! - producing to `described` (Describe only, no Write): TOPIC_AUTHORIZATION_FAILED (29) on the
//!   Produce request itself;
//! - reading `hidden` (no ACL at all) in an allowed group: TOPIC_AUTHORIZATION_FAILED (29);
//! - joining a group without Read on it: GROUP_AUTHORIZATION_FAILED (30).

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::tansu::Tansu;
use kgate_labs::EmbeddedCluster;
use kgate_proxy::{Gateway, GatewayConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// alice may write and read `allowed` in groups named `allowed-*`, and only describe
/// `described`; `hidden` and every other group she may not even describe.
const POLICY: &str = r#"
version = 1
allow_everyone_if_no_acl_found = false
super_users = []

[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Write"
resource_type = "Topic"
name = "allowed"

[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Read"
resource_type = "Topic"
name = "allowed"

[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Read"
resource_type = "Group"
pattern_type = "Prefixed"
name = "allowed-"

[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Describe"
resource_type = "Topic"
name = "described"

[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Write"
resource_type = "TransactionalId"
pattern_type = "Prefixed"
name = "allowed-"
"#;

const ALLOWED: &str = "allowed";
const DESCRIBED: &str = "described";
const HIDDEN: &str = "hidden";
const TOPICS: [(&str, i32); 3] = [(ALLOWED, 3), (DESCRIBED, 3), (HIDDEN, 3)];
/// Records per produce; values are 0..N, keys `key-{value % KEYS}`.
const N: usize = 60;
const KEYS: u64 = 13;
/// Longest any one client step (one script or kcat run) may take.
const STEP_LIMIT: Duration = Duration::from_secs(60);
/// How long a consumer in a denied case may take to report its error.
const DENIAL_LIMIT: Duration = Duration::from_secs(25);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upstream {
    Embedded,
    Tansu,
}

enum Broker {
    Embedded(EmbeddedCluster),
    Tansu(Tansu),
}

impl Broker {
    fn bootstrap(&self) -> Vec<String> {
        match self {
            Broker::Embedded(c) => c
                .bootstrap_servers()
                .split(',')
                .map(str::to_owned)
                .collect(),
            Broker::Tansu(t) => vec![t.bootstrap()],
        }
    }
}

/// An upstream with the matrix's topics, and kgate in front of it with TLS, SCRAM and
/// [`POLICY`].
struct Env {
    upstream: Upstream,
    gateway: Gateway,
    pki: common::Pki,
    broker: Broker,
}

impl Env {
    async fn start(upstream: Upstream) -> Self {
        init_tracing();
        let broker = match upstream {
            Upstream::Embedded => {
                let cluster = EmbeddedCluster::start(3).expect("embedded cluster");
                for (name, partitions) in TOPICS {
                    cluster.create_topic(name, partitions).expect("topic");
                }
                Broker::Embedded(cluster)
            }
            Upstream::Tansu => Broker::Tansu(
                tokio::task::spawn_blocking(|| Tansu::start(&TOPICS))
                    .await
                    .expect("join"),
            ),
        };
        let pki = common::Pki::new();
        let listen = "127.0.0.1:0".parse().expect("addr");
        let mut config = GatewayConfig::new(listen, broker.bootstrap());
        config.refresh_interval = Duration::from_secs(3600);
        config.tls = Some(pki.tls(false));
        config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
        config.authz = Some(common::authz(pki.dir.path(), POLICY));
        let gateway = Gateway::start(config).await.expect("gateway starts");
        Self {
            upstream,
            gateway,
            pki,
            broker,
        }
    }

    fn bootstrap(&self) -> String {
        self.gateway.bootstrap_servers()
    }

    /// The last lines of the audit log and of tansu's log, for failure messages.
    fn evidence(&self) -> String {
        let audit =
            std::fs::read_to_string(self.pki.dir.path().join("audit.jsonl")).unwrap_or_default();
        let tail = |text: &str, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        let mut out = format!("--- audit (last 40 lines)\n{}", tail(&audit, 40));
        if let Broker::Tansu(t) = &self.broker {
            out.push_str(&format!(
                "\n--- tansu log (last 15 lines)\n{}",
                tail(&t.log_text(), 15)
            ));
        }
        out
    }

    async fn shutdown(self) {
        self.gateway.shutdown().await;
    }
}

/// kgate's warnings and each connection close with its reason, in the captured test output
/// (RUST_LOG overrides).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("kgate_proxy=warn,kgate::connection=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// What a client reported when a step failed: `what` is the client's own name for the error
/// (librdkafka's error code, the Python exception class, kafkajs's error type, kcat's stderr),
/// `code` the Kafka error code when the client gives one. Two clients lose an authorization
/// error on the way to the caller, as they would in front of Kafka itself, and the error they
/// logged counts: kafka-python 3.0.12 for a subscribed topic it may not describe (see
/// tests/python/client_kafka_python.py), kafkajs 2.2.4 for FindCoordinator's
/// GROUP_AUTHORIZATION_FAILED (see tests/node/client_kafkajs.js).
#[derive(Debug)]
struct Failure {
    what: String,
    code: Option<i64>,
    detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {:?}): {}", self.what, self.code, self.detail)
    }
}

/// Values read, per partition, in the order they arrived.
type Consumed = BTreeMap<i32, Vec<u64>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Librdkafka,
    KafkaPython,
    Aiokafka,
    Kafkajs,
    Kcat,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Librdkafka => "librdkafka",
            Client::KafkaPython => "kafka-python",
            Client::Aiokafka => "aiokafka",
            Client::Kafkajs => "kafkajs",
            Client::Kcat => "kcat",
        }
    }

    /// Each client authenticates with one of the two SCRAM mechanisms.
    fn mechanism(self) -> &'static str {
        match self {
            Client::Librdkafka | Client::Aiokafka => "SCRAM-SHA-256",
            Client::KafkaPython | Client::Kafkajs | Client::Kcat => "SCRAM-SHA-512",
        }
    }

    /// How the client names Kafka's error `code` (29 or 30).
    fn error_name(self, code: i16) -> &'static str {
        match (self, code) {
            (Client::Librdkafka, 29) => "TopicAuthorizationFailed",
            (Client::Librdkafka, 30) => "GroupAuthorizationFailed",
            (Client::KafkaPython | Client::Aiokafka, 29) => "TopicAuthorizationFailedError",
            (Client::KafkaPython | Client::Aiokafka, 30) => "GroupAuthorizationFailedError",
            (Client::Kafkajs, 29) => "TOPIC_AUTHORIZATION_FAILED",
            (Client::Kafkajs, 30) => "GROUP_AUTHORIZATION_FAILED",
            (Client::Kcat, 29) => "Topic authorization failed",
            (Client::Kcat, 30) => "Group authorization failed",
            _ => unreachable!("no name for {code}"),
        }
    }

    async fn produce(self, env: &Env, topic: &str, n: usize) -> Result<(), Failure> {
        match self {
            Client::Librdkafka => librdkafka_produce(env, topic, n).await,
            Client::KafkaPython | Client::Aiokafka | Client::Kafkajs => {
                let step = if self == Client::Aiokafka && env.upstream == Upstream::Embedded {
                    // aiokafka's idempotent producer fails against tansu itself: with no
                    // gateway in between, tansu 0.6.0 answers its InitProducerId with
                    // UNKNOWN_SERVER_ERROR (-1). So against tansu aiokafka produces without
                    // idempotence; the idempotent path (InitProducerId, sequence numbers) is
                    // checked against the embedded cluster.
                    "produce-idempotent"
                } else {
                    "produce"
                };
                script(self, env, step, topic, "-", n).await.map(|_| ())
            }
            Client::Kcat => kcat_produce(env, topic, n).await,
        }
    }

    async fn consume(
        self,
        env: &Env,
        topic: &str,
        group: &str,
        n: usize,
        limit: Duration,
    ) -> Result<Consumed, Failure> {
        match self {
            Client::Librdkafka => librdkafka_consume(env, topic, group, n, limit).await,
            Client::KafkaPython | Client::Aiokafka | Client::Kafkajs => {
                let step = if self == Client::KafkaPython && env.upstream == Upstream::Tansu {
                    // tansu 0.6.0 answers a group's second SyncGroup with the first assignment
                    // (see tests/python/client_kafka_python.py): against it kafka-python learns
                    // the topic's partitions before joining, so that its first assignment is
                    // the right one. Against the embedded cluster it joins as it does by
                    // default (whether it then rejoins depends on timing).
                    "consume-metadata-first"
                } else {
                    "consume"
                };
                let r = script(self, env, step, topic, group, n).await?;
                let mut got = Consumed::new();
                for (p, values) in r["partitions"].as_object().expect("partitions") {
                    got.insert(
                        p.parse().expect("partition"),
                        values
                            .as_array()
                            .expect("values")
                            .iter()
                            .map(|v| v.as_u64().expect("value"))
                            .collect(),
                    );
                }
                Ok(got)
            }
            Client::Kcat => kcat_consume(env, topic, group, n, limit).await,
        }
    }
}

/// The client-matrix scenario for one client through kgate in front of one upstream.
async fn matrix(client: Client, upstream: Upstream) {
    let env = Env::start(upstream).await;
    let name = client.name();
    let context = |step: &str| format!("{name} via kgate in front of {upstream:?}: {step}");

    if let Err(f) = client.produce(&env, ALLOWED, N).await {
        panic!(
            "{}: {f}\n{}",
            context("producing to an allowed topic"),
            env.evidence()
        );
    }
    let group = format!("allowed-{name}");
    match client.consume(&env, ALLOWED, &group, N, STEP_LIMIT).await {
        Ok(got) => {
            // Shown only if the next check fails.
            eprintln!("{}", env.evidence());
            assert_each_once(&got, N, &context("consuming in an allowed group"))
        }
        Err(f) => panic!(
            "{}: {f}\n{}",
            context("consuming in an allowed group"),
            env.evidence()
        ),
    }

    let denied = client.produce(&env, DESCRIBED, 3).await;
    assert_denied(
        client,
        29,
        denied,
        &context("producing to a topic it may describe but not write"),
        &env,
    );
    let denied = client
        .consume(&env, HIDDEN, &format!("allowed-{name}-2"), 1, DENIAL_LIMIT)
        .await;
    assert_denied(
        client,
        29,
        denied,
        &context("reading a topic without any ACL"),
        &env,
    );
    let denied = client
        .consume(&env, ALLOWED, &format!("denied-{name}"), 1, DENIAL_LIMIT)
        .await;
    assert_denied(
        client,
        30,
        denied,
        &context("joining a group without Read on it"),
        &env,
    );
    env.shutdown().await;
}

/// Each value 0..n exactly once; per partition in production order; each key on one partition.
fn assert_each_once(got: &Consumed, n: usize, context: &str) {
    let mut all: Vec<u64> = got.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..n as u64).collect::<Vec<_>>(),
        "{context}: every record exactly once; got {got:?}"
    );
    let mut key_partition = BTreeMap::new();
    for (partition, values) in got {
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "{context}: order within partition {partition}: {values:?}"
        );
        for v in values {
            let p = key_partition.entry(v % KEYS).or_insert(*partition);
            assert_eq!(
                p,
                partition,
                "{context}: key-{} on two partitions",
                v % KEYS
            );
        }
    }
}

/// The step failed, with the client's own name for Kafka's error `code`.
fn assert_denied<T: fmt::Debug>(
    client: Client,
    code: i16,
    result: Result<T, Failure>,
    context: &str,
    env: &Env,
) {
    let expected = client.error_name(code);
    match result {
        Ok(v) => panic!(
            "{context}: expected {expected} ({code}), the client succeeded: {v:?}\n{}",
            env.evidence()
        ),
        Err(f) => {
            assert!(
                f.what.contains(expected),
                "{context}: expected {expected} ({code}), got {f}\n{}",
                env.evidence()
            );
            if let Some(c) = f.code {
                assert_eq!(c, i64::from(code), "{context}: {f}");
            }
        }
    }
}

// ---- librdkafka (the rdkafka crate) ----

fn librdkafka_config(env: &Env) -> ClientConfig {
    common::sasl_ssl_client(
        &env.bootstrap(),
        &env.pki,
        Client::Librdkafka.mechanism(),
        "alice",
        "alice-secret",
    )
}

fn rdkafka_failure(e: &rdkafka::error::KafkaError) -> Failure {
    Failure {
        what: e
            .rdkafka_error_code()
            .map_or_else(|| "no error code".to_owned(), |c| format!("{c:?}")),
        code: None,
        detail: e.to_string(),
    }
}

async fn librdkafka_produce(env: &Env, topic: &str, n: usize) -> Result<(), Failure> {
    let producer: FutureProducer = librdkafka_config(env)
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let (key, value) = (format!("key-{}", i as u64 % KEYS), i.to_string());
        let record = FutureRecord::to(topic).key(&key).payload(&value);
        acks.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| rdkafka_failure(&e))?,
        );
    }
    for ack in acks {
        match ack.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(rdkafka_failure(&e)),
            Err(_) => panic!("delivery future cancelled"),
        }
    }
    Ok(())
}

/// Reads `n` records in group `group`; the first consumer error fails the step.
async fn librdkafka_consume(
    env: &Env,
    topic: &str,
    group: &str,
    n: usize,
    limit: Duration,
) -> Result<Consumed, Failure> {
    let consumer: StreamConsumer = librdkafka_config(env)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("session.timeout.ms", "10000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut got = Consumed::new();
    let deadline = Instant::now() + limit;
    let mut count = 0;
    while count < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(rdkafka_failure(&e)),
            Err(_) => break,
        };
        let value = std::str::from_utf8(msg.payload().unwrap_or_default())
            .expect("utf-8")
            .parse()
            .expect("number");
        got.entry(msg.partition()).or_default().push(value);
        count += 1;
    }
    Ok(got)
}

// ---- kafka-python, aiokafka and kafkajs: one script run per step ----

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "kafka-python and aiokafka are needed: run ./test.sh (it creates .venv with both), \
         or set KGATE_PYTHON to a python with both installed"
    );
    venv
}

fn node_modules() -> PathBuf {
    let dir = std::env::var_os("KGATE_NODE_MODULES")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("kgate/node/node_modules"))
        })
        .expect("HOME");
    assert!(
        dir.join("kafkajs/package.json").is_file(),
        "kafkajs is needed in {}: run ./test.sh (it installs kafkajs there), or set \
         KGATE_NODE_MODULES to a node_modules directory holding kafkajs 2.2.4",
        dir.display()
    );
    dir
}

/// Runs one step of the client's script; its last stdout line is JSON, with `error` when the
/// client raised.
async fn script(
    client: Client,
    env: &Env,
    step: &str,
    topic: &str,
    group: &str,
    n: usize,
) -> Result<serde_json::Value, Failure> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut cmd = match client {
        Client::KafkaPython => {
            let mut c = tokio::process::Command::new(python());
            c.arg(root.join("python/client_kafka_python.py"));
            c
        }
        Client::Aiokafka => {
            let mut c = tokio::process::Command::new(python());
            c.arg(root.join("python/client_aiokafka.py"));
            c
        }
        Client::Kafkajs => {
            let mut c = tokio::process::Command::new("node");
            c.arg(root.join("node/client_kafkajs.js"))
                .env("KGATE_NODE_MODULES", node_modules());
            c
        }
        _ => unreachable!("{client:?} has no script"),
    };
    cmd.args([
        env.bootstrap().as_str(),
        env.pki.path("ca.pem").as_str(),
        client.mechanism(),
        "alice",
        "alice-secret",
        step,
        topic,
        group,
        &n.to_string(),
    ]);
    let ran = run_bounded(cmd, None, STEP_LIMIT).await;
    // Shown with a failing test's output.
    eprintln!(
        "--- {} {step} {topic} stderr:\n{}",
        client.name(),
        ran.stderr
    );
    let last = ran.stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = match (ran.status, serde_json::from_str(last)) {
        (Some(s), Ok(v)) if s.success() => v,
        _ => panic!(
            "{} {step} did not finish with a JSON line ({:?}):\n{}\n{}",
            client.name(),
            ran.status,
            ran.stdout,
            ran.stderr
        ),
    };
    if result.get("error").is_some() {
        let s = |k: &str| result[k].as_str().unwrap_or_default().to_owned();
        let (what, code) = match client {
            // kafkajs throws KafkaJSGroupCoordinatorNotFound for a FindCoordinator error and
            // only logs the GROUP_AUTHORIZATION_FAILED it swallowed: the types it logged count.
            Client::Kafkajs => (
                format!("{} {} logged: {}", s("type"), s("error"), result["logged"]),
                result["code"].as_i64(),
            ),
            _ => (s("error"), result["errno"].as_i64()),
        };
        return Err(Failure {
            what,
            code,
            detail: format!("{}\n{}", s("message"), ran.stderr),
        });
    }
    Ok(result)
}

// ---- kcat (Debian's, librdkafka 2.0) ----

fn kcat(env: &Env) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("kcat");
    c.args(["-b", &env.bootstrap()]);
    for (k, v) in [
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanisms", Client::Kcat.mechanism().to_owned()),
        ("sasl.username", "alice".to_owned()),
        ("sasl.password", "alice-secret".to_owned()),
        ("ssl.ca.location", env.pki.path("ca.pem")),
    ] {
        c.arg("-X").arg(format!("{k}={v}"));
    }
    c
}

/// kcat's stderr as the failure: it reports broker errors there, in librdkafka's words.
fn kcat_failure(ran: &Ran, why: &str) -> Failure {
    Failure {
        what: ran.stderr.clone(),
        code: None,
        detail: format!("{why} (exit {:?})", ran.status),
    }
}

async fn kcat_produce(env: &Env, topic: &str, n: usize) -> Result<(), Failure> {
    let mut cmd = kcat(env);
    cmd.args(["-P", "-t", topic, "-K", ":"])
        .args(["-X", "message.timeout.ms=20000"]);
    let input: String = (0..n)
        .map(|i| format!("key-{}:{i}\n", i as u64 % KEYS))
        .collect();
    let ran = run_bounded(cmd, Some(input), STEP_LIMIT).await;
    let ok = ran.status.is_some_and(|s| s.success())
        && !ran.stderr.contains("ERROR")
        && !ran.stderr.contains("failed");
    if ok {
        Ok(())
    } else {
        Err(kcat_failure(&ran, "produce"))
    }
}

async fn kcat_consume(
    env: &Env,
    topic: &str,
    group: &str,
    n: usize,
    limit: Duration,
) -> Result<Consumed, Failure> {
    let mut cmd = kcat(env);
    cmd.args(["-G", group, topic])
        .args(["-X", "auto.offset.reset=earliest"])
        .args(["-X", "session.timeout.ms=10000"])
        .args(["-c", &n.to_string()])
        .args(["-f", "%p %s\\n"]);
    let ran = run_bounded(cmd, None, limit).await;
    if !ran.status.is_some_and(|s| s.success()) || ran.stderr.contains("ERROR") {
        return Err(kcat_failure(&ran, "consume"));
    }
    let mut got = Consumed::new();
    for line in ran.stdout.lines().filter(|l| !l.is_empty()) {
        let (p, v) = line.split_once(' ').expect("partition and value");
        got.entry(p.parse().expect("partition"))
            .or_default()
            .push(v.parse().expect("value"));
    }
    Ok(got)
}

// ---- processes ----

struct Ran {
    /// `None` when it was killed at the time limit.
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with `input` on stdin, killing it after `limit`.
async fn run_bounded(
    mut cmd: tokio::process::Command,
    input: Option<String>,
    limit: Duration,
) -> Ran {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start the client");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
        });
    }
    let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf).await;
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => Some(status.expect("wait for the client")),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let collect = |task: tokio::task::JoinHandle<String>| async move {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .map(|r| r.expect("join"))
            .unwrap_or_default()
    };
    Ran {
        status,
        stdout: collect(stdout).await,
        stderr: collect(stderr).await,
    }
}

// ---- the tests: one per client and upstream ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_via_kgate_in_front_of_the_embedded_cluster() {
    matrix(Client::Librdkafka, Upstream::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_via_kgate_in_front_of_tansu() {
    matrix(Client::Librdkafka, Upstream::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_via_kgate_in_front_of_the_embedded_cluster() {
    matrix(Client::KafkaPython, Upstream::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_via_kgate_in_front_of_tansu() {
    matrix(Client::KafkaPython, Upstream::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiokafka_via_kgate_in_front_of_the_embedded_cluster() {
    matrix(Client::Aiokafka, Upstream::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiokafka_via_kgate_in_front_of_tansu() {
    matrix(Client::Aiokafka, Upstream::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_via_kgate_in_front_of_the_embedded_cluster() {
    matrix(Client::Kafkajs, Upstream::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_via_kgate_in_front_of_tansu() {
    matrix(Client::Kafkajs, Upstream::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_via_kgate_in_front_of_the_embedded_cluster() {
    matrix(Client::Kcat, Upstream::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_via_kgate_in_front_of_tansu() {
    matrix(Client::Kcat, Upstream::Tansu).await;
}

/// A transactional producer (InitProducerId with a transactional id, AddPartitionsToTxn,
/// EndTxn) and a read_committed group consumer (librdkafka's default isolation level), and a
/// transactional id without Write: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53). tansu 0.6.0
/// has no EndTxn, so a transaction can never commit there, with or without kgate: this case
/// runs against the embedded cluster only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_transactions_via_kgate_in_front_of_the_embedded_cluster() {
    let env = Env::start(Upstream::Embedded).await;
    let transactional = |id: &str| -> FutureProducer {
        librdkafka_config(&env)
            .set("transactional.id", id)
            .set("message.timeout.ms", "20000")
            .create()
            .expect("producer")
    };
    let producer = transactional("allowed-tx");
    let timeout = Duration::from_secs(20);
    tokio::task::block_in_place(|| producer.init_transactions(timeout))
        .unwrap_or_else(|e| panic!("init_transactions: {e}\n{}", env.evidence()));
    producer.begin_transaction().expect("begin");
    let mut acks = Vec::new();
    for i in 0..N {
        let (key, value) = (format!("key-{}", i as u64 % KEYS), i.to_string());
        let record = FutureRecord::to(ALLOWED).key(&key).payload(&value);
        acks.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("send"),
        );
    }
    for ack in acks {
        ack.await.expect("delivery").expect("acknowledged");
    }
    tokio::task::block_in_place(|| producer.commit_transaction(timeout))
        .unwrap_or_else(|e| panic!("commit_transaction: {e}\n{}", env.evidence()));
    match librdkafka_consume(&env, ALLOWED, "allowed-tx-reader", N, STEP_LIMIT).await {
        Ok(got) => assert_each_once(&got, N, "committed transaction, read_committed"),
        Err(f) => panic!("consuming a committed transaction: {f}\n{}", env.evidence()),
    }

    let denied = transactional("denied-tx");
    let e = tokio::task::block_in_place(|| denied.init_transactions(timeout))
        .expect_err("a transactional id without Write is denied");
    assert_eq!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed),
        "{e}\n{}",
        env.evidence()
    );
    env.shutdown().await;
}
