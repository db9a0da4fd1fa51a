//! Faults injected by the gateway, seen by real librdkafka clients over SASL_SSL: latency for
//! one principal, errors for one topic (retried, or fatal), dropped connections; and the
//! rules managed through the admin endpoint with `kgate fault`.

mod common;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kgate_proxy::admin::{AdminOptions, AdminServer, Reload};
use kgate_proxy::faults::FaultRule;
use kgate_proxy::Gateway;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Produces `n` records one after the other; returns each one's time to acknowledgement, or
/// the first error.
async fn produce_timed(
    client: &ClientConfig,
    topic: &str,
    n: usize,
) -> Result<Vec<Duration>, KafkaError> {
    produce_from(client, topic, 0, n).await
}

/// As [`produce_timed`], with values `first..first + n`.
async fn produce_from(
    client: &ClientConfig,
    topic: &str,
    first: usize,
    n: usize,
) -> Result<Vec<Duration>, KafkaError> {
    let producer: FutureProducer = client
        .clone()
        .set("message.timeout.ms", "15000")
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "20")
        .set("retry.backoff.max.ms", "100")
        .create()
        .expect("producer");
    let mut took = Vec::with_capacity(n);
    for i in first..first + n {
        let value = i.to_string();
        let start = Instant::now();
        producer
            .send(
                FutureRecord::to(topic).key("k").payload(&value),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)?;
        took.push(start.elapsed());
    }
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Setup {
    _cluster: kgate_labs::EmbeddedCluster,
    pki: common::Pki,
    gateway: Gateway,
}

impl Setup {
    async fn new() -> Self {
        let cluster = common::cluster_with_topic("orders", 3);
        cluster.create_topic("audit", 1).expect("topic audit");
        let pki = common::Pki::new();
        let mut config = common::gateway_config(&cluster);
        config.tls = Some(pki.tls(false));
        config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
        let (gateway, _) = common::start_gateway(config).await;
        Self {
            _cluster: cluster,
            pki,
            gateway,
        }
    }

    fn client(&self, user: &str) -> ClientConfig {
        common::sasl_ssl_client(
            &self.gateway.bootstrap_servers(),
            &self.pki,
            "SCRAM-SHA-512",
            user,
            &format!("{user}-secret"),
        )
    }

    fn add(&self, rule: &str) -> u64 {
        let rule: FaultRule = rule.parse().expect("rule");
        self.gateway.shared().config.faults.add(rule).expect("add")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_slows_one_principal_and_not_the_other() {
    let s = Setup::new().await;
    // Warm both clients' connections and metadata first.
    produce_timed(&s.client("alice"), "orders", 1)
        .await
        .expect("alice warm-up");
    s.add("latency=400ms principal=User:alice api=produce");
    let alice = produce_timed(&s.client("alice"), "orders", 5)
        .await
        .expect("alice produces, slowly");
    let bob = produce_timed(&s.client("bob"), "orders", 5)
        .await
        .expect("bob produces");
    let slowest_alice_min = alice.iter().min().copied().unwrap_or_default();
    assert!(
        slowest_alice_min >= Duration::from_millis(400),
        "every alice produce waits the injected 400 ms: {alice:?}"
    );
    assert!(
        median(bob.clone()) < Duration::from_millis(300),
        "bob is not slowed: {bob:?}"
    );
    let injected = s.gateway.shared().config.faults.injected();
    assert!(injected.latency >= 5, "{injected:?}");
    assert_eq!((injected.errors, injected.disconnects), (0, 0));
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_fail_one_topic_retried_or_fatal_while_another_is_written() {
    let s = Setup::new().await;
    let client = s.client("alice");
    produce_timed(&client, "orders", 1).await.expect("warm-up");

    // A retriable error three times: librdkafka retries and every record is written once.
    let table = &s.gateway.shared().config.faults;
    s.add("error=NOT_LEADER_OR_FOLLOWER topic=orders api=produce count=3");
    produce_timed(&client, "orders", 4)
        .await
        .expect("retried through NOT_LEADER_OR_FOLLOWER");
    assert_eq!(table.injected().errors, 3, "exactly three produces failed");
    assert!(!table.is_active(), "the rule went after count=3");

    // A fatal error on orders: the producer sees it; audit, in the same producer, is written.
    s.add("error=MESSAGE_TOO_LARGE topic=orders");
    let producer: FutureProducer = client
        .clone()
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "50")
        .create()
        .expect("producer");
    let to_orders = producer.send_result(FutureRecord::to("orders").key("k").payload("x"));
    let to_audit = producer.send_result(FutureRecord::to("audit").key("k").payload("y"));
    let (Ok(to_orders), Ok(to_audit)) = (to_orders, to_audit) else {
        panic!("enqueue failed");
    };
    match to_orders.await {
        Ok(Err((KafkaError::MessageProduction(code), _))) => {
            assert_eq!(code, RDKafkaErrorCode::MessageSizeTooLarge)
        }
        other => panic!("orders should fail with MESSAGE_TOO_LARGE, got {other:?}"),
    }
    match to_audit.await {
        Ok(Ok(_)) => {}
        other => panic!("audit should be written, got {other:?}"),
    }
    assert_eq!(table.clear(), 1);

    // Nothing that failed was written: 1 warm-up + 4 retried records, no duplicate.
    let consumer: BaseConsumer = client.create().expect("consumer");
    let written: i64 = (0..3)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks("orders", p, Duration::from_secs(10))
                .expect("watermarks");
            high - low
        })
        .sum();
    assert_eq!(
        written, 5,
        "1 warm-up + 4 retried, none twice, the failed one not at all"
    );
    let got = common::consume(&client, "orders", "check-orders", 5).await;
    let mut values: Vec<u64> = got.values().flatten().map(|(_, v)| *v).collect();
    values.sort_unstable();
    assert_eq!(values, [0, 0, 1, 2, 3], "warm-up 0, then 0..4");
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_survived_and_metadata_errors_reach_the_client() {
    let s = Setup::new().await;
    let client = s.client("bob");
    produce_timed(&client, "orders", 1).await.expect("warm-up");
    let table = &s.gateway.shared().config.faults;
    s.add("disconnect principal=User:bob api=produce count=1");
    produce_timed(&client, "orders", 3)
        .await
        .expect("bob's producer reconnects and delivers");
    assert_eq!(table.injected().disconnects, 1, "one connection dropped");

    // A topic whose metadata keeps failing cannot be written: the client times out.
    s.add("error=LEADER_NOT_AVAILABLE topic=audit api=metadata");
    let producer: FutureProducer = s
        .client("alice")
        .set("message.timeout.ms", "3000")
        .create()
        .expect("producer");
    let r = producer
        .send(
            FutureRecord::to("audit").key("k").payload("z"),
            Duration::from_secs(5),
        )
        .await;
    assert!(r.is_err(), "no leader, no write: {r:?}");
    assert!(table.injected().errors >= 1);
    s.gateway.shutdown().await;
}

/// Remembers the largest broker throttle time librdkafka reports in its statistics.
#[derive(Clone, Default)]
struct ThrottleSeen(Arc<std::sync::atomic::AtomicI64>);

impl rdkafka::ClientContext for ThrottleSeen {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for b in statistics.brokers.values() {
            if let Some(w) = &b.throttle {
                self.0
                    .fetch_max(w.max, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_what_librdkafka_reports_as_throttle_time() {
    let s = Setup::new().await;
    s.add("throttle=300ms principal=User:alice api=produce");
    let seen = ThrottleSeen::default();
    let producer: FutureProducer<ThrottleSeen> = s
        .client("alice")
        .set("statistics.interval.ms", "100")
        .set("message.timeout.ms", "15000")
        .set("linger.ms", "0")
        .create_with_context(seen.clone())
        .expect("producer");
    for i in 0..3 {
        let start = Instant::now();
        producer
            .send(
                FutureRecord::to("orders").key("k").payload(&i.to_string()),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("throttled, not failed");
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{i}: {:?}",
            start.elapsed()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.0.load(std::sync::atomic::Ordering::Relaxed) < 300 {
        assert!(
            Instant::now() < deadline,
            "librdkafka never reported the throttle time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s.gateway.shared().config.faults.injected().throttles >= 3);
    // bob is not throttled.
    let bob = produce_timed(&s.client("bob"), "orders", 3)
        .await
        .expect("bob");
    assert!(median(bob.clone()) < Duration::from_millis(300), "{bob:?}");
    s.gateway.shutdown().await;
}

struct NoReload;
impl Reload for NoReload {
    fn reload(&self) -> Result<String, String> {
        Ok("nothing to reload".into())
    }
}

fn http(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("admin endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(raw.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The admin token the tests' endpoints use, and the 0600 file `kgate fault` reads it from.
const TOKEN: &str = "test-admin-token-0123456789abcdef";

fn token_file() -> &'static std::path::Path {
    static FILE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = FILE.get_or_init(|| {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join("admin.token"))
            .expect("token file");
        writeln!(f, "{TOKEN}").expect("token");
        dir
    });
    // Leaked on purpose: it lives as long as the test process.
    Box::leak(dir.path().join("admin.token").into_boxed_path())
}

fn options(allow_faults: bool) -> AdminOptions {
    AdminOptions {
        allow_faults,
        token: Some(TOKEN.into()),
    }
}

fn kgate_fault(admin: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kgate"))
        .arg("fault")
        .args(args)
        .args(["--admin", &admin.to_string()])
        .arg("--token-file")
        .arg(token_file())
        .env_remove("KGATE_ADMIN")
        .env_remove("KGATE_ADMIN_TOKEN_FILE")
        .output()
        .expect("run kgate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kgate_fault_manages_the_rules_of_a_running_gateway() {
    let s = Setup::new().await;
    let shared = s.gateway.shared().clone();
    let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let admin = AdminServer::start(local, shared.clone(), Arc::new(NoReload), options(true))
        .await
        .expect("admin endpoint");
    let addr = admin.addr();
    let cli = move |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kgate_fault(addr, &args)
    };
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();

    let (ok, out) = tokio::task::spawn_blocking(move || {
        cli(words("add latency=350ms principal=User:alice api=produce"))
    })
    .await
    .expect("cli");
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "#1 latency=350ms principal=User:alice api=produce"
    );
    // The rule is live: alice's produce waits.
    let took = produce_timed(&s.client("alice"), "orders", 2)
        .await
        .expect("produce");
    assert!(
        took.iter().all(|t| *t >= Duration::from_millis(350)),
        "{took:?}"
    );

    let (ok, out) = tokio::task::spawn_blocking(move || {
        cli(words("add error=NOT_ENOUGH_REPLICAS topic=orders count=2"))
    })
    .await
    .expect("cli");
    assert!(
        ok && out.starts_with("#2 error=NOT_ENOUGH_REPLICAS"),
        "{out}"
    );
    let (ok, out) = tokio::task::spawn_blocking(move || cli(words("list")))
        .await
        .expect("cli");
    assert!(ok, "{out}");
    assert!(
        out.contains("#1 latency=350ms") && out.contains("applied 2"),
        "{out}"
    );
    assert!(
        out.contains("#2 error=NOT_ENOUGH_REPLICAS topic=orders count=2"),
        "{out}"
    );

    // Mistakes: named with the fix, nothing sent.
    let (ok, out) = tokio::task::spawn_blocking(move || cli(words("add latency=fast")))
        .await
        .expect("cli");
    assert!(!ok && out.contains("write milliseconds"), "{out}");
    let (ok, out) = tokio::task::spawn_blocking(move || cli(words("remove 99")))
        .await
        .expect("cli");
    assert!(
        !ok && out.contains("(404)") && out.contains("no fault rule #99"),
        "{out}"
    );
    let (ok, out) = tokio::task::spawn_blocking(move || cli(words("remove one")))
        .await
        .expect("cli");
    assert!(!ok && out.contains("not a rule id"), "{out}");
    assert_eq!(shared.config.faults.rules().len(), 2);

    let (ok, out) = tokio::task::spawn_blocking(move || cli(words("remove #1")))
        .await
        .expect("cli");
    assert!(ok && out.contains("#1 removed"), "{out}");
    let (ok, out) = tokio::task::spawn_blocking(move || cli(words("clear")))
        .await
        .expect("cli");
    assert!(ok && out.contains("1 fault rules removed"), "{out}");
    assert!(!shared.config.faults.is_active());

    // The raw endpoint: bad rule 400, oversized body 413, metrics carry the counts.
    let (status, body) = tokio::task::spawn_blocking(move || {
        http(
            addr,
            &format!(
                "POST /faults HTTP/1.1\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 9\r\n\r\nlatency=x"
            ),
        )
    })
    .await
    .expect("http");
    assert_eq!(status, 400, "{body}");
    // Changes without the token, with a wrong one, from a web page or for another Host are
    // refused, and nothing changes; reads stay open.
    for (what, raw, code) in [
        (
            "no token",
            "POST /faults HTTP/1.1\r\ncontent-length: 10\r\n\r\ndisconnect".to_string(),
            401,
        ),
        (
            "wrong token",
            "DELETE /faults HTTP/1.1\r\nauthorization: Bearer test-admin-token-0123456789abcdeX\r\n\r\n".to_string(),
            401,
        ),
        (
            "a web page",
            format!("POST /faults HTTP/1.1\r\norigin: http://evil.example\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 10\r\n\r\ndisconnect"),
            403,
        ),
        (
            "DNS rebinding",
            format!("POST /faults HTTP/1.1\r\nhost: evil.example:{}\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 10\r\n\r\ndisconnect", addr.port()),
            403,
        ),
        (
            "a page reading metrics",
            "GET /metrics HTTP/1.1\r\norigin: http://evil.example\r\n\r\n".to_string(),
            403,
        ),
    ] {
        let (status, body) = tokio::task::spawn_blocking(move || http(addr, &raw))
            .await
            .expect("http");
        assert_eq!(status, code, "{what}: {body}");
    }
    assert!(!shared.config.faults.is_active());
    let (status, _) = tokio::task::spawn_blocking(move || {
        http(
            addr,
            &format!(
                "GET /healthz HTTP/1.1\r\nhost: localhost:{}\r\n\r\n",
                addr.port()
            ),
        )
    })
    .await
    .expect("http");
    assert_eq!(status, 200, "reads are open on the admin address");
    let (status, _) = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "POST /faults HTTP/1.1\r\ncontent-length: 99999\r\n\r\n",
        )
    })
    .await
    .expect("http");
    assert_eq!(status, 413);
    let (status, _) =
        tokio::task::spawn_blocking(move || http(addr, "POST /faults HTTP/1.1\r\n\r\ndisconnect"))
            .await
            .expect("http");
    assert_eq!(status, 411, "no content-length, no rule");
    assert!(!shared.config.faults.is_active());
    let (status, metrics) =
        tokio::task::spawn_blocking(move || http(addr, "GET /metrics HTTP/1.1\r\n\r\n"))
            .await
            .expect("http");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("kgate_faults_injected_total{effect=\"latency\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("kgate_fault_rules 0"), "{metrics}");
    admin.stop();

    // Without --allow-faults the endpoint lists but refuses changes, and the CLI says how.
    let locked = AdminServer::start(local, shared.clone(), Arc::new(NoReload), options(false))
        .await
        .expect("admin endpoint");
    let addr = locked.addr();
    let (ok, out) = tokio::task::spawn_blocking(move || kgate_fault(addr, &["add", "disconnect"]))
        .await
        .expect("cli");
    assert!(
        !ok && out.contains("(403)") && out.contains("--allow-faults"),
        "{out}"
    );
    let (ok, out) = tokio::task::spawn_blocking(move || kgate_fault(addr, &["list"]))
        .await
        .expect("cli");
    assert!(ok && out.contains("no fault rules"), "{out}");
    assert!(!shared.config.faults.is_active());
    locked.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // No endpoint at all: one line that says what to start.
    let (ok, out) = tokio::task::spawn_blocking(move || kgate_fault(addr, &["list"]))
        .await
        .expect("cli");
    assert!(
        !ok && out.contains("cannot reach the admin endpoint"),
        "{out}"
    );
    s.gateway.shutdown().await;
}
