//! Resources a client takes before and after login are bounded: connections per address,
//! the TLS handshake and authentication time, idle connections after login, and failed logins
//! from one address that wait longer each time.

mod common;

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use common::raw::RawClient;

async fn gateway(
    tune: impl FnOnce(&mut kgate_proxy::GatewayConfig),
    tls: bool,
) -> (
    kgate_labs::EmbeddedCluster,
    common::Pki,
    kgate_proxy::Gateway,
) {
    let cluster = common::cluster_with_topic("events", 1);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    if tls {
        config.tls = Some(pki.tls(false));
    }
    tune(&mut config);
    let (gateway, _) = common::start_gateway(config).await;
    (cluster, pki, gateway)
}

/// Waits until the peer closes `stream` (or `limit` passes); returns how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(start + limit),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_at_most_its_share_of_connections() {
    let (_c, _p, gw) = gateway(|c| c.max_connections_per_ip = 5, false).await;
    let addr = gw.bootstrap_addr();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sixth = TcpStream::connect(addr).await.expect("connect");
    assert!(
        closed_within(&mut sixth, Duration::from_secs(2))
            .await
            .is_some(),
        "the sixth connection from one address is closed at once"
    );
    let text = gw.shared().metrics.render(0, 0, false);
    assert!(text.contains("kgate_connections_refused_total 1"), "{text}");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A slot came back: a real client logs in and is served.
    let mut c = RawClient::login(&addr.to_string(), "alice", "alice-secret").await;
    let v = c.version(ApiKey::Metadata, 9);
    let _: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            v,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshakes_slow_logins_and_idle_connections_are_closed_on_time() {
    let (_c, _p, gw) = gateway(
        |c| {
            c.tls_handshake_timeout = Duration::from_millis(400);
        },
        true,
    )
    .await;
    // TLS: a client that connects and says nothing.
    let mut silent = TcpStream::connect(gw.bootstrap_addr())
        .await
        .expect("connect");
    let took = closed_within(&mut silent, Duration::from_secs(3))
        .await
        .expect("closed");
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "closed after {took:?}"
    );
    gw.shutdown().await;

    let (_c, _p, gw) = gateway(
        |c| {
            c.authentication_timeout = Duration::from_millis(400);
            c.idle_timeout = Duration::from_millis(600);
        },
        false,
    )
    .await;
    // Authentication: connected, never authenticates.
    let mut lazy = TcpStream::connect(gw.bootstrap_addr())
        .await
        .expect("connect");
    let took = closed_within(&mut lazy, Duration::from_secs(3))
        .await
        .expect("closed");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    // After login: served while busy, closed once idle longer than the timeout.
    let mut c = RawClient::login(&gw.bootstrap_addr().to_string(), "alice", "alice-secret").await;
    let v = c.version(ApiKey::Metadata, 9);
    let meta = MetadataRequest::default().with_topics(None);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _: MetadataResponse = c.call(ApiKey::Metadata, v, &meta).await;
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(c
        .try_call::<_, MetadataResponse>(ApiKey::Metadata, v, &meta)
        .await
        .is_err());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_failing_waits_longer_each_time() {
    let (_c, _p, gw) = gateway(|_| {}, false).await;
    let addr = gw.bootstrap_addr().to_string();
    // How long the verdict (error 58) takes to come back, failure after failure.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (_c, a) = RawClient::try_login(&addr, "alice", "wrong").await;
        assert_eq!(a.error_code, 58);
        answers.push(start.elapsed());
    }
    // Held 0, 100, 300, 700, 1500 ms beyond Kafka's 100 ms close delay (doubling per
    // failure): the first answer comes at once, the fifth about 1.5 s later.
    assert!(answers[0] < Duration::from_millis(500), "{answers:?}");
    assert!(
        answers[4] >= Duration::from_millis(1400),
        "the fifth verdict came after {:?} ({answers:?})",
        answers[4]
    );
    // A real user's login from the same address does not reset a guesser's backoff.
    let _ = RawClient::login(&addr, "alice", "alice-secret").await;
    let start = Instant::now();
    let (_c, a) = RawClient::try_login(&addr, "alice", "wrong").await;
    assert_eq!(a.error_code, 58);
    assert!(
        start.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    gw.shutdown().await;
}
