//! Shared helpers of the end-to-end tests: an embedded cluster, a gateway in front of it,
//! and real librdkafka producers and consumers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kgate_labs::EmbeddedCluster;
use kgate_proxy::{Gateway, GatewayConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A cluster of 3 brokers with one topic of `partitions` partitions.
pub fn cluster_with_topic(topic: &str, partitions: i32) -> EmbeddedCluster {
    let cluster = EmbeddedCluster::start(3).expect("embedded cluster");
    cluster.create_topic(topic, partitions).expect("topic");
    cluster
}

/// A gateway config on an ephemeral loopback port in front of `cluster`.
pub fn gateway_config(cluster: &EmbeddedCluster) -> GatewayConfig {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let upstream = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut config = GatewayConfig::new(listen, upstream);
    config.refresh_interval = Duration::from_secs(3600);
    config
}

/// Produces `n` keyed messages (`key-{i % keys}`, value `i`) and waits for every ack.
pub async fn produce(client: &ClientConfig, topic: &str, n: usize, keys: usize) {
    let producer: FutureProducer = client
        .clone()
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{}", i % keys);
        let value = i.to_string();
        let mut record = FutureRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send_result(record) {
                Ok(ack) => {
                    acks.push(ack);
                    break;
                }
                Err((e, back)) => {
                    assert!(
                        e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        "send failed: {e}"
                    );
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for (i, ack) in acks.into_iter().enumerate() {
        match ack.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => panic!("message {i} not acknowledged: {e}"),
            Err(_) => panic!("message {i}: delivery future cancelled"),
        }
    }
}

/// Consumes `n` messages in consumer group `group`; returns, per partition, the values in
/// the order they arrived, and every key seen per partition.
pub async fn consume(
    client: &ClientConfig,
    topic: &str,
    group: &str,
    n: usize,
) -> BTreeMap<i32, Vec<(String, u64)>> {
    let consumer: StreamConsumer = client
        .clone()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut got: BTreeMap<i32, Vec<(String, u64)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut count = 0;
    while count < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out after {count} of {n} messages");
        let msg = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => panic!("consumer error: {e}"),
            Err(_) => panic!("timed out after {count} of {n} messages"),
        };
        let key = String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned();
        let value: u64 = std::str::from_utf8(msg.payload().unwrap_or_default())
            .expect("utf-8")
            .parse()
            .expect("number");
        got.entry(msg.partition()).or_default().push((key, value));
        count += 1;
    }
    got
}

/// Checks exact delivery of `n` values with keys `key-{i % keys}`: each value once, every key
/// on one partition only, and per partition the values in increasing (production) order.
pub fn assert_exact_in_order(got: &BTreeMap<i32, Vec<(String, u64)>>, n: usize, keys: usize) {
    let mut all: Vec<u64> = got.values().flatten().map(|(_, v)| *v).collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..n as u64).collect();
    assert_eq!(all, expected, "every message exactly once");
    let mut key_partition: BTreeMap<&str, i32> = BTreeMap::new();
    for (partition, msgs) in got {
        for pair in msgs.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "order broken in partition {partition}"
            );
        }
        for (key, value) in msgs {
            assert_eq!(key, &format!("key-{}", value % keys as u64));
            let p = key_partition.entry(key).or_insert(*partition);
            assert_eq!(p, partition, "key {key} on two partitions");
        }
    }
    assert!(
        got.len() > 1,
        "messages spread over partitions: {:?}",
        got.keys()
    );
}

/// Starts a gateway and returns it with a librdkafka config pointing at it.
pub async fn start_gateway(config: GatewayConfig) -> (Gateway, ClientConfig) {
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", gateway.bootstrap_servers());
    (gateway, client)
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate for alice,
/// in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        use kgate_certs::generate;
        let dir = tempfile::tempdir().expect("tempdir");
        let options = generate::GenerateOptions::default();
        generate::init_ca(dir.path(), &options).expect("ca");
        generate::issue_server(
            dir.path(),
            &["localhost".into()],
            &["127.0.0.1".parse().expect("ip")],
            &options,
        )
        .expect("server cert");
        generate::issue_client(dir.path(), "alice", &options).expect("client cert");
        Self { dir }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// The gateway's TLS settings; with `mtls`, client certificates signed by the CA are
    /// required and mapped to principals with the default rule.
    pub fn tls(&self, mtls: bool) -> std::sync::Arc<kgate_proxy::TlsSettings> {
        let handle = kgate_certs::TlsConfigHandle::load(kgate_certs::TlsSettings {
            cert: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server-key.pem"),
            client_ca: mtls.then(|| self.dir.path().join("ca.pem")),
        })
        .expect("tls config");
        std::sync::Arc::new(kgate_proxy::TlsSettings {
            handle,
            principal_mapper: mtls.then(kgate_certs::PrincipalMapper::default),
        })
    }
}

/// A credential store with `alice`/`alice-secret` and `bob`/`bob-secret` under both SCRAM
/// mechanisms, as the gateway's authenticator offering every mechanism.
pub fn authenticator(
    dir: &std::path::Path,
) -> std::sync::Arc<kgate_proxy::credentials::CredentialAuthenticator> {
    use kgate_auth::{CredentialStore, Mechanism, SharedCredentials};
    let mut store = CredentialStore::new();
    for (user, password) in [
        ("alice", "alice-secret"),
        ("bob", "bob-secret"),
        ("admin", "admin-secret"),
    ] {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            store
                .add(user, m, password.as_bytes(), 4096)
                .expect("add user");
        }
    }
    let path = dir.join("users.toml");
    store.save(&path).expect("save users");
    let creds = SharedCredentials::load(&path).expect("load users");
    std::sync::Arc::new(kgate_proxy::credentials::CredentialAuthenticator::new(
        creds,
        kgate_proxy::credentials::SaslMechanism::all(),
    ))
}

/// librdkafka settings for SASL_SSL with `mechanism` against a gateway using `pki`.
pub fn sasl_ssl_client(
    bootstrap: &str,
    pki: &Pki,
    mechanism: &str,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("ssl.ca.location", pki.path("ca.pem"));
    c
}

/// An authorizer over a policy file written from `text` into `dir`, with its audit log in
/// `dir/audit.jsonl` (allows included).
pub fn authz(dir: &std::path::Path, text: &str) -> std::sync::Arc<kgate_proxy::authz::Authz> {
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).expect("write policy");
    let authorizer =
        kgate_policies::Authorizer::open(&path, kgate_policies::AuthorizerOptions::default())
            .expect("policy loads");
    let audit = kgate_proxy::audit::Audit::to_file(&dir.join("audit.jsonl"), true).expect("audit");
    std::sync::Arc::new(kgate_proxy::authz::Authz {
        authorizer: std::sync::Arc::new(authorizer),
        audit: Some(std::sync::Arc::new(audit)),
        credentials: None,
        topic_ids: Default::default(),
    })
}
pub mod lab;
pub mod raw;
pub mod tansu;
