//! What a client can make kgate write, or wait for (issue 12.4), through a real gateway with
//! raw requests: a hostile user name leaves one bounded, escaped line in the text log and in
//! the audit log; a Metadata request naming 100,000 denied topics leaves one audit line with
//! the count; a CreateAcls waiting for the policy file's lock holds no runtime thread.
//!
//! The text log is captured with a process-wide tracing subscriber, so the tests of this file
//! tell their lines apart by a marker of their own.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use common::raw::RawClient;

/// Everything the tracing subscriber wrote, for the whole test binary.
fn text_log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        log
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured text-log lines that contain `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    let log = text_log()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_owned)
        .collect()
}

struct Env {
    _cluster: kgate_labs::EmbeddedCluster,
    dir: tempfile::TempDir,
    gateway: kgate_proxy::Gateway,
    authz: Arc<kgate_proxy::authz::Authz>,
}

/// A SASL_PLAINTEXT gateway with alice, bob and admin, an empty policy (everything denied)
/// and its audit log (allows included) in `dir/audit.jsonl`.
async fn env() -> Env {
    text_log();
    let cluster = common::cluster_with_topic("t", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::gateway_config(&cluster);
    config.sasl.authenticator = Some(common::authenticator(dir.path()));
    let authz = common::authz(dir.path(), "");
    config.authz = Some(authz.clone());
    let (gateway, _) = common::start_gateway(config).await;
    Env {
        _cluster: cluster,
        dir,
        gateway,
        authz,
    }
}

impl Env {
    /// The audit log's lines, once everything queued is written.
    fn audit_lines(&self) -> Vec<serde_json::Value> {
        let audit = self.authz.audit.as_ref().expect("audit");
        assert!(
            audit.flush(Duration::from_secs(10)),
            "audit written in time"
        );
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .expect("audit log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON value per line"))
            .collect()
    }
}

fn unique() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_user_name_leaves_one_bounded_escaped_line_in_each_log() {
    let env = env().await;
    let id = unique();
    let marker = format!("mallory-{id}");
    let forged = format!("FORGED-{id}");
    // 10 KiB and more of newlines, with a forged log line after the first.
    let name = format!(
        "{marker}\n2026-01-01T00:00:00.000000Z  INFO kgate::auth: {forged} authenticated \
         principal=User:admin\u{1b}[2J{}",
        "\n".repeat(10 * 1024)
    );
    let (_conn, answer) =
        RawClient::try_login(&env.gateway.bootstrap_servers(), &name, "whatever").await;
    assert_eq!(answer.error_code, 58);

    // The connection's one line comes when it closes, after Kafka's failure delay.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "no log line names the attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = lines_with(&marker);
    assert_eq!(lines.len(), 1, "one line per failed attempt: {lines:#?}");
    let line = &lines[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(line.len() < 1024, "bounded: {} bytes", line.len());
    // The newline is escaped (the close line's reason is quoted, so its backslash may be
    // escaped once more): the forged line is part of this one.
    assert!(
        line.contains("n2026-01-01T00:00:00.000000Z"),
        "escaped: {line}"
    );
    assert!(!line.contains('\u{1b}'), "no escape sequence: {line}");
    assert!(line.contains("…["), "says it was cut: {line}");
    // The forged line exists only inside that one, escaped.
    assert_eq!(lines_with(&forged), lines);

    let audit: Vec<_> = env
        .audit_lines()
        .into_iter()
        .filter(|l| l["user"].as_str().is_some_and(|u| u.contains(&marker)))
        .collect();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0]["outcome"], "FAILURE");
    let user = audit[0]["user"].as_str().expect("user");
    assert!(user.len() <= 256 + 20, "{} bytes", user.len());
    assert!(user.starts_with(&format!("{marker}\\n2026")), "{user}");
    assert!(!user.contains(['\n', '\u{1b}']), "{user}");
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_request_naming_100000_denied_topics_is_one_audit_line() {
    const TOPICS: usize = 100_000;
    let env = env().await;
    let id = unique();
    let mut alice =
        RawClient::login(&env.gateway.bootstrap_servers(), "alice", "alice-secret").await;
    let version = alice.version(ApiKey::Metadata, 12);
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(
            (0..TOPICS)
                .map(|i| {
                    MetadataRequestTopic::default().with_name(Some(TopicName(
                        StrBytes::from_string(format!("denied-{id}-{i}")),
                    )))
                })
                .collect(),
        ));
    let response: MetadataResponse = alice.call(ApiKey::Metadata, version, &request).await;
    assert_eq!(response.topics.len(), TOPICS);
    assert!(response.topics.iter().all(|t| t.error_code == 29));

    let lines: Vec<_> = env
        .audit_lines()
        .into_iter()
        .filter(|l| l["event"] == "authorization" && l["principal"] == "User:alice")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert_eq!(line["api"], "Metadata");
    assert_eq!(line["resource_type"], "Topic");
    assert_eq!(line["operation"], "Describe");
    assert_eq!(line["decision"], "DENY");
    assert_eq!(line["resource"], format!("denied-{id}-0"));
    assert_eq!(line["count"], TOPICS);
    env.gateway.shutdown().await;
}

/// The gateway and both clients share this test's one thread (`current_thread`): if the
/// CreateAcls waiting for the policy file's lock (up to 2 s) held it, nothing else would
/// move until the wait ends.
#[tokio::test]
async fn a_create_acls_waiting_for_the_policy_lock_holds_no_runtime_thread() {
    let env = env().await;
    let bootstrap = env.gateway.bootstrap_servers();
    let alter_cluster = kgate_policies::AclBinding {
        pattern: kgate_policies::ResourcePattern::literal(
            kgate_policies::ResourceType::Cluster,
            "kafka-cluster",
        )
        .expect("pattern"),
        principal: "User:admin".parse().expect("principal"),
        host: kgate_policies::Host::Any,
        operation: kgate_policies::Operation::Alter,
        permission: kgate_policies::Permission::Allow,
    };
    env.authz
        .authorizer
        .create_acls(vec![alter_cluster])
        .expect("grant");
    let mut admin = RawClient::login(&bootstrap, "admin", "admin-secret").await;
    let mut alice = RawClient::login(&bootstrap, "alice", "alice-secret").await;

    // Another writer (a `kgate acl` in progress) holds the policy file.
    let lock =
        kgate_policies::PolicyLock::acquire(&env.dir.path().join("policy.toml")).expect("lock");
    let creation = AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("t"))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_static_str("User:alice"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(3)
        .with_permission_type(3);
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let r: CreateAclsResponse = admin
            .call(
                ApiKey::CreateAcls,
                3,
                &CreateAclsRequest::default().with_creations(vec![creation]),
            )
            .await;
        r.results[0].error_code
    });
    // Let the CreateAcls reach the gateway and start waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let version = alice.version(ApiKey::Metadata, 12);
    let _: MetadataResponse = alice
        .call(ApiKey::Metadata, version, &MetadataRequest::default())
        .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "Metadata answered after {took:?}"
    );

    // Past the gateway's lock wait the CreateAcls fails cleanly, with nothing written.
    assert_eq!(waiting.await.expect("CreateAcls answered"), -1);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it did wait for the lock"
    );
    drop(lock);
    env.gateway.shutdown().await;
}

/// A flood of connections that never log in leaves at most a handful of lines a second and
/// one line that counts the rest, instead of a line per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_before_login_are_logged_a_few_a_second_and_counted() {
    let e = env().await;
    let addr = e.gateway.bootstrap_addr();
    for _ in 0..300 {
        let c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        drop(c);
    }
    // The count comes out with the first close of the next second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let counted = loop {
        let counted: u64 = lines_with("more connections closed before login")
            .iter()
            .filter_map(|l| {
                l.split("not_logged=")
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum();
        if counted >= 270 || std::time::Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        counted >= 270,
        "{counted} of 300 closes counted instead of logged one by one"
    );
    e.gateway.shutdown().await;
}
