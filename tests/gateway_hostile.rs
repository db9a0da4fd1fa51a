//! Hostile and malformed clients against a running gateway, driven over raw sockets.
//!
//! Each case gets what a Kafka broker's `SaslServerAuthenticator` would do
//! (reference/kafka-security.md §3, §5 items 14–15), and afterwards the gateway still serves a
//! real librdkafka producer: a bad client costs its own connection and nothing else.
//!
//! The SASL cases use a SASL_PLAINTEXT gateway (the SASL state machine is the same as over
//! TLS); the garbage-instead-of-TLS case uses a TLS gateway.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, MetadataRequest, ProduceRequest,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
    SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kgate_labs::EmbeddedCluster;
use kgate_proxy::Gateway;
use rdkafka::ClientConfig;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// The topic the librdkafka producer writes to after each hostile case.
const TOPIC: &str = "hostile";
/// Bound of every single read, write or wait on a raw connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of the librdkafka check that the gateway still serves clients.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Kafka delays the close after a failed authentication by 100 ms; allow for timer slack.
const MIN_FAILURE_DELAY: Duration = Duration::from_millis(90);
/// Kafka's `sasl.server.max.receive.size` default.
const MAX_PRE_AUTH_FRAME: usize = 512 * 1024;
/// What `common::authenticator` enables, in the order the gateway lists them.
const ENABLED: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];
const UNSUPPORTED_VERSION: i16 = 35;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const PLAIN_FAILURE: &str = "Authentication failed: Invalid username or password";

// ---------------------------------------------------------------------------------------------
// The lab: an embedded cluster and a gateway in front of it.

struct Lab {
    gateway: Gateway,
    addr: SocketAddr,
    client: ClientConfig,
    _cluster: EmbeddedCluster,
    _dir: tempfile::TempDir,
}

impl Lab {
    /// A SASL_PLAINTEXT gateway offering SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN for
    /// alice/alice-secret and bob/bob-secret.
    async fn sasl_plaintext() -> Self {
        let cluster = common::cluster_with_topic(TOPIC, 3);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = common::gateway_config(&cluster);
        config.sasl.authenticator = Some(common::authenticator(dir.path()));
        let gateway = Gateway::start(config).await.expect("gateway starts");
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", gateway.bootstrap_servers())
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "SCRAM-SHA-256")
            .set("sasl.username", "bob")
            .set("sasl.password", "bob-secret");
        Self {
            addr: gateway.bootstrap_addr(),
            gateway,
            client,
            _cluster: cluster,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    /// A connection authenticated as alice with SaslHandshake v1 and PLAIN.
    async fn login(&self) -> Raw {
        let mut conn = self.connect().await;
        conn.handshake(1, "PLAIN").await;
        let resp = conn
            .call(1, &authenticate(plain_token("alice", "alice-secret")))
            .await;
        assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
        conn
    }

    /// A real librdkafka producer (SCRAM-SHA-256 as bob) still gets its messages acknowledged.
    async fn assert_still_serves(&self) {
        tokio::time::timeout(PRODUCE_TIMEOUT, common::produce(&self.client, TOPIC, 20, 4))
            .await
            .expect("a librdkafka producer is served in time");
    }

    /// Checks the gateway once more and shuts it down.
    async fn finish(self) {
        self.assert_still_serves().await;
        self.gateway.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A raw Kafka connection.

struct Raw {
    stream: TcpStream,
    correlation_id: i32,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            correlation_id: 0,
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    async fn send_frame(&mut self, body: &[u8]) {
        self.send_bytes(&frame(body)).await;
    }

    /// Sends a request and returns its correlation id.
    async fn send<R: Request>(&mut self, version: i16, body: &R) -> i32 {
        self.correlation_id += 1;
        let bytes = request_bytes(version, self.correlation_id, body);
        self.send_frame(&bytes).await;
        self.correlation_id
    }

    /// Reads one frame body; panics if the connection closes or nothing comes in time.
    async fn read_frame(&mut self) -> Vec<u8> {
        let read = async {
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await?;
            let len = usize::try_from(i32::from_be_bytes(size)).expect("non-negative size");
            let mut body = vec![0u8; len];
            self.stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        tokio::time::timeout(IO_TIMEOUT, read)
            .await
            .expect("a frame in time")
            .expect("a frame, not a closed connection")
    }

    /// Reads the response to `correlation_id`, decoded as `R::Response` of `version`.
    async fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let body = self.read_frame().await;
        decode_response::<R>(&body, version, correlation_id)
    }

    async fn call<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
        let id = self.send(version, body).await;
        self.receive::<R>(version, id).await
    }

    /// Waits until the gateway closes the connection; returns whatever arrived before.
    async fn closed(&mut self) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => panic!(
                    "connection still open after {IO_TIMEOUT:?} ({} bytes received)",
                    got.len()
                ),
                Ok(Ok(0)) => return got,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                // The gateway closed with our bytes unread in its buffer.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
                Ok(Err(e)) => panic!("read failed: {e}"),
            }
        }
    }

    /// The gateway closes the connection without sending a byte.
    async fn assert_closed_without_response(&mut self) {
        let got = self.closed().await;
        assert!(
            got.is_empty(),
            "expected a close without response, got {} bytes: {:02x?}",
            got.len(),
            &got[..got.len().min(64)]
        );
    }

    /// SaslHandshake of `version` for `mechanism`, which must be accepted.
    async fn handshake(&mut self, version: i16, mechanism: &'static str) {
        let resp = self
            .call(
                version,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
            )
            .await;
        assert_eq!(resp.error_code, 0, "handshake for {mechanism}");
        assert_eq!(mechanisms(&resp), ENABLED);
    }

    /// A Metadata request is answered with the gateway's brokers and the lab topic.
    async fn assert_metadata_served(&mut self) {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))]));
        let resp = self.call(9, &request).await;
        assert_eq!(resp.brokers.len(), 3, "{resp:?}");
        for broker in &resp.brokers {
            assert_eq!(broker.host.as_str(), "127.0.0.1");
        }
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].error_code, 0);
        assert_eq!(resp.topics[0].partitions.len(), 3);
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&i32::try_from(body.len()).expect("small").to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Header and body of a request, without the size prefix.
fn request_bytes<R: Request>(version: i16, correlation_id: i32, body: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("hostile-test")));
    let mut buf = Vec::new();
    header
        .encode(&mut buf, R::header_version(version))
        .expect("encode header");
    body.encode(&mut buf, version).expect("encode body");
    buf
}

/// A request with a v1 header (key, version, correlation id, client id) and `body` as is: for
/// keys and versions kafka-protocol cannot encode, and for hostile bodies.
fn raw_request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn decode_response<R: Request>(body: &[u8], version: i16, correlation_id: i32) -> R::Response {
    let mut buf = body;
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(&mut buf, header_version).expect("response header");
    assert_eq!(header.correlation_id, correlation_id, "correlation id");
    let resp = <R::Response as Decodable>::decode(&mut buf, version).expect("response body");
    assert!(
        buf.is_empty(),
        "{} trailing bytes in the response",
        buf.len()
    );
    resp
}

fn mechanisms(resp: &SaslHandshakeResponse) -> Vec<&str> {
    resp.mechanisms.iter().map(|m| m.as_str()).collect()
}

fn api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kgate-hostile-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
}

fn api_range(resp: &ApiVersionsResponse, key: ApiKey) -> Option<(i16, i16)> {
    resp.api_keys
        .iter()
        .find(|v: &&ApiVersion| v.api_key == key as i16)
        .map(|v| (v.min_version, v.max_version))
}

fn authenticate(token: Vec<u8>) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default().with_auth_bytes(token.into())
}

fn plain_token(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

fn handshake_request(mechanism: &'static str) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))
}

// ---------------------------------------------------------------------------------------------
// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), written out for these tests.

struct ScramClient {
    user: &'static str,
    password: &'static str,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl ScramClient {
    fn new(user: &'static str, password: &'static str) -> Self {
        let nonce: String = (0..24)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        Self {
            user,
            password,
            nonce,
            server_signature: None,
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare()).into_bytes()
    }

    /// Checks server-first and returns client-final with the proof.
    fn client_final(&mut self, server_first: &[u8]) -> Vec<u8> {
        let server_first = std::str::from_utf8(server_first).expect("server-first is UTF-8");
        let attr = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .unwrap_or_else(|| panic!("server-first {server_first:?} lacks {name}"))
        };
        let nonce = attr("r=");
        assert!(
            nonce.starts_with(&self.nonce) && nonce.len() > self.nonce.len(),
            "server nonce {nonce:?} must extend ours"
        );
        let salt = BASE64.decode(attr("s=")).expect("salt is Base64");
        let iterations: u32 = attr("i=").parse().expect("iterations");
        assert!((4096..=16384).contains(&iterations), "{iterations}");

        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c={},r={nonce}", BASE64.encode("n,,"));
        let auth_message = format!(
            "{},{server_first},{without_proof}",
            self.client_first_bare()
        );
        let signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac_sha256(&salted, b"Server Key");
        self.server_signature = Some(hmac_sha256(&server_key, auth_message.as_bytes()));
        format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes()
    }

    /// Checks server-final: `v=` with the signature only the real server can compute.
    fn verify_server_final(&self, server_final: &[u8]) {
        let expected = self.server_signature.as_ref().expect("client-final sent");
        let text = std::str::from_utf8(server_final).expect("server-final is UTF-8");
        let v = text.strip_prefix("v=").expect("server-final is v=...");
        assert_eq!(
            &BASE64.decode(v).expect("Base64"),
            expected,
            "server signature"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway's log, captured to check a connection's one log line.

struct LogSink {
    text: Mutex<String>,
    written: Notify,
}

struct LogWriter(Arc<LogSink>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .text
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_str(&String::from_utf8_lossy(buf));
        self.0.written.notify_waiters();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once for the whole test binary.
fn logs() -> Arc<LogSink> {
    static SINK: OnceLock<Arc<LogSink>> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Arc::new(LogSink {
            text: Mutex::new(String::new()),
            written: Notify::new(),
        });
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        sink
    })
    .clone()
}

impl LogSink {
    fn find(&self, peer: SocketAddr, needle: &str) -> Option<String> {
        let peer = format!("peer={peer} ");
        self.text
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .lines()
            .find(|l| l.contains(&peer) && l.contains(needle))
            .map(str::to_owned)
    }

    /// Waits for the log line of `peer`'s connection that contains `needle`.
    async fn wait_for(&self, peer: SocketAddr, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if let Some(line) = self.find(peer, needle) {
                return line;
            }
            if tokio::time::timeout_at(deadline, written).await.is_err() {
                let all = self
                    .text
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                panic!("no log line for {peer} containing {needle:?}; the log:\n{all}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Unsupported mechanism.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_mechanism_gets_error_33_with_the_enabled_list_and_is_closed() {
    let lab = Lab::sasl_plaintext().await;
    for version in [0, 1] {
        let mut conn = lab.connect().await;
        let versions = conn.call(3, &api_versions()).await;
        assert_eq!(versions.error_code, 0);
        assert_eq!(api_range(&versions, ApiKey::SaslHandshake), Some((0, 1)));
        let resp = conn.call(version, &handshake_request("GSSAPI")).await;
        assert_eq!(resp.error_code, UNSUPPORTED_SASL_MECHANISM, "v{version}");
        assert_eq!(mechanisms(&resp), ENABLED, "v{version}");
        conn.assert_closed_without_response().await;
    }
    // Names are case-sensitive, as in Kafka.
    let mut conn = lab.connect().await;
    let resp = conn.call(1, &handshake_request("plain")).await;
    assert_eq!(resp.error_code, UNSUPPORTED_SASL_MECHANISM);
    conn.assert_closed_without_response().await;
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Requests before authentication.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_authentication_close_the_connection_without_a_response() {
    let lab = Lab::sasl_plaintext().await;
    let metadata = MetadataRequest::default().with_topics(None);

    // Metadata as the very first request.
    let mut conn = lab.connect().await;
    conn.send(4, &metadata).await;
    conn.assert_closed_without_response().await;

    // Metadata after ApiVersions: ApiVersions is answered, Metadata is not.
    let mut conn = lab.connect().await;
    let versions = conn.call(3, &api_versions()).await;
    assert_eq!(versions.error_code, 0);
    conn.send(9, &metadata).await;
    conn.assert_closed_without_response().await;

    // SaslAuthenticate before any SaslHandshake.
    let mut conn = lab.connect().await;
    conn.send(1, &authenticate(plain_token("alice", "alice-secret")))
        .await;
    conn.assert_closed_without_response().await;

    // An API key no Kafka version knows.
    let mut conn = lab.connect().await;
    conn.send_frame(&raw_request(1000, 0, 1, &[])).await;
    conn.assert_closed_without_response().await;

    lab.finish().await;
}

/// After a v1 handshake only SaslAuthenticate may come: another request gets Kafka's
/// ILLEGAL_SASL_STATE in its own shape (IllegalSaslStateException), then the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_other_than_authenticate_after_a_v1_handshake_gets_error_34_then_close() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    conn.handshake(1, "PLAIN").await;
    let named = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]));
    let resp = conn.call(9, &named).await;
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].error_code, ILLEGAL_SASL_STATE);
    assert!(
        resp.brokers.is_empty(),
        "nothing about the cluster before login"
    );
    conn.assert_closed_without_response().await;
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 3. SaslHandshake v0: the tokens travel as bare frames.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_v0_plain_success_sends_an_empty_frame_and_then_serves_metadata() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    conn.handshake(0, "PLAIN").await;
    conn.send_frame(&plain_token("alice", "alice-secret")).await;
    let mut reply = [0u8; 4];
    tokio::time::timeout(IO_TIMEOUT, conn.stream.read_exact(&mut reply))
        .await
        .expect("reply in time")
        .expect("reply");
    assert_eq!(reply, [0, 0, 0, 0], "PLAIN success is a zero-length frame");
    conn.assert_metadata_served().await;
    drop(conn);
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_v0_plain_failure_closes_after_the_delay_without_error_text() {
    let lab = Lab::sasl_plaintext().await;
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let mut conn = lab.connect().await;
        conn.handshake(0, "PLAIN").await;
        conn.send_frame(&plain_token(user, password)).await;
        let sent = Instant::now();
        conn.assert_closed_without_response().await;
        assert!(
            sent.elapsed() >= MIN_FAILURE_DELAY,
            "{user}: closed {:?} after the token",
            sent.elapsed()
        );
    }
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_v0_scram_sha_256_exchange_authenticates_and_serves_metadata() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    let versions = conn.call(0, &api_versions()).await;
    assert_eq!(versions.error_code, 0);
    conn.handshake(0, "SCRAM-SHA-256").await;
    let mut scram = ScramClient::new("alice", "alice-secret");
    conn.send_frame(&scram.client_first()).await;
    let server_first = conn.read_frame().await;
    let client_final = scram.client_final(&server_first);
    conn.send_frame(&client_final).await;
    let server_final = conn.read_frame().await;
    scram.verify_server_final(&server_final);
    conn.assert_metadata_served().await;
    drop(conn);

    // With a wrong password the v0 exchange ends in a bare close.
    let mut conn = lab.connect().await;
    conn.handshake(0, "SCRAM-SHA-256").await;
    let mut scram = ScramClient::new("alice", "not-alice-secret");
    conn.send_frame(&scram.client_first()).await;
    let server_first = conn.read_frame().await;
    conn.send_frame(&scram.client_final(&server_first)).await;
    conn.assert_closed_without_response().await;
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 4. SaslHandshake v1 + SaslAuthenticate with bad credentials.

/// Reads the failing SaslAuthenticate response and checks that the close follows after
/// Kafka's delay.
async fn assert_failure_then_delayed_close(conn: &mut Raw, version: i16, id: i32, message: &str) {
    let resp = conn.receive::<SaslAuthenticateRequest>(version, id).await;
    let answered = Instant::now();
    assert_eq!(resp.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(
        resp.error_message.as_ref().map(|m| m.as_str()),
        Some(message)
    );
    assert!(resp.auth_bytes.is_empty());
    conn.assert_closed_without_response().await;
    assert!(
        answered.elapsed() >= MIN_FAILURE_DELAY,
        "closed {:?} after the error response",
        answered.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_gets_error_58_with_kafkas_message_then_a_delayed_close() {
    let lab = Lab::sasl_plaintext().await;

    // PLAIN: Kafka's own text, the same for a wrong password and an unknown user.
    for (version, user) in [(0, "alice"), (1, "alice"), (2, "mallory")] {
        let mut conn = lab.connect().await;
        conn.handshake(1, "PLAIN").await;
        let id = conn
            .send(version, &authenticate(plain_token(user, "wrong")))
            .await;
        assert_failure_then_delayed_close(&mut conn, version, id, PLAIN_FAILURE).await;
    }

    // SCRAM: the generic text. A wrong password fails at client-final.
    let generic = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256";
    let mut conn = lab.connect().await;
    conn.handshake(1, "SCRAM-SHA-256").await;
    let mut scram = ScramClient::new("alice", "wrong");
    let first = conn.call(2, &authenticate(scram.client_first())).await;
    assert_eq!(first.error_code, 0);
    let id = conn
        .send(2, &authenticate(scram.client_final(&first.auth_bytes)))
        .await;
    assert_failure_then_delayed_close(&mut conn, 2, id, generic).await;

    // An unknown user gets a decoy salt and fails at client-final too, with the same text
    // (issue 12.6; Kafka fails it at client-first, which tells who exists).
    let mut conn = lab.connect().await;
    conn.handshake(1, "SCRAM-SHA-256").await;
    let mut scram = ScramClient::new("mallory", "x");
    let first = conn.call(1, &authenticate(scram.client_first())).await;
    assert_eq!(first.error_code, 0, "{:?}", first.error_message);
    let id = conn
        .send(1, &authenticate(scram.client_final(&first.auth_bytes)))
        .await;
    assert_failure_then_delayed_close(&mut conn, 1, id, generic).await;

    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Frame sizes before authentication.

/// An ApiVersions v3 request whose frame body is exactly `size` bytes, padded in the client
/// software name (a valid name of any length).
fn api_versions_of_size(size: usize) -> Vec<u8> {
    let mut name_len = size;
    loop {
        let name = "a".repeat(name_len);
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_string(name))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let bytes = request_bytes(3, 1, &request);
        match bytes.len().cmp(&size) {
            std::cmp::Ordering::Equal => return bytes,
            std::cmp::Ordering::Greater => name_len -= bytes.len() - size,
            std::cmp::Ordering::Less => name_len += size - bytes.len(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_negative_frame_sizes_before_authentication_close_the_connection() {
    let lab = Lab::sasl_plaintext().await;

    // The limit itself is allowed: a valid ApiVersions of exactly 512 KiB is answered.
    let mut conn = lab.connect().await;
    conn.send_frame(&api_versions_of_size(MAX_PRE_AUTH_FRAME))
        .await;
    let resp = decode_response::<ApiVersionsRequest>(&conn.read_frame().await, 3, 1);
    assert_eq!(resp.error_code, 0);
    drop(conn);

    // One byte more is refused as soon as the size is read, before the body.
    let too_big = i32::try_from(MAX_PRE_AUTH_FRAME + 1).expect("small");
    for size in [too_big, i32::MAX, -1, i32::MIN] {
        let mut conn = lab.connect().await;
        conn.send_bytes(&size.to_be_bytes()).await;
        conn.assert_closed_without_response().await;
    }

    // The same limit holds during the SaslAuthenticate exchange ...
    let mut conn = lab.connect().await;
    conn.handshake(1, "PLAIN").await;
    conn.send_bytes(&too_big.to_be_bytes()).await;
    conn.assert_closed_without_response().await;

    // ... and for raw v0 tokens.
    let mut conn = lab.connect().await;
    conn.handshake(0, "SCRAM-SHA-256").await;
    conn.send_bytes(&too_big.to_be_bytes()).await;
    conn.assert_closed_without_response().await;

    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Garbage instead of TLS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_tls_is_closed_and_tls_clients_carry_on() {
    let logs = logs();
    let cluster = common::cluster_with_topic(TOPIC, 3);
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let addr = gateway.bootstrap_addr();

    let plaintext_kafka = frame(&request_bytes(3, 1, &api_versions()));
    let http = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    let mut junk = vec![0u8; 64 * 1024];
    junk.iter_mut().for_each(|b| *b = rand::random());
    junk[0] = 0x42; // not a TLS content type
    for garbage in [plaintext_kafka, http, junk] {
        let mut conn = Raw::connect(addr).await;
        let peer = conn.local_addr();
        // The gateway may stop reading before the end of the junk.
        let _ = conn.stream.write_all(&garbage).await;
        let got = conn.closed().await;
        // At most a TLS alert record (content type 21) comes back, never a Kafka response.
        assert!(
            got.is_empty() || got[0] == 21,
            "expected nothing or a TLS alert, got {:02x?}",
            &got[..got.len().min(16)]
        );
        logs.wait_for(peer, "TLS handshake failed").await;
    }

    let client = common::sasl_ssl_client(
        &gateway.bootstrap_servers(),
        &pki,
        "SCRAM-SHA-256",
        "bob",
        "bob-secret",
    );
    tokio::time::timeout(PRODUCE_TIMEOUT, common::produce(&client, TOPIC, 20, 4))
        .await
        .expect("a TLS producer is served in time");
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Truncated frames.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_is_closed_and_logged() {
    let logs = logs();
    let lab = Lab::sasl_plaintext().await;
    let truncated = {
        let mut bytes = 100i32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 10]);
        bytes
    };
    let reason = "connection closed in the middle of a frame (10 of 100 bytes read)";

    // Before authentication, with a half-close: the gateway closes its side too.
    let mut conn = lab.connect().await;
    let peer = conn.local_addr();
    conn.send_bytes(&truncated).await;
    conn.stream.shutdown().await.expect("half-close");
    conn.assert_closed_without_response().await;
    logs.wait_for(peer, reason).await;

    // Before authentication, with a full close.
    let mut conn = lab.connect().await;
    let peer = conn.local_addr();
    conn.send_bytes(&truncated).await;
    drop(conn);
    logs.wait_for(peer, reason).await;

    // After authentication: the log line names the principal.
    let mut conn = lab.login().await;
    let peer = conn.local_addr();
    conn.send_bytes(&truncated).await;
    conn.stream.shutdown().await.expect("half-close");
    conn.assert_closed_without_response().await;
    let line = logs.wait_for(peer, reason).await;
    assert!(line.contains("User:alice"), "{line}");

    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Hostile array lengths after login.

/// A Produce request whose topic array claims 2^31-1 (v3) or 2^32-2 (v9) elements.
fn produce_with_huge_topic_count(version: i16, correlation_id: i32) -> Vec<u8> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![]);
    let mut bytes = request_bytes(version, correlation_id, &request);
    if version >= 9 {
        // Compact array: varint(n + 1), then the request's empty tagged fields.
        let at = bytes.len() - 2;
        assert_eq!(bytes[at..], [1, 0], "an empty compact array and no tags");
        bytes.splice(at..at + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    } else {
        let at = bytes.len() - 4;
        assert_eq!(bytes[at..], [0, 0, 0, 0], "an empty array");
        bytes.splice(at.., 0x7fff_ffffi32.to_be_bytes());
    }
    bytes
}

/// A Metadata request whose topic array claims 2^31-1 (v4) or 2^32-2 (v9) elements.
fn metadata_with_huge_topic_count(version: i16, correlation_id: i32) -> Vec<u8> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![]))
        .with_allow_auto_topic_creation(false);
    let mut bytes = request_bytes(version, correlation_id, &request);
    // The topic array is the body's first field; the header's length varies, so count from the
    // end: v4 ends with [topics][allow_auto], v9 with [topics][allow_auto][include_cluster_ops]
    // [include_topic_ops][tags].
    if version >= 9 {
        let at = bytes.len() - 5;
        assert_eq!(bytes[at..], [1, 0, 0, 0, 0], "an empty compact array");
        bytes.splice(at..at + 1, [0xfe, 0xff, 0xff, 0xff, 0x0f]);
    } else {
        let at = bytes.len() - 5;
        assert_eq!(bytes[at..], [0, 0, 0, 0, 0], "an empty array");
        bytes.splice(at..at + 4, 0x7fff_ffffi32.to_be_bytes());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_array_lengths_after_login_close_only_that_connection() {
    let lab = Lab::sasl_plaintext().await;
    // An authenticated client that must not notice anything.
    let mut bystander = lab.login().await;
    bystander.assert_metadata_served().await;

    let hostile = [
        ("Produce v3", produce_with_huge_topic_count(3, 77)),
        ("Produce v9", produce_with_huge_topic_count(9, 77)),
        ("Metadata v4", metadata_with_huge_topic_count(4, 77)),
        ("Metadata v9", metadata_with_huge_topic_count(9, 77)),
    ];
    for (what, request) in hostile {
        let mut conn = lab.login().await;
        conn.send_frame(&request).await;
        let got = conn.closed().await;
        assert!(got.is_empty(), "{what}: {} bytes came back", got.len());
        bystander.assert_metadata_served().await;
        lab.assert_still_serves().await;
    }
    drop(bystander);
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 9. ApiVersions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_new_api_versions_gets_a_v0_error_35_with_its_own_range() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    let full = conn.call(3, &api_versions()).await;
    let own = api_range(&full, ApiKey::ApiVersions).expect("ApiVersions is listed");
    drop(conn);

    let mut conn = lab.connect().await;
    conn.send_frame(&raw_request(ApiKey::ApiVersions as i16, 99, 42, &[]))
        .await;
    // The body is in v0 format, whatever version was asked, with a v0 header.
    let resp = decode_response::<ApiVersionsRequest>(&conn.read_frame().await, 0, 42);
    assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
    assert_eq!(resp.api_keys.len(), 1, "{resp:?}");
    assert_eq!(api_range(&resp, ApiKey::ApiVersions), Some(own));
    // The connection is still in the handshake state: SASL goes on as usual.
    conn.handshake(1, "PLAIN").await;
    let ok = conn
        .call(1, &authenticate(plain_token("alice", "alice-secret")))
        .await;
    assert_eq!(ok.error_code, 0);
    conn.assert_metadata_served().await;
    drop(conn);
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_api_versions_before_the_handshake_closes_the_connection() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    let first = conn.call(3, &api_versions()).await;
    assert_eq!(first.error_code, 0);
    conn.send(3, &api_versions()).await;
    conn.assert_closed_without_response().await;
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 10. Requests outside the allow-table after login.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_the_allow_table_after_login_close_the_connection() {
    let lab = Lab::sasl_plaintext().await;
    let fetch = FetchRequest::default().with_max_wait_ms(10);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // LeaderAndIsr is broker-internal.
        ("LeaderAndIsr v0", raw_request(4, 0, 7, &[0, 0, 0, 1])),
        // Above what the embedded cluster serves (v16): kgate never offers more than every
        // broker serves.
        ("Fetch v17", request_bytes(17, 7, &fetch)),
        ("Fetch v18", request_bytes(18, 7, &fetch)),
        // Below the allow-table's floor.
        (
            "Produce v2",
            raw_request(0, 2, 7, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ),
        ("unknown key 1000", raw_request(1000, 0, 7, &[])),
    ];
    for (what, request) in cases {
        let mut conn = lab.login().await;
        conn.send_frame(&request).await;
        let got = conn.closed().await;
        assert!(got.is_empty(), "{what}: {} bytes came back", got.len());
    }
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// 11. SASL requests after authentication.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_requests_after_authentication_get_error_34_and_the_connection_carries_on() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.login().await;
    for version in [0, 1] {
        let resp = conn.call(version, &handshake_request("PLAIN")).await;
        assert_eq!(
            resp.error_code, ILLEGAL_SASL_STATE,
            "SaslHandshake v{version}"
        );
    }
    let resp = conn
        .call(1, &authenticate(plain_token("alice", "alice-secret")))
        .await;
    assert_eq!(resp.error_code, ILLEGAL_SASL_STATE);
    assert_eq!(
        resp.error_message.as_ref().map(|m| m.as_str()),
        Some("SaslAuthenticate request received after successful authentication")
    );
    conn.assert_metadata_served().await;
    drop(conn);
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_may_be_retried_after_an_unsupported_version_error() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    conn.send_frame(&raw_request(ApiKey::ApiVersions as i16, 99, 1, &[]))
        .await;
    let resp = decode_response::<ApiVersionsRequest>(&conn.read_frame().await, 0, 1);
    assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
    let (_, max) = api_range(&resp, ApiKey::ApiVersions).expect("its own range");
    let retry = conn.call(max, &api_versions()).await;
    assert_eq!(retry.error_code, 0);
    assert!(api_range(&retry, ApiKey::Metadata).is_some(), "{retry:?}");
    // After a successful one, another ApiVersions closes the connection.
    conn.send(max, &api_versions()).await;
    conn.assert_closed_without_response().await;
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_v3_with_an_invalid_software_name_gets_invalid_request() {
    const INVALID_REQUEST: i16 = 42;
    let lab = Lab::sasl_plaintext().await;
    for name in ["", "-leading-dash", "white space"] {
        let mut conn = lab.connect().await;
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(name))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let resp = conn.call(3, &request).await;
        assert_eq!(resp.error_code, INVALID_REQUEST, "name {name:?}");
        let retry = conn.call(3, &api_versions()).await;
        assert_eq!(retry.error_code, 0, "retry after name {name:?}");
    }
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_mechanism_close_comes_after_the_failure_delay() {
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    let resp = conn.call(1, &handshake_request("GSSAPI")).await;
    let answered = Instant::now();
    assert_eq!(resp.error_code, UNSUPPORTED_SASL_MECHANISM);
    conn.assert_closed_without_response().await;
    assert!(
        answered.elapsed() >= MIN_FAILURE_DELAY,
        "closed {:?} after error 33",
        answered.elapsed()
    );
    lab.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_log_counts_the_bytes_of_the_authentication_phase() {
    let logs = logs();
    let lab = Lab::sasl_plaintext().await;
    let mut conn = lab.connect().await;
    let peer = conn.local_addr();
    let request = frame(&request_bytes(1, 1, &handshake_request("GSSAPI")));
    conn.send_bytes(&request).await;
    let got = conn.closed().await;
    let line = logs.wait_for(peer, "connection closed").await;
    assert!(
        line.contains(&format!("bytes_in={} ", request.len())),
        "{line}"
    );
    assert!(
        line.contains(&format!("bytes_out={} ", got.len())),
        "{line}"
    );
    lab.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Malformed requests while a fault rule makes kgate read the topics of every request.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_under_a_topic_fault_close_only_their_connection() {
    let lab = Lab::sasl_plaintext().await;
    let faults = &lab.gateway.shared().config.faults;
    faults
        .add("latency=1ms topic=orders".parse().expect("rule"))
        .expect("add");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Produce v3: a transactional id length beyond the frame.
        ("Produce v3", raw_request(0, 3, 7, &[0x7f, 0xff, 0, 1])),
        // Fetch v4: a topic count of 2^31-1 in a few bytes.
        (
            "Fetch v4",
            raw_request(
                1,
                4,
                7,
                &[
                    0xff, 0xff, 0xff, 0xff, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0x7f, 0xff,
                    0xff, 0xff,
                ],
            ),
        ),
        // Metadata v1: a topic name longer than the frame.
        (
            "Metadata v1",
            raw_request(3, 1, 7, &[0, 0, 0, 1, 0x7f, 0xff]),
        ),
    ];
    for (what, request) in cases {
        let mut conn = lab.login().await;
        conn.send_frame(&request).await;
        let got = conn.closed().await;
        assert!(got.is_empty(), "{what}: {} bytes came back", got.len());
    }
    faults.clear();
    lab.finish().await;
}
