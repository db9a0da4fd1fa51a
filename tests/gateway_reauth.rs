//! SASL session lifetime and re-authentication (KIP-368) through kgate: librdkafka
//! re-authenticates on its open connections without losing a record; a password changed
//! mid-run stops the client at its next re-authentication; raw clients show the refusals
//! (another principal, another mechanism), the lifetime on the wire, the expiry close and
//! that a re-authentication among pipelined requests keeps every response in order.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_auth::{CredentialStore, Mechanism, SharedCredentials};
use kgate_proxy::credentials::{CredentialAuthenticator, SaslMechanism};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

use common::raw::RawClient;

/// A gateway whose sessions last `lifetime`, with alice and bob (SCRAM and PLAIN); the
/// credential handle lets a test change a password as `kgate users passwd` would.
struct Setup {
    _cluster: kgate_labs::EmbeddedCluster,
    pki: common::Pki,
    gateway: kgate_proxy::Gateway,
    creds: SharedCredentials,
}

async fn setup(lifetime: Duration, tls: bool) -> Setup {
    setup_with(lifetime, tls, false).await
}

async fn setup_with(lifetime: Duration, tls: bool, revoke: bool) -> Setup {
    let cluster = common::cluster_with_topic("events", 3);
    let pki = common::Pki::new();
    let path = pki.dir.path().join("users.toml");
    let mut store = CredentialStore::new();
    for (user, password) in [("alice", "alice-secret"), ("bob", "bob-secret")] {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            store.add(user, m, password.as_bytes(), 4096).expect("user");
        }
    }
    store.save(&path).expect("save users");
    let creds = SharedCredentials::load(&path).expect("load users");
    let mut config = common::gateway_config(&cluster);
    if tls {
        config.tls = Some(pki.tls(false));
    }
    config.sasl.authenticator = Some(Arc::new(CredentialAuthenticator::new(
        creds.clone(),
        SaslMechanism::all(),
    )));
    config.sasl.session_lifetime = lifetime;
    config.sasl.revoke_sessions_on_change = revoke;
    let (gateway, _) = common::start_gateway(config).await;
    Setup {
        _cluster: cluster,
        pki,
        gateway,
        creds,
    }
}

fn metric(gateway: &kgate_proxy::Gateway, name: &str) -> u64 {
    let text = gateway.shared().metrics.render(0, 0, false);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("kgate_{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} in {text}"))
}

/// Produces one record every 10 ms for `run`; returns the acknowledged and failed counts and
/// how many client connections were open at the end (while the producer still lived).
async fn produce_for(
    gateway: &kgate_proxy::Gateway,
    client: &ClientConfig,
    run: Duration,
) -> (u64, u64, u64) {
    let producer: FutureProducer = client
        .clone()
        .set("message.timeout.ms", "6000")
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < run {
        let value = i.to_string();
        let key = format!("k{}", i % 7);
        match producer.send_result(FutureRecord::to("events").key(&key).payload(&value)) {
            Ok(f) => sent.push(f),
            Err((e, _)) => panic!("enqueue: {e}"),
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = producer.flush(Duration::from_secs(10));
    let (mut ok, mut failed) = (0, 0);
    for f in sent {
        match f.await {
            Ok(Ok(_)) => ok += 1,
            _ => failed += 1,
        }
    }
    let open = gateway.open_connections() as u64;
    drop(producer);
    (ok, failed, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_reauthenticates_every_connection_without_losing_a_record() {
    let s = setup(Duration::from_secs(2), true).await;
    let client = common::sasl_ssl_client(
        &s.gateway.bootstrap_servers(),
        &s.pki,
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    );
    let (ok, failed, open) = produce_for(&s.gateway, &client, Duration::from_secs(20)).await;
    assert_eq!(failed, 0, "no record lost");
    assert!(ok > 1000, "{ok} records acknowledged");
    let reauths = metric(&s.gateway, "reauth_success_total");
    println!("{ok} records, {reauths} re-authentications, {open} connections open at the end");
    assert_eq!(
        metric(&s.gateway, "sessions_expired_total"),
        0,
        "no session ran out"
    );
    assert_eq!(metric(&s.gateway, "reauth_failure_total"), 0);
    assert!(open >= 1);
    assert!(
        reauths >= 8 * open,
        "{reauths} re-authentications over {open} open connections in 20 s with a 2 s lifetime"
    );
    // Every record is in the cluster exactly once.
    let got = common::consume(&client, "events", "reauth-check", ok as usize).await;
    let mut values: Vec<u64> = got.values().flatten().map(|(_, v)| *v).collect();
    values.sort_unstable();
    values.dedup();
    assert_eq!(values.len() as u64, ok);
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_fails_at_the_next_reauthentication() {
    let s = setup(Duration::from_secs(2), true).await;
    let errors = Arc::new(AtomicBool::new(false));
    let client = common::sasl_ssl_client(
        &s.gateway.bootstrap_servers(),
        &s.pki,
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    );
    // Change alice's password (as `kgate users passwd` and a reload would) after 3 s.
    let creds = s.creds.clone();
    let changer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let path = creds.path().to_path_buf();
        let mut store = CredentialStore::load(&path).expect("users");
        store
            .set("alice", Mechanism::ScramSha512, b"new-secret", 4096)
            .expect("passwd");
        store.save(&path).expect("save");
        creds.reload().expect("reload");
    });
    let (ok, failed, _) = produce_for(&s.gateway, &client, Duration::from_secs(9)).await;
    changer.await.expect("password changed");
    errors.store(failed > 0, Ordering::Relaxed);
    assert!(ok > 0, "records went through before the change");
    assert!(
        failed > 0,
        "after the change and the next re-authentication nothing is acknowledged"
    );
    assert!(metric(&s.gateway, "reauth_failure_total") >= 1);
    s.gateway.shutdown().await;
}

async fn handshake(c: &mut RawClient, mechanism: &'static str) -> SaslHandshakeResponse {
    c.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    )
    .await
}

fn plain(user: &str, password: &str) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(format!("\0{user}\0{password}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_clients_see_the_lifetime_refusals_expiry_and_ordered_responses() {
    let s = setup(Duration::from_millis(1500), false).await;
    let addr = s.gateway.bootstrap_addr().to_string();

    // The lifetime goes out in SaslAuthenticate v1.
    let (mut c, auth) = RawClient::try_login(&addr, "alice", "alice-secret").await;
    assert_eq!(auth.error_code, 0);
    assert_eq!(auth.session_lifetime_ms, 1500);

    // Re-authentication among pipelined requests: every response in request order.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let meta = MetadataRequest::default().with_topics(None);
    let v = c.version(ApiKey::Metadata, 9);
    let first = c.send(ApiKey::Metadata, v, &meta).await;
    let hs = c
        .send(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await;
    let au = c
        .send(ApiKey::SaslAuthenticate, 1, &plain("alice", "alice-secret"))
        .await;
    let last = c.send(ApiKey::Metadata, v, &meta).await;
    let (id, m): (i32, MetadataResponse) = c.receive(ApiKey::Metadata, v).await.expect("first");
    assert_eq!(id, first);
    assert!(!m.brokers.is_empty());
    let (id, h): (i32, SaslHandshakeResponse) = c
        .receive(ApiKey::SaslHandshake, 1)
        .await
        .expect("handshake");
    assert_eq!((id, h.error_code), (hs, 0));
    let (id, a): (i32, SaslAuthenticateResponse) =
        c.receive(ApiKey::SaslAuthenticate, 1).await.expect("auth");
    assert_eq!((id, a.error_code, a.session_lifetime_ms), (au, 0, 1500));
    let (id, _): (i32, MetadataResponse) = c.receive(ApiKey::Metadata, v).await.expect("last");
    assert_eq!(id, last);

    // Another principal on re-authentication: refused, and the connection closes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    let a: SaslAuthenticateResponse = c
        .call(ApiKey::SaslAuthenticate, 1, &plain("bob", "bob-secret"))
        .await;
    assert_eq!(a.error_code, 58);
    assert!(c
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());

    // Another mechanism: refused with 33 and the mechanism in force, then closed.
    let (mut c, _) = RawClient::try_login(&addr, "alice", "alice-secret").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let h = handshake(&mut c, "SCRAM-SHA-256").await;
    assert_eq!(h.error_code, 33);
    assert_eq!(
        h.mechanisms
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>(),
        ["PLAIN"]
    );
    assert!(c
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());

    // A wrong password on re-authentication: 58, then closed.
    let (mut c, _) = RawClient::try_login(&addr, "alice", "alice-secret").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    let a: SaslAuthenticateResponse = c
        .call(ApiKey::SaslAuthenticate, 1, &plain("alice", "guess"))
        .await;
    assert_eq!(a.error_code, 58);
    assert!(c
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());

    // No re-authentication: the first request after expiry closes the connection.
    let (mut c, _) = RawClient::try_login(&addr, "alice", "alice-secret").await;
    let _: MetadataResponse = c.call(ApiKey::Metadata, v, &meta).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(c
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());
    assert!(metric(&s.gateway, "sessions_expired_total") >= 1);
    s.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_revoke_on_change_a_changed_password_closes_that_users_connections_at_once() {
    let s = setup_with(Duration::from_secs(3600), false, true).await;
    let addr = s.gateway.bootstrap_addr().to_string();
    let meta = MetadataRequest::default().with_topics(None);
    let mut alice = RawClient::login(&addr, "alice", "alice-secret").await;
    let mut bob = RawClient::login(&addr, "bob", "bob-secret").await;
    let v = alice.version(ApiKey::Metadata, 9);
    let _: MetadataResponse = alice.call(ApiKey::Metadata, v, &meta).await;
    // An unrelated change (bob's SHA-256 credential) leaves alice's PLAIN session alone...
    let path = s.creds.path().to_path_buf();
    let mut store = CredentialStore::load(&path).expect("users");
    store
        .set("bob", Mechanism::ScramSha256, b"bob-new", 4096)
        .expect("passwd");
    store.save(&path).expect("save");
    s.creds.reload().expect("reload");
    let _: MetadataResponse = alice.call(ApiKey::Metadata, v, &meta).await;
    // ... but bob logged in with PLAIN, checked against all his credentials: closed.
    assert!(bob
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());
    // Alice's password changes: her connection closes at its next request.
    let mut store = CredentialStore::load(&path).expect("users");
    store
        .set("alice", Mechanism::ScramSha512, b"alice-new", 4096)
        .expect("passwd");
    store.save(&path).expect("save");
    s.creds.reload().expect("reload");
    assert!(alice
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());
    s.gateway.shutdown().await;
}
