//! A minimal Kafka client for benchmarks that need many connections: TLS (rustls with
//! aws-lc-rs), then ApiVersions v3, SaslHandshake v1 and SaslAuthenticate v1 with
//! SCRAM-SHA-256/512 (RFC 5802), as librdkafka and the Java client do it.
//!
//! The SCRAM key derivations are `kgate_auth::crypto`'s. PBKDF2 runs once per
//! (salt, iterations) and is cached, as clients do when they reconnect: the benchmark should
//! measure the gateway, not the client's key stretching.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{ensure, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kgate_auth::{crypto, Mechanism, Zeroizing};
use rand::distr::{Alphanumeric, SampleString};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Largest response frame this client reads.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Versions this client speaks.
const API_VERSIONS_V: i16 = 3;
const SASL_HANDSHAKE_V: i16 = 1;
const SASL_AUTHENTICATE_V: i16 = 1;

/// A Kafka connection: framing, correlation ids, request/response.
#[derive(Debug)]
pub struct KafkaConn<S> {
    stream: S,
    correlation_id: i32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> KafkaConn<S> {
    /// Waits until the server closes the connection (or sends anything, which a server
    /// waiting for the client's first request never does).
    pub async fn closed_by_server(&mut self) {
        let mut byte = [0u8; 1];
        let _ = self.stream.read(&mut byte).await;
    }

    /// Wraps an open stream.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends one request and reads its response.
    ///
    /// # Errors
    /// I/O errors, a correlation id mismatch, or a response that does not decode.
    pub async fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> anyhow::Result<Resp> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("kgate-bench")));
        // Room for the size prefix first, filled in once the frame is encoded: one write.
        let mut frame = vec![0u8; 4];
        header.encode(&mut frame, api.request_header_version(version))?;
        body.encode(&mut frame, version)?;
        let size = i32::try_from(frame.len() - 4).context("request too large")?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;

        let size = self.stream.read_i32().await.context("reading a response")?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE)
            .with_context(|| format!("{api:?} response of invalid size {size}"))?;
        let mut buf = vec![0u8; size];
        self.stream.read_exact(&mut buf).await?;
        let mut buf = Bytes::from(buf);
        // ApiVersions responses always use header v0 (KIP-511).
        let header_version = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut buf, header_version)?;
        ensure!(
            header.correlation_id == correlation_id,
            "{api:?} response has correlation id {}, expected {correlation_id}",
            header.correlation_id
        );
        Resp::decode(&mut buf, version).with_context(|| format!("decoding {api:?} v{version}"))
    }

    /// ApiVersions v3; fails unless the answer has no error.
    ///
    /// # Errors
    /// As [`KafkaConn::request`], or the response's error code.
    pub async fn api_versions(&mut self) -> anyhow::Result<ApiVersionsResponse> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kgate-bench"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = self
            .request(ApiKey::ApiVersions, API_VERSIONS_V, &req)
            .await?;
        ensure!(
            resp.error_code == 0,
            "ApiVersions answered error {}",
            resp.error_code
        );
        Ok(resp)
    }
}

/// (salt, iterations) → salted password: the last PBKDF2 result.
type SaltedCache = Option<(Vec<u8>, u32, Zeroizing<Vec<u8>>)>;

/// A SCRAM client for one user, shared by many connections (the PBKDF2 result is cached).
#[derive(Debug)]
pub struct ScramClient {
    mechanism: Mechanism,
    user: String,
    password: Zeroizing<Vec<u8>>,
    cache: Mutex<SaltedCache>,
}

impl ScramClient {
    /// A client for `user` with `password`.
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> Self {
        Self {
            mechanism,
            user: user.to_owned(),
            password: Zeroizing::new(password.as_bytes().to_vec()),
            cache: Mutex::new(None),
        }
    }

    fn salted_password(&self, salt: &[u8], iterations: u32) -> Zeroizing<Vec<u8>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((s, i, salted)) = cache.as_ref() {
            if s == salt && *i == iterations {
                return salted.clone();
            }
        }
        let salted = crypto::salted_password(self.mechanism, &self.password, salt, iterations);
        *cache = Some((salt.to_vec(), iterations, salted.clone()));
        salted
    }

    /// SaslHandshake v1 and the two SaslAuthenticate v1 round trips; checks the server's
    /// signature.
    ///
    /// # Errors
    /// A refused mechanism or credentials (with the server's message), a malformed or
    /// forged server message, or an i/o error.
    pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut KafkaConn<S>,
    ) -> anyhow::Result<()> {
        let name = self.mechanism.name();
        let hs: SaslHandshakeResponse = conn
            .request(
                ApiKey::SaslHandshake,
                SASL_HANDSHAKE_V,
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name)),
            )
            .await?;
        ensure!(
            hs.error_code == 0,
            "SaslHandshake {name} refused with error {} (enabled: {:?})",
            hs.error_code,
            hs.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>()
        );

        let nonce = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let first_bare = format!(
            "n={},r={nonce}",
            kgate_auth::scram::escape_saslname(&self.user)
        );
        let server_first = self.step(conn, format!("n,,{first_bare}")).await?;
        let server_first = String::from_utf8(server_first).context("server-first is not UTF-8")?;
        let (combined, salt, iterations) = parse_server_first(&server_first, &nonce)?;

        let salted = self.salted_password(&salt, iterations);
        let client_key = crypto::client_key(self.mechanism, &salted);
        let stored_key = crypto::stored_key(self.mechanism, &client_key);
        let server_key = crypto::server_key(self.mechanism, &salted);
        // c=biws is the Base64 of the gs2 header "n,,".
        let final_bare = format!("c=biws,r={combined}");
        let auth_message = format!("{first_bare},{server_first},{final_bare}");
        let signature = crypto::hmac(self.mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_final = self
            .step(conn, format!("{final_bare},p={}", BASE64.encode(proof)))
            .await?;
        let expected = crypto::hmac(self.mechanism, &server_key, auth_message.as_bytes());
        let got = std::str::from_utf8(&server_final)
            .ok()
            .and_then(|s| s.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v).ok());
        ensure!(
            got.as_deref() == Some(expected.as_slice()),
            "the server's SCRAM signature does not verify: {}",
            String::from_utf8_lossy(&server_final)
        );
        Ok(())
    }

    async fn step<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut KafkaConn<S>,
        message: String,
    ) -> anyhow::Result<Vec<u8>> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
        let resp: SaslAuthenticateResponse = conn
            .request(ApiKey::SaslAuthenticate, SASL_AUTHENTICATE_V, &req)
            .await?;
        if resp.error_code != 0 {
            return Err(SaslRefused {
                error_code: resp.error_code,
                message: resp.error_message.as_deref().unwrap_or("-").to_owned(),
            }
            .into());
        }
        Ok(resp.auth_bytes.to_vec())
    }
}

/// A SaslAuthenticate answered with an error (58, SASL_AUTHENTICATION_FAILED, for a wrong
/// password); found with `anyhow::Error::downcast_ref` by callers that expect it.
#[derive(Debug, Clone)]
pub struct SaslRefused {
    /// Kafka's error code.
    pub error_code: i16,
    /// The server's message.
    pub message: String,
}

impl std::fmt::Display for SaslRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SaslAuthenticate failed with error {}: {}",
            self.error_code, self.message
        )
    }
}

impl std::error::Error for SaslRefused {}

/// Splits server-first into (combined nonce, salt, iterations), checking the nonce.
fn parse_server_first(msg: &str, client_nonce: &str) -> anyhow::Result<(String, Vec<u8>, u32)> {
    let (mut nonce, mut salt, mut iterations) = (None, None, None);
    for attr in msg.split(',') {
        match attr.split_once('=') {
            Some(("r", v)) => nonce = Some(v),
            Some(("s", v)) => salt = Some(BASE64.decode(v).context("server-first salt")?),
            Some(("i", v)) => iterations = Some(v.parse::<u32>().context("iterations")?),
            _ => {}
        }
    }
    let nonce = nonce.context("server-first has no nonce")?;
    ensure!(
        nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len(),
        "server-first nonce does not extend the client's"
    );
    Ok((
        nonce.to_owned(),
        salt.context("server-first has no salt")?,
        iterations.context("server-first has no iteration count")?,
    ))
}

/// Opens TLS connections to a gateway and authenticates them.
#[derive(Clone)]
pub struct TlsDialer {
    config: Arc<ClientConfig>,
    connector: TlsConnector,
    addr: SocketAddr,
    scram: Arc<ScramClient>,
}

impl std::fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDialer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TlsDialer {
    /// A dialer for `addr` trusting the CA in `ca_pem`.
    ///
    /// # Errors
    /// When the CA file cannot be loaded.
    pub fn new(addr: SocketAddr, ca_pem: &Path, scram: ScramClient) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in kgate_certs::load_certs(ca_pem)? {
            roots
                .add(cert)
                .with_context(|| format!("{}: unusable CA certificate", ca_pem.display()))?;
        }
        let config = ClientConfig::builder_with_provider(kgate_certs::tls::provider())
            .with_safe_default_protocol_versions()
            .context("TLS client configuration")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        Ok(Self {
            connector: TlsConnector::from(config.clone()),
            config,
            addr,
            scram: Arc::new(scram),
        })
    }

    /// The same dialer authenticating with `scram` instead (another user or password).
    pub fn with_scram(&self, scram: ScramClient) -> Self {
        Self {
            scram: Arc::new(scram),
            ..self.clone()
        }
    }

    /// The gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first bytes this dialer's TLS client sends: its ClientHello record.
    ///
    /// # Errors
    /// When rustls cannot start a connection with this configuration.
    pub fn client_hello(&self) -> anyhow::Result<Vec<u8>> {
        let name = ServerName::IpAddress(self.addr.ip().into());
        let mut conn = tokio_rustls::rustls::ClientConnection::new(self.config.clone(), name)
            .context("TLS client")?;
        let mut hello = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut hello).context("ClientHello")?;
        }
        Ok(hello)
    }

    /// TCP (with `TCP_NODELAY`) and TLS, nothing more: a connection that has not
    /// authenticated.
    ///
    /// # Errors
    /// The connect or the handshake's failure.
    pub async fn connect_tls(&self) -> anyhow::Result<KafkaConn<TlsStream<TcpStream>>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        Ok(KafkaConn::new(tls))
    }

    /// TCP (with `TCP_NODELAY`), TLS, ApiVersions, SASL: an authenticated, idle connection.
    ///
    /// # Errors
    /// Any step's failure, naming the step.
    pub async fn connect_authenticated(&self) -> anyhow::Result<KafkaConn<TlsStream<TcpStream>>> {
        let mut conn = self.connect_tls().await?;
        conn.api_versions().await.context("ApiVersions")?;
        self.scram
            .authenticate(&mut conn)
            .await
            .context("SCRAM authentication")?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_first_is_parsed_and_its_nonce_checked() {
        let (nonce, salt, i) =
            parse_server_first("r=abcXYZ,s=c2FsdA==,i=4096", "abc").expect("valid");
        assert_eq!(nonce, "abcXYZ");
        assert_eq!(salt, b"salt");
        assert_eq!(i, 4096);
        assert!(parse_server_first("r=zzzXYZ,s=c2FsdA==,i=4096", "abc").is_err());
        assert!(parse_server_first("r=abc,s=c2FsdA==,i=4096", "abc").is_err());
        assert!(parse_server_first("r=abcX,i=4096", "abc").is_err());
    }

    /// The client against kgate's own SCRAM server, over an in-memory Kafka connection.
    #[tokio::test]
    async fn authenticates_against_kgate_scram_server() {
        let mut store = kgate_auth::CredentialStore::new();
        store
            .add("bench", Mechanism::ScramSha512, b"secret", 4096)
            .expect("add");
        let store = Arc::new(store);
        let (client_io, mut server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut scram = kgate_auth::ScramServer::new(Mechanism::ScramSha512, store);
            // SaslHandshake, then two SaslAuthenticate exchanges.
            for round in 0..3 {
                let size = server_io.read_i32().await.expect("size");
                let mut frame = vec![0u8; usize::try_from(size).expect("size")];
                server_io.read_exact(&mut frame).await.expect("frame");
                let mut buf = Bytes::from(frame);
                let api = if round == 0 {
                    ApiKey::SaslHandshake
                } else {
                    ApiKey::SaslAuthenticate
                };
                let header =
                    RequestHeader::decode(&mut buf, api.request_header_version(1)).expect("hdr");
                let mut out = vec![0u8; 4];
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id)
                    .encode(&mut out, api.response_header_version(1))
                    .expect("encode");
                if round == 0 {
                    SaslHandshakeResponse::default()
                        .encode(&mut out, 1)
                        .expect("encode");
                } else {
                    let req = SaslAuthenticateRequest::decode(&mut buf, 1).expect("req");
                    let bytes = match scram.step(&req.auth_bytes).expect("step") {
                        kgate_auth::Step::Continue(b) => b,
                        kgate_auth::Step::Done { response, .. } => response,
                    };
                    SaslAuthenticateResponse::default()
                        .with_auth_bytes(Bytes::from(bytes))
                        .encode(&mut out, 1)
                        .expect("encode");
                }
                let n = i32::try_from(out.len() - 4).expect("len");
                out[..4].copy_from_slice(&n.to_be_bytes());
                server_io.write_all(&out).await.expect("write");
            }
        });
        let mut conn = KafkaConn::new(client_io);
        let good = ScramClient::new(Mechanism::ScramSha512, "bench", "secret");
        good.authenticate(&mut conn).await.expect("authenticated");
        server.await.expect("server");
    }
}
