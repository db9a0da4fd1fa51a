//! Authorization through kgate with real librdkafka clients: the seeds' scenario (Marketing
//! reads `customer_feedback` only, Engineering writes `system_logs` only, admins do
//! everything), topic hiding in metadata, the audit log, and a revoke while a consumer is
//! fetching.

mod common;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;

const SEEDS: &str = include_str!("../policies/examples/seeds.toml");

struct Setup {
    _cluster: kgate_labs::EmbeddedCluster,
    pki: common::Pki,
    gateway: kgate_proxy::Gateway,
    authz: std::sync::Arc<kgate_proxy::authz::Authz>,
}

async fn setup(policy: &str) -> Setup {
    let cluster = common::cluster_with_topic("customer_feedback", 3);
    cluster.create_topic("system_logs", 3).expect("topic");
    cluster.create_topic("payroll", 3).expect("topic");
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let authz = common::authz(pki.dir.path(), policy);
    config.authz = Some(authz.clone());
    let (gateway, _) = common::start_gateway(config).await;
    Setup {
        _cluster: cluster,
        pki,
        gateway,
        authz,
    }
}

impl Setup {
    fn client(&self, user: &str) -> rdkafka::ClientConfig {
        let mut c = common::sasl_ssl_client(
            &self.gateway.bootstrap_servers(),
            &self.pki,
            "SCRAM-SHA-512",
            user,
            &format!("{user}-secret"),
        );
        c.set("message.timeout.ms", "5000");
        c
    }
}

async fn produce_one(client: &rdkafka::ClientConfig, topic: &str) -> Result<(), KafkaError> {
    let producer: FutureProducer = client.create().expect("producer");
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("v"),
            Duration::from_secs(5),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

fn is_topic_denied(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_scenario_holds_for_librdkafka_clients() {
    let s = setup(SEEDS).await;
    let (alice, bob, admin) = (s.client("alice"), s.client("bob"), s.client("admin"));
    // Engineering writes system_logs, and nothing else.
    produce_one(&bob, "system_logs")
        .await
        .expect("bob writes system_logs");
    let err = produce_one(&bob, "customer_feedback")
        .await
        .expect_err("bob may not write customer_feedback");
    assert!(is_topic_denied(&err), "{err}");
    // Marketing may not write, even to the topic it reads.
    let err = produce_one(&alice, "customer_feedback")
        .await
        .expect_err("alice may not write");
    assert!(is_topic_denied(&err), "{err}");
    // Admins do everything.
    common::produce(&admin, "customer_feedback", 30, 3).await;
    common::produce(&admin, "payroll", 5, 1).await;
    // Marketing reads customer_feedback in a marketing-* group.
    let got = common::consume(&alice, "customer_feedback", "marketing-dashboard", 30).await;
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 30);

    // Metadata for all topics shows alice only what she may describe.
    let consumer: BaseConsumer = alice.create().expect("consumer");
    let md =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(10)))
            .await
            .expect("join")
            .expect("metadata");
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["customer_feedback"]);

    // A named topic she may not describe gets TOPIC_AUTHORIZATION_FAILED, existing or not.
    for topic in ["payroll", "does_not_exist"] {
        let consumer: BaseConsumer = alice.create().expect("consumer");
        let t = topic.to_string();
        let md = tokio::task::spawn_blocking(move || {
            consumer.fetch_metadata(Some(&t), Duration::from_secs(10))
        })
        .await
        .expect("join")
        .expect("metadata");
        assert_eq!(
            md.topics()[0].error(),
            Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            "{topic}"
        );
    }

    // Reading outside the marketing-* groups is refused with GROUP_AUTHORIZATION_FAILED.
    let consumer: StreamConsumer = alice
        .clone()
        .set("group.id", "other-group")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&["customer_feedback"])
        .expect("subscribe");
    let err = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
        .await
        .expect("an error arrives in time")
        .expect_err("no message without READ on the group");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed),
        "{err}"
    );

    // The audit log names the denial and the rule that decided (written by its own thread:
    // wait for what is queued).
    let log = s.authz.audit.as_ref().expect("audit");
    assert!(log.flush(Duration::from_secs(5)), "audit written");
    let audit = std::fs::read_to_string(s.pki.dir.path().join("audit.jsonl")).expect("audit log");
    let denial = audit
        .lines()
        .find(|l| {
            l.contains("\"DENY\"") && l.contains("User:bob") && l.contains("customer_feedback")
        })
        .unwrap_or_else(|| panic!("no denial for bob in:\n{audit}"));
    // librdkafka asks for metadata first: DESCRIBE is what bob lacks.
    assert!(denial.contains("\"operation\":\"Describe\""), "{denial}");
    assert!(denial.contains("no rule matched: default deny"), "{denial}");
    assert!(audit
        .lines()
        .any(|l| l.contains("\"authentication\"") && l.contains("User:alice")));
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_read_stops_a_consumer_that_is_already_fetching() {
    let s = setup(SEEDS).await;
    let (alice, admin) = (s.client("alice"), s.client("admin"));
    common::produce(&admin, "customer_feedback", 10, 3).await;
    let consumer: StreamConsumer = alice
        .clone()
        .set("group.id", "marketing-live")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&["customer_feedback"])
        .expect("subscribe");
    for _ in 0..10 {
        tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("message in time")
            .expect("message");
    }
    // Revoke: the policy file loses alice's READ; the gateway reloads it.
    let revoked = SEEDS
        .replacen(
            "operation = \"Read\"\nresource_type = \"Topic\"",
            "operation = \"Read\"\nresource_type = \"Topic\"\n# revoked",
            1,
        )
        .replace(
            "name = \"customer_feedback\"",
            "name = \"customer_feedback_revoked\"",
        );
    std::fs::write(s.pki.dir.path().join("policy.toml"), revoked).expect("write policy");
    s.authz.authorizer.reload().expect("reload");
    common::produce(&admin, "customer_feedback", 10, 3).await;
    // From now on the consumer gets no data, only authorization errors.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut denied = false;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            Ok(Ok(m)) => panic!(
                "data after revoke: partition {} offset {}",
                m.partition(),
                m.offset()
            ),
            Ok(Err(e)) => {
                assert!(is_topic_denied(&e), "unexpected error {e}");
                denied = true;
            }
            Err(_) => {}
        }
    }
    assert!(denied, "the consumer must be told it lost access");
    let started = std::time::Instant::now();
    drop(consumer);
    eprintln!("consumer closed in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    s.gateway.shutdown().await;
    eprintln!("gateway stopped in {:?}", started.elapsed());
}

/// kafka-python 3 opens incremental fetch sessions (KIP-227): later fetches name no topic and
/// the broker sends data for the session's partitions. kgate turns every fetch into a full
/// fetch, so the revoke is seen at the very next fetch and no record produced after it
/// reaches the consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_read_stops_a_fetch_session_client_at_its_next_fetch() {
    use tokio::io::AsyncBufReadExt;
    let s = setup(SEEDS).await;
    let admin = s.client("admin");
    common::produce(&admin, "customer_feedback", 10, 3).await;
    let python = std::env::var_os("KGATE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
        });
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/fetch_until.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args([
            s.gateway.bootstrap_servers().as_str(),
            s.pki.path("ca.pem").as_str(),
            "SCRAM-SHA-512",
            "alice",
            "alice-secret",
            "customer_feedback",
            "marketing-sessions",
            "16",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kafka-python (run ./test.sh to install it)");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let count_of = |line: &str| -> Option<u64> {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                v.get("count")
                    .or_else(|| v.get("done"))
                    .and_then(|c| c.as_u64())
            })
    };
    // Wait until the first 10 records arrived.
    let mut seen = 0;
    while seen < 10 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("kafka-python consumes in time")
            .expect("read")
            .expect("a line");
        seen = count_of(&line).unwrap_or(seen);
    }
    let revoked = SEEDS.replace(
        "name = \"customer_feedback\"",
        "name = \"customer_feedback_revoked\"",
    );
    std::fs::write(s.pki.dir.path().join("policy.toml"), revoked).expect("write policy");
    s.authz.authorizer.reload().expect("reload");
    common::produce(&admin, "customer_feedback", 10, 3).await;
    let mut last = seen;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(c) = count_of(&line) {
            last = c;
        }
    }
    assert_eq!(
        last, 10,
        "no record produced after the revoke reached the consumer"
    );
    let _ = child.wait().await;
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reloads_under_load_lose_no_acknowledged_message() {
    let s = setup(SEEDS).await;
    let bob = s.client("bob");
    let n = 3000;
    let producer = {
        let bob = bob.clone();
        tokio::spawn(
            async move { kgate_labs::client::produce(&bob, "system_logs", n, 200, 7).await },
        )
    };
    // Reload the (unchanged and then equivalent) policy again and again while bob produces.
    let path = s.pki.dir.path().join("policy.toml");
    let mut reloads = 0;
    while !producer.is_finished() && reloads < 200 {
        let text = if reloads % 2 == 0 {
            SEEDS.to_string()
        } else {
            format!("{SEEDS}\n# reload {reloads}\n")
        };
        std::fs::write(&path, text).expect("write policy");
        s.authz.authorizer.reload().expect("reload");
        reloads += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = producer
        .await
        .expect("join")
        .expect("every message acknowledged");
    assert_eq!(report.acked, n);
    assert!(reloads > 5, "reloads happened during the load ({reloads})");
    let admin = s.client("admin");
    let got = kgate_labs::client::consume(
        &admin,
        "system_logs",
        "audit-reader",
        n,
        Duration::from_secs(60),
    )
    .await
    .expect("consume");
    let mut all: Vec<u64> = got.values().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "every acknowledged message is there once");
    s.gateway.shutdown().await;
}
