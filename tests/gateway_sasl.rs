//! Real librdkafka clients through kgate over SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN)
//! and over mTLS, to the embedded 3-broker cluster.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

async fn round_trip(mechanism: &str) {
    let topic = "payments";
    let cluster = common::cluster_with_topic(topic, 6);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let (gateway, _) = common::start_gateway(config).await;
    let client = common::sasl_ssl_client(
        &gateway.bootstrap_servers(),
        &pki,
        mechanism,
        "alice",
        "alice-secret",
    );
    common::produce(&client, topic, 500, 23).await;
    let got = common::consume(&client, topic, "group-a", 500).await;
    common::assert_exact_in_order(&got, 500, 23);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_512_over_tls_produces_and_consumes_in_a_group() {
    round_trip("SCRAM-SHA-512").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_over_tls_produces_and_consumes_in_a_group() {
    round_trip("SCRAM-SHA-256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_over_tls_produces_and_consumes_in_a_group() {
    round_trip("PLAIN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_client_certificate_authenticates() {
    let topic = "telemetry";
    let cluster = common::cluster_with_topic(topic, 4);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(true));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let (gateway, _) = common::start_gateway(config).await;
    let mut client = rdkafka::ClientConfig::new();
    client
        .set("bootstrap.servers", gateway.bootstrap_servers())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", pki.path("ca.pem"))
        .set("ssl.certificate.location", pki.path("alice.pem"))
        .set("ssl.key.location", pki.path("alice-key.pem"));
    common::produce(&client, topic, 300, 11).await;
    let got = common::consume(&client, topic, "group-m", 300).await;
    common::assert_exact_in_order(&got, 300, 11);

    // Without a client certificate the TLS handshake is refused.
    let mut anonymous = rdkafka::ClientConfig::new();
    anonymous
        .set("bootstrap.servers", gateway.bootstrap_servers())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", pki.path("ca.pem"));
    let consumer: BaseConsumer = anonymous.create().expect("consumer");
    let result = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(3))
            .map(|_| ())
    })
    .await
    .expect("join");
    assert!(
        result.is_err(),
        "a client without certificate must not get metadata"
    );
    gateway.shutdown().await;
}

/// librdkafka reports authentication failures through its error callback; collect them.
#[derive(Default, Clone)]
struct Errors(Arc<std::sync::Mutex<Vec<String>>>);

impl rdkafka::ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("{error}: {reason}"));
    }
}
impl rdkafka::consumer::ConsumerContext for Errors {}

async fn auth_error(client: rdkafka::ClientConfig) -> String {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = client
        .create_with_context(errors.clone())
        .expect("consumer");
    let seen = errors.clone();
    tokio::task::spawn_blocking(move || {
        let result = consumer.fetch_metadata(None, Duration::from_secs(3));
        assert!(result.is_err(), "metadata must not be served");
        // Error callbacks are delivered from poll().
        for _ in 0..50 {
            let _ = consumer.poll(Duration::from_millis(100));
            if !seen.0.lock().expect("lock").is_empty() {
                break;
            }
        }
    })
    .await
    .expect("join");
    let all = errors.0.lock().expect("lock").join("\n");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_get_the_same_answer_and_others_carry_on() {
    let topic = "orders";
    let cluster = common::cluster_with_topic(topic, 3);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let (gateway, _) = common::start_gateway(config).await;
    let bootstrap = gateway.bootstrap_servers();
    let wrong = auth_error(common::sasl_ssl_client(
        &bootstrap,
        &pki,
        "SCRAM-SHA-512",
        "alice",
        "nope",
    ))
    .await;
    let unknown = auth_error(common::sasl_ssl_client(
        &bootstrap,
        &pki,
        "SCRAM-SHA-512",
        "mallory",
        "x",
    ))
    .await;
    let expected = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
    assert!(wrong.contains(expected), "wrong password: {wrong}");
    assert!(unknown.contains(expected), "unknown user: {unknown}");
    let plain = auth_error(common::sasl_ssl_client(
        &bootstrap, &pki, "PLAIN", "alice", "nope",
    ))
    .await;
    assert!(
        plain.contains("Authentication failed: Invalid username or password"),
        "{plain}"
    );
    // The gateway still serves a good client.
    let good = common::sasl_ssl_client(&bootstrap, &pki, "SCRAM-SHA-256", "bob", "bob-secret");
    common::produce(&good, topic, 50, 5).await;
    gateway.shutdown().await;
}
