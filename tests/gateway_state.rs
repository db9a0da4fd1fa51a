//! Several gateways sharing one policy and one set of users through the cluster
//! (`state = "kafka"`): three real `kgate proxy` processes on 127.0.0.1, .2 and .3 (same
//! ports, as behind one DNS name) in front of the embedded cluster, driven over the Kafka
//! protocol and with librdkafka.

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::raw::RawClient;
use kafka_protocol::messages::{
    alter_user_scram_credentials_request::ScramCredentialUpsertion,
    create_acls_request::AclCreation,
    delete_acls_request::DeleteAclsFilter,
    fetch_request::{FetchPartition, FetchTopic},
    metadata_request::MetadataRequestTopic,
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey, CreateAclsRequest,
    CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, FetchRequest, FetchResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kgate_labs::EmbeddedCluster;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const STATE: &str = "__kgate_state";
const PASSWORD: &str = "state-test-password";

fn kgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kgate"));
    c.env("KGATE_LOG", "info");
    c
}

/// A port P such that P..=P+5 are free on 127.0.0.1, .2 and .3.
fn shared_ports() -> u16 {
    for attempt in 0..200u16 {
        let p = 20_000 + (std::process::id() as u16 % 2000) * 10 + attempt * 37 % 20_000;
        let all_free = (1..=3).all(|i| {
            (p..=p + 5)
                .all(|port| std::net::TcpListener::bind((format!("127.0.0.{i}"), port)).is_ok())
        });
        if all_free {
            return p;
        }
    }
    panic!("no free port range on 127.0.0.1-3");
}

struct Instance {
    ip: String,
    port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn bootstrap(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn admin(&self) -> (String, u16) {
        (self.ip.clone(), self.port + 5)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = kgate()
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kgate proxy");
        self.child = Some(child);
    }

    /// Waits for /readyz; returns how long it took.
    fn wait_ready(&mut self) -> Duration {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "{} exited with {status}: {}",
                    self.ip,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if http_get(&self.admin(), "/readyz").0 == 200 {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} not ready in 60 s: {}",
            self.ip,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, body) = http_get(&self.admin(), "/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(-1.0)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_get((ip, port): &(String, u16), path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect((ip.as_str(), *port)) else {
        return (0, String::new());
    };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nhost: {ip}:{port}\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned(),
    )
}

fn run_ok(args: &[&str], dir: &Path, stdin: Option<&str>) -> String {
    let mut child = kgate()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kgate");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kgate {args:?}: {text}");
    text
}

fn run_err(args: &[&str], dir: &Path) -> String {
    let out = kgate()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run kgate");
    assert!(!out.status.success(), "kgate {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The signing key, `users` (password PASSWORD), one `kgate acl add` with `acl`, all imported
/// into the state topic of `upstream`.
fn prepare(dir: &Path, upstream: &str, users: &[&str], acl: &[&str]) {
    run_ok(&["state", "key", "--out", "state.key"], dir, None);
    for user in users {
        run_ok(
            &[
                "users",
                "add",
                user,
                "--password-stdin",
                "--users",
                "users.toml",
            ],
            dir,
            Some(PASSWORD),
        );
    }
    let mut add = vec!["acl", "add"];
    add.extend_from_slice(acl);
    add.extend_from_slice(&["--policy", "policy.toml"]);
    run_ok(&add, dir, None);
    let out = run_ok(
        &[
            "state",
            "import",
            "--upstream",
            upstream,
            "--state-key-file",
            "state.key",
            "--policy",
            "policy.toml",
            "--users",
            "users.toml",
        ],
        dir,
        None,
    );
    assert!(out.contains("record(s) written"), "{out}");
}

impl Instance {
    /// `kgate proxy --state kafka` on `ip:port` (admin on port + 5), files named by `n`.
    fn new(dir: &Path, upstream: &str, ip: &str, port: u16, n: usize) -> Self {
        let args = [
            "proxy",
            "--upstream",
            upstream,
            "--listen",
            &format!("{ip}:{port}"),
            "--plaintext",
            "--state",
            "kafka",
            "--state-key-file",
            &dir.join("state.key").display().to_string(),
            "--super-user",
            "User:admin",
            "--admin-listen",
            &format!("{ip}:{}", port + 5),
            "--admin-token-file",
            &dir.join(format!("admin{n}.token")).display().to_string(),
            "--audit-log",
            &dir.join(format!("audit{n}.log")).display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        Instance {
            ip: ip.to_owned(),
            port,
            args,
            log: dir.join(format!("kgate{n}.log")),
            child: None,
        }
    }
}

fn instances(dir: &Path, cluster: &EmbeddedCluster) -> Vec<Instance> {
    let port = shared_ports();
    (1..=3)
        .map(|i| {
            Instance::new(
                dir,
                cluster.bootstrap_servers(),
                &format!("127.0.0.{i}"),
                port,
                i,
            )
        })
        .collect()
}

async fn topic_error(addr: &str, user: &str, topic: &str) -> i16 {
    let mut c = RawClient::login(addr, user, PASSWORD).await;
    let v = c.version(ApiKey::Metadata, 9);
    let r: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            v,
            &MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]))
                .with_allow_auto_topic_creation(false),
        )
        .await;
    r.topics.first().map_or(-1, |t| t.error_code)
}

/// Polls `check` until it holds; returns how long that took, or panics after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn acl_creation(operation: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("orders"))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_static_str("User:carol"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(operation)
        .with_permission_type(3)
}

/// CreateAcls: carol may Read `orders`.
async fn create_carol_read(admin: &mut RawClient) -> CreateAclsResponse {
    let v = admin.version(ApiKey::CreateAcls, 3);
    admin
        .call(
            ApiKey::CreateAcls,
            v,
            &CreateAclsRequest::default().with_creations(vec![acl_creation(3)]),
        )
        .await
}

/// Fetches partition 0 of `orders` from its leader through the gateway at `bootstrap`.
async fn fetch_error(bootstrap: &str, user: &str) -> i16 {
    let mut c = RawClient::login(bootstrap, user, PASSWORD).await;
    let v = c.version(ApiKey::Metadata, 9);
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            v,
            &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))])),
        )
        .await;
    let Some(t) = md.topics.first() else {
        return -1;
    };
    if t.error_code != 0 {
        return t.error_code;
    }
    let leader = t
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .map_or(-1, |p| p.leader_id.0);
    let Some(b) = md.brokers.iter().find(|b| b.node_id.0 == leader) else {
        return -1;
    };
    let addr = format!("{}:{}", b.host, b.port);
    let mut c = RawClient::login(&addr, user, PASSWORD).await;
    let v = c.version(ApiKey::Fetch, 12);
    let r: FetchResponse = c
        .call(
            ApiKey::Fetch,
            v,
            &FetchRequest::default()
                .with_max_wait_ms(10)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])]),
        )
        .await;
    r.responses
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_share_acls_and_users_survive_a_kill_and_refuse_forged_state() {
    let cluster = EmbeddedCluster::start(3).expect("cluster");
    cluster.create_topic("orders", 3).expect("topic");
    // The embedded cluster cannot create topics over the protocol (CreateTopics); a real one
    // gets it made by kgate.
    cluster.create_topic(STATE, 1).expect("state topic");
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    prepare(
        d,
        cluster.bootstrap_servers(),
        &["admin", "alice", "carol"],
        &[
            "--allow-principal",
            "User:alice",
            "--producer",
            "--idempotent",
            "--topic",
            "orders",
        ],
    );
    let mut gw = instances(d, &cluster);
    for g in &mut gw {
        g.start();
    }
    for g in &mut gw {
        g.wait_ready();
    }
    let (a, b, c) = (gw[0].bootstrap(), gw[1].bootstrap(), gw[2].bootstrap());

    // An ACL created through A is enforced by B and C.
    assert_eq!(topic_error(&b, "carol", "orders").await, 29);
    let mut admin = RawClient::login(&a, "admin", PASSWORD).await;
    let created = create_carol_read(&mut admin).await;
    assert_eq!(
        created.results[0].error_code, 0,
        "{:?}",
        created.results[0].error_message
    );
    for (name, addr) in [("A", &a), ("B", &b), ("C", &c)] {
        let took = within(
            Duration::from_secs(3),
            &format!("the ACL on {name}"),
            || async { topic_error(addr, "carol", "orders").await == 0 },
        )
        .await;
        println!("ACL created through A enforced by {name} after {took:?}");
    }

    // A user added through B authenticates on A and C.
    let mut admin_b = RawClient::login(&b, "admin", PASSWORD).await;
    let salt = b"0123456789abcdef".to_vec();
    let salted = kgate_auth::crypto::salted_password(
        kgate_auth::Mechanism::ScramSha512,
        b"bob-password",
        &salt,
        4096,
    );
    let v = admin_b.version(ApiKey::AlterUserScramCredentials, 0);
    let altered: AlterUserScramCredentialsResponse = admin_b
        .call(
            ApiKey::AlterUserScramCredentials,
            v,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(StrBytes::from_static_str("bob"))
                    .with_mechanism(2)
                    .with_iterations(4096)
                    .with_salt(Bytes::from(salt))
                    .with_salted_password(Bytes::from(salted.to_vec())),
            ]),
        )
        .await;
    assert_eq!(
        altered.results[0].error_code, 0,
        "{:?}",
        altered.results[0].error_message
    );
    for (name, addr) in [("A", &a), ("C", &c)] {
        let took = within(
            Duration::from_secs(3),
            &format!("bob on {name}"),
            || async {
                RawClient::try_login(addr, "bob", "bob-password")
                    .await
                    .1
                    .error_code
                    == 0
            },
        )
        .await;
        println!("user added through B authenticates on {name} after {took:?}");
    }

    // A revoke through C stops a consumer on A at its next fetch.
    assert_eq!(fetch_error(&a, "carol").await, 0);
    let mut admin_c = RawClient::login(&c, "admin", PASSWORD).await;
    let v = admin_c.version(ApiKey::DeleteAcls, 3);
    let deleted: DeleteAclsResponse = admin_c
        .call(
            ApiKey::DeleteAcls,
            v,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(StrBytes::from_static_str("orders")))
                .with_pattern_type_filter(3)
                .with_principal_filter(Some(StrBytes::from_static_str("User:carol")))
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1)]),
        )
        .await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    let took = within(Duration::from_secs(3), "the revoke on A", || async {
        fetch_error(&a, "carol").await == 29
    })
    .await;
    println!("revoke through C stops carol's fetch on A after {took:?}");

    // The state topic is kgate's alone: refused by name, hidden from listings, super user too.
    assert_eq!(topic_error(&a, "admin", STATE).await, 29);
    let mut admin = RawClient::login(&a, "admin", PASSWORD).await;
    let v = admin.version(ApiKey::Metadata, 9);
    let all: MetadataResponse = admin
        .call(
            ApiKey::Metadata,
            v,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    let names: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert!(
        names.contains(&"orders".to_string()) && !names.contains(&STATE.to_string()),
        "{names:?}"
    );
    let produce = kafka_protocol::messages::produce_request::TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str(STATE)))
        .with_partition_data(vec![
            kafka_protocol::messages::produce_request::PartitionProduceData::default()
                .with_index(0),
        ]);
    let v = admin.version(ApiKey::Produce, 9);
    let r: kafka_protocol::messages::ProduceResponse = admin
        .call(
            ApiKey::Produce,
            v,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![produce]),
        )
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 29);

    // A record written straight to the cluster without the key changes nothing.
    let forged_key = serde_json::to_vec(&[
        "acl",
        "User:carol",
        "Allow",
        "All",
        "Topic",
        "Literal",
        "orders",
        "*",
    ])
    .expect("json");
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .expect("producer");
    for mac in [None, Some(vec![0u8; 32])] {
        let mut record = FutureRecord::<[u8], [u8]>::to(STATE)
            .key(&forged_key)
            .payload(b"1")
            .partition(0);
        if let Some(mac) = &mac {
            record = record.headers(rdkafka::message::OwnedHeaders::new().insert(
                rdkafka::message::Header {
                    key: kgate_state::MAC_HEADER,
                    value: Some(mac),
                },
            ));
        }
        raw.send(record, Duration::from_secs(5))
            .await
            .expect("forged record written");
    }
    within(Duration::from_secs(3), "MAC failures counted", || async {
        gw.iter()
            .all(|g| g.metric("kgate_state_mac_failures_total") >= 2.0)
    })
    .await;
    for addr in [&a, &b, &c] {
        assert_eq!(
            topic_error(addr, "carol", "orders").await,
            29,
            "a forged record must not grant"
        );
    }

    // A restarted instance is ready only once it has read the state, and then enforces it.
    gw[2].kill();
    let mut admin = RawClient::login(&a, "admin", PASSWORD).await;
    let created = create_carol_read(&mut admin).await;
    assert_eq!(created.results[0].error_code, 0);
    gw[2].start();
    gw[2].wait_ready();
    assert_eq!(
        topic_error(&c, "carol", "orders").await,
        0,
        "the restarted instance enforces the ACL made while it was down"
    );

    // `kgate acl` pointed at the cluster (a kgate.toml with state = "kafka") changes what
    // every gateway enforces.
    std::fs::write(
        d.join("kgate.toml"),
        format!(
            "upstream = [{}]\nstate = \"kafka\"\nstate_key_file = \"state.key\"\n",
            cluster
                .bootstrap_servers()
                .split(',')
                .map(|b| format!("\"{b}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .expect("kgate.toml");
    let out = run_ok(
        &[
            "acl",
            "add",
            "--deny-principal",
            "User:carol",
            "--operation",
            "Read",
            "--topic",
            "orders",
            "--state-config",
            "kgate.toml",
        ],
        d,
        None,
    );
    assert!(out.contains("added"), "{out}");
    for (name, addr) in [("A", &a), ("B", &b), ("C", &c)] {
        within(
            Duration::from_secs(3),
            &format!("the CLI's DENY on {name}"),
            || async { fetch_error(addr, "carol").await == 29 },
        )
        .await;
    }
    let listed = run_ok(&["acl", "list", "--state-config", "kgate.toml"], d, None);
    assert!(
        listed.contains("User:carol") && listed.contains("DENY"),
        "{listed}"
    );

    // `kgate users` pointed at the cluster: a user added there logs in on every gateway, and
    // is refused everywhere once removed. The password goes in on stdin, never on the line.
    let add_dave = [
        "users",
        "add",
        "dave",
        "--password-stdin",
        "--state-config",
        "kgate.toml",
    ];
    let out = run_ok(&add_dave, d, Some("dave-password"));
    assert!(out.contains("added dave"), "{out}");
    let logs_in = |addr: String| async move {
        RawClient::try_login(&addr, "dave", "dave-password")
            .await
            .1
            .error_code
            == 0
    };
    for (name, addr) in [("A", &a), ("B", &b), ("C", &c)] {
        within(
            Duration::from_secs(3),
            &format!("dave, added by the CLI, on {name}"),
            || logs_in(addr.clone()),
        )
        .await;
    }
    let listed = run_ok(&["users", "list", "--state-config", "kgate.toml"], d, None);
    assert!(listed.contains("dave"), "{listed}");
    let refused = kgate()
        .args(add_dave)
        .current_dir(d)
        .stdin(Stdio::null())
        .output()
        .expect("run kgate");
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && text.contains("--replace"),
        "an existing user is not overwritten silently: {text}"
    );
    run_ok(
        &["users", "remove", "dave", "--state-config", "kgate.toml"],
        d,
        None,
    );
    for (name, addr) in [("A", &a), ("B", &b), ("C", &c)] {
        within(
            Duration::from_secs(3),
            &format!("dave, removed by the CLI, refused on {name}"),
            || async { !logs_in(addr.clone()).await },
        )
        .await;
    }

    // SIGKILL of the gateway an idempotent producer uses loses and duplicates nothing.
    let all_three = format!("{a},{b},{c}");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &all_three)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "alice")
        .set("sasl.password", PASSWORD)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    let total = 3000usize;
    let mut acked = Vec::new();
    let mut killed = None;
    let mut pending = Vec::new();
    for i in 0..total {
        let key = format!("id-{i}");
        let fut = producer.send_result(FutureRecord::to("orders").key(&key).payload(&key));
        pending.push((i, fut.expect("queued")));
        if pending.len() == 100 {
            for (i, f) in pending.drain(..) {
                if matches!(f.await, Ok(Ok(_))) {
                    acked.push(i);
                }
            }
        }
        if i == 1000 && killed.is_none() {
            // Kill the gateway carrying the producer's connections.
            let busiest = (0..3)
                .max_by(|x, y| {
                    gw[*x]
                        .metric("kgate_connections_open")
                        .total_cmp(&gw[*y].metric("kgate_connections_open"))
                })
                .unwrap_or(0);
            assert!(gw[busiest].metric("kgate_connections_open") > 0.0);
            gw[busiest].kill();
            killed = Some(busiest);
        }
    }
    for (i, f) in pending.drain(..) {
        if matches!(f.await, Ok(Ok(_))) {
            acked.push(i);
        }
    }
    println!(
        "killed gateway {killed:?}; {} of {total} acknowledged",
        acked.len()
    );
    assert!(
        acked.len() > 1000,
        "the producer must carry on through the other gateways"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "count")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    consumer.subscribe(&["orders"]).expect("subscribe");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut eof = std::collections::BTreeSet::new();
    let started = Instant::now();
    while eof.len() < 3 && started.elapsed() < Duration::from_secs(60) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                *seen
                    .entry(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
                    .or_default() += 1;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            _ => {}
        }
    }
    let lost: Vec<usize> = acked
        .iter()
        .copied()
        .filter(|i| !seen.contains_key(&format!("id-{i}")))
        .collect();
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(twice.is_empty(), "written twice: {twice:?}");
}

#[test]
fn bad_state_settings_get_one_clear_message_each() {
    let cluster = EmbeddedCluster::start(1).expect("cluster");
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let listen = "127.0.0.1:0";
    let base = |key: &str, upstream: &str| {
        vec![
            "proxy".to_string(),
            "--upstream".into(),
            upstream.into(),
            "--listen".into(),
            listen.into(),
            "--plaintext".into(),
            "--state".into(),
            "kafka".into(),
            "--state-key-file".into(),
            key.into(),
        ]
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_err(&args, d)
    };
    let e = run(base("missing.key", cluster.bootstrap_servers()));
    assert!(
        e.contains("missing.key") && e.contains("kgate state key --out"),
        "{e}"
    );

    std::fs::write(d.join("short.key"), "c2hvcnQ=\n").expect("write");
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(d.join("short.key"))
            .expect("meta")
            .permissions(),
        0o600,
    );
    let mut perms = std::fs::metadata(d.join("short.key"))
        .expect("meta")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(d.join("short.key"), perms).expect("chmod");
    let e = run(base("short.key", cluster.bootstrap_servers()));
    assert!(e.contains("short.key:1") && e.contains("5 bytes"), "{e}");

    run_ok(&["state", "key", "--out", "good.key"], d, None);
    let e = run_err(&["state", "key", "--out", "good.key"], d);
    assert!(e.contains("good.key"), "never overwrites a key: {e}");

    let started = Instant::now();
    let e = run(base("good.key", "127.0.0.1:1"));
    assert!(
        e.contains("cannot reach the upstream cluster at 127.0.0.1:1"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(40));

    cluster.create_topic(STATE, 3).expect("topic");
    let e = run(base("good.key", cluster.bootstrap_servers()));
    assert!(
        e.contains("has 3 partitions") && e.contains("exactly 1"),
        "{e}"
    );

    let mut with_policy = base("good.key", cluster.bootstrap_servers());
    with_policy.extend(["--policy".to_string(), "policy.toml".into()]);
    let e = run(with_policy);
    assert!(e.contains("drop --policy"), "{e}");
}

/// On a real broker kgate makes the state topic itself (CreateTopics with compaction), and a
/// gateway in front of it enforces what was imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_tansu_kgate_creates_the_state_topic_and_enforces_the_imported_policy() {
    let broker = common::tansu::Tansu::start(&[("orders", 1)]);
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let upstream = broker.bootstrap();
    prepare(
        d,
        &upstream,
        &["admin", "carol"],
        &[
            "--allow-principal",
            "User:carol",
            "--operation",
            "Describe",
            "--topic",
            "orders",
        ],
    );
    let status = run_ok(
        &[
            "state",
            "status",
            "--upstream",
            &upstream,
            "--state-key-file",
            "state.key",
        ],
        d,
        None,
    );
    assert!(
        status.contains("acl bindings:     1") && status.contains("users:            2"),
        "{status}"
    );

    let port = shared_ports();
    let mut gw = Instance::new(d, &upstream, "127.0.0.1", port, 1);
    gw.start();
    gw.wait_ready();
    let addr = gw.bootstrap();
    assert_eq!(topic_error(&addr, "carol", "orders").await, 0);
    assert_eq!(topic_error(&addr, "admin", STATE).await, 29);
}

/// A state topic that would lose records (cleanup.policy=delete) is refused at start, with the
/// command that fixes it.
#[test]
fn a_state_topic_with_the_delete_policy_is_refused() {
    let broker = common::tansu::Tansu::start(&[]);
    broker.create_topic_with(STATE, 1, &["cleanup.policy=delete"]);
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    run_ok(&["state", "key", "--out", "state.key"], d, None);
    let upstream = broker.bootstrap();
    let e = run_err(
        &[
            "proxy",
            "--upstream",
            &upstream,
            "--listen",
            "127.0.0.1:0",
            "--plaintext",
            "--state",
            "kafka",
            "--state-key-file",
            "state.key",
        ],
        d,
    );
    assert!(
        e.contains("cleanup.policy=delete") && e.contains("kafka-configs.sh --alter"),
        "{e}"
    );
}
