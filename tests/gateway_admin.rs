//! ACL and SCRAM-credential administration over the Kafka protocol, answered by kgate itself,
//! end to end: a TLS + SASL gateway with authorization in front of the embedded cluster.
//!
//! rdkafka 0.39's `AdminClient` has no ACL or SCRAM-credential calls (and its C API is out of
//! reach: `unsafe` is forbidden), so the admin requests go through a small kafka-protocol
//! client over TLS and SCRAM, byte for byte what librdkafka and the Java AdminClient send.
//! librdkafka then proves the result: the user created over the wire authenticates and
//! produces under the ACL created over the wire.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    ApiVersionsRequest, ApiVersionsResponse, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, MetadataRequest,
    MetadataResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kgate_auth::{crypto, CredentialStore, Mechanism, SharedCredentials};
use kgate_labs::EmbeddedCluster;
use kgate_policies::{Authorizer, AuthorizerOptions, Policy};
use kgate_proxy::authz::Authz;
use kgate_proxy::credentials::{CredentialAuthenticator, SaslMechanism};
use kgate_proxy::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Bound of every exchange with the gateway.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const TOPIC: &str = "orders";

// Wire codes (reference §2.1).
const ANY: i8 = 1;
const TOPIC_TYPE: i8 = 2;
const CLUSTER_TYPE: i8 = 4;
const LITERAL: i8 = 3;
const WRITE: i8 = 4;
const ALTER: i8 = 7;
const ALLOW: i8 = 3;
const SCRAM_SHA_512: i8 = 2;

struct Lab {
    gateway: Gateway,
    addr: SocketAddr,
    pki: common::Pki,
    policy_file: PathBuf,
    credentials: SharedCredentials,
    _dir: tempfile::TempDir,
    _cluster: EmbeddedCluster,
}

/// A SASL_SSL gateway with authorization: `User:admin` is a super user, `User:alice` has no
/// ACL at all; both log in with SCRAM. The policy starts empty and lives in a file.
async fn lab() -> Lab {
    let cluster = common::cluster_with_topic(TOPIC, 3);
    let pki = common::Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = CredentialStore::new();
    for (user, password) in [("admin", "admin-secret"), ("alice", "alice-secret")] {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            store
                .add(user, m, password.as_bytes(), 4096)
                .expect("add user");
        }
    }
    let users_file = dir.path().join("users.toml");
    store.save(&users_file).expect("save users");
    let credentials = SharedCredentials::load(&users_file).expect("load users");
    let policy_file = dir.path().join("policy.toml");
    Policy::new().save(&policy_file).expect("policy file");
    let authorizer = Authorizer::open(
        &policy_file,
        AuthorizerOptions {
            super_users: vec!["User:admin".parse().expect("principal")],
            ..AuthorizerOptions::default()
        },
    )
    .expect("authorizer");
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(Arc::new(CredentialAuthenticator::new(
        credentials.clone(),
        SaslMechanism::all(),
    )));
    config.authz = Some(Arc::new(Authz {
        authorizer: Arc::new(authorizer),
        audit: None,
        credentials: Some(credentials.clone()),
        topic_ids: Default::default(),
    }));
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let addr = gateway.bootstrap_addr();
    Lab {
        gateway,
        addr,
        pki,
        policy_file,
        credentials,
        _dir: dir,
        _cluster: cluster,
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal Kafka client: TLS, ApiVersions, SCRAM, then typed requests.

struct Conn {
    io: TlsStream<TcpStream>,
    correlation: i32,
}

impl Conn {
    async fn tls(lab: &Lab) -> Self {
        let mut roots = RootCertStore::empty();
        for cert in
            kgate_certs::load_certs(std::path::Path::new(&lab.pki.path("ca.pem"))).expect("CA")
        {
            roots.add(cert).expect("CA certificate");
        }
        let config = ClientConfig::builder_with_provider(kgate_certs::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(lab.addr).await.expect("connect");
        let io = TlsConnector::from(Arc::new(config))
            .connect(ServerName::IpAddress(lab.addr.ip().into()), tcp)
            .await
            .expect("TLS handshake");
        Self { io, correlation: 0 }
    }

    /// One request and its response.
    async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> std::io::Result<Resp> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("gateway-admin-test")));
        let mut frame = vec![0u8; 4];
        header
            .encode(&mut frame, api.request_header_version(version))
            .expect("encode header");
        body.encode(&mut frame, version).expect("encode body");
        let size = i32::try_from(frame.len() - 4).expect("size");
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let exchange = async {
            self.io.write_all(&frame).await?;
            let size = self.io.read_i32().await?;
            let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
            self.io.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(IO_TIMEOUT, exchange)
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        let mut slice = &buf[..];
        let header_version = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut slice, header_version).expect("response header");
        assert_eq!(header.correlation_id, self.correlation);
        Ok(Resp::decode(&mut slice, version).expect("response body"))
    }

    /// TLS, ApiVersions v3, then SCRAM-SHA-512 over SaslHandshake v1 / SaslAuthenticate v2.
    async fn login(
        lab: &Lab,
        user: &str,
        password: &str,
    ) -> Result<(Self, ApiVersionsResponse), String> {
        let mut conn = Self::tls(lab).await;
        let versions: ApiVersionsResponse = conn
            .call(
                ApiKey::ApiVersions,
                3,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("kgate-test"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            )
            .await
            .map_err(|e| e.to_string())?;
        let handshake: SaslHandshakeResponse = conn
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512")),
            )
            .await
            .map_err(|e| e.to_string())?;
        if handshake.error_code != 0 {
            return Err(format!("handshake error {}", handshake.error_code));
        }
        let mechanism = Mechanism::ScramSha512;
        let nonce = hex(&rand::random::<[u8; 18]>());
        let client_first_bare = format!("n={user},r={nonce}");
        let server_first = conn
            .sasl(format!("n,,{client_first_bare}").into_bytes())
            .await?;
        let server_first = String::from_utf8(server_first).map_err(|e| e.to_string())?;
        let (mut combined, mut salt, mut iterations) = (None, None, None);
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => combined = Some(v.to_owned()),
                Some(("s", v)) => salt = BASE64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (Some(combined), Some(salt), Some(iterations)) = (combined, salt, iterations) else {
            return Err(format!("bad server-first {server_first:?}"));
        };
        let salted = crypto::salted_password(mechanism, password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={combined}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_key = crypto::client_key(mechanism, &salted);
        let stored_key = crypto::stored_key(mechanism, &client_key);
        let signature = crypto::hmac(mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_final = conn
            .sasl(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
            .await?;
        let server_key = crypto::server_key(mechanism, &salted);
        let expected = crypto::hmac(mechanism, &server_key, auth_message.as_bytes());
        if server_final != format!("v={}", BASE64.encode(expected)).into_bytes() {
            return Err("the server's signature does not verify".into());
        }
        Ok((conn, versions))
    }

    async fn sasl(&mut self, token: Vec<u8>) -> Result<Vec<u8>, String> {
        let r: SaslAuthenticateResponse = self
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(token.into()),
            )
            .await
            .map_err(|e| e.to_string())?;
        if r.error_code != 0 {
            return Err(format!(
                "SaslAuthenticate error {}: {}",
                r.error_code,
                r.error_message.as_deref().unwrap_or("")
            ));
        }
        Ok(r.auth_bytes.to_vec())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn write_on_orders(principal: &str) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC_TYPE)
        .with_resource_name(s(TOPIC))
        .with_resource_pattern_type(LITERAL)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(WRITE)
        .with_permission_type(ALLOW)
}

fn acls_of(principal: &str) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(ANY)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(ANY)
        .with_principal_filter(Some(s(principal)))
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

fn carol_upsertion(password: &str, iterations: u32) -> ScramCredentialUpsertion {
    let salt: Vec<u8> = hex(&rand::random::<[u8; 16]>()).into_bytes();
    let salted = crypto::salted_password(
        Mechanism::ScramSha512,
        password.as_bytes(),
        &salt,
        iterations,
    );
    ScramCredentialUpsertion::default()
        .with_name(s("carol"))
        .with_mechanism(SCRAM_SHA_512)
        .with_iterations(i32::try_from(iterations).expect("iterations"))
        .with_salt(salt.into())
        .with_salted_password(salted.to_vec().into())
}

async fn carol_sees_orders(lab: &Lab) -> i16 {
    let (mut carol, _) = Conn::login(lab, "carol", "carol-secret")
        .await
        .expect("carol logs in");
    let metadata: MetadataResponse = carol
        .call(
            ApiKey::Metadata,
            9,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(s(TOPIC))))
            ])),
        )
        .await
        .expect("metadata");
    metadata.topics[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_and_scram_credentials_are_administered_through_kgate() {
    let lab = lab().await;

    // The admin client's view: kgate offers the ACL and SCRAM admin APIs itself.
    let (mut admin, versions) = Conn::login(&lab, "admin", "admin-secret")
        .await
        .expect("admin logs in");
    for api in [
        ApiKey::DescribeAcls,
        ApiKey::CreateAcls,
        ApiKey::DeleteAcls,
        ApiKey::DescribeUserScramCredentials,
        ApiKey::AlterUserScramCredentials,
    ] {
        assert!(
            versions.api_keys.iter().any(|k| k.api_key == api as i16),
            "{api:?} advertised"
        );
    }

    // CreateAcls: one good creation, one Kafka refuses.
    let created: CreateAclsResponse = admin
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![
                write_on_orders("User:carol"),
                write_on_orders("User:carol")
                    .with_resource_type(CLUSTER_TYPE)
                    .with_resource_name(s("other"))
                    .with_operation(ALTER),
            ]),
        )
        .await
        .expect("CreateAcls");
    assert_eq!(created.results[0].error_code, 0);
    assert_eq!(created.results[1].error_code, 42);
    assert_eq!(
        created.results[1].error_message.as_deref(),
        Some("The only valid name for the CLUSTER resource is kafka-cluster")
    );
    let on_disk = std::fs::read_to_string(&lab.policy_file).expect("policy file");
    assert!(on_disk.contains("User:carol"), "persisted:\n{on_disk}");

    // DescribeAcls shows it, grouped under its pattern.
    let described: DescribeAclsResponse = admin
        .call(ApiKey::DescribeAcls, 3, &acls_of("User:carol"))
        .await
        .expect("DescribeAcls");
    assert_eq!(described.error_code, 0);
    assert_eq!(described.resources.len(), 1);
    let resource = &described.resources[0];
    assert_eq!(
        (
            resource.resource_type,
            &*resource.resource_name,
            resource.pattern_type
        ),
        (TOPIC_TYPE, TOPIC, LITERAL)
    );
    assert_eq!(
        (
            &*resource.acls[0].principal,
            &*resource.acls[0].host,
            resource.acls[0].operation,
            resource.acls[0].permission_type
        ),
        ("User:carol", "*", WRITE, ALLOW)
    );

    // AlterUserScramCredentials creates carol; Describe shows mechanism and iterations only.
    let altered: AlterUserScramCredentialsResponse = admin
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default()
                .with_upsertions(vec![carol_upsertion("carol-secret", 8192)]),
        )
        .await
        .expect("AlterUserScramCredentials");
    assert_eq!(altered.results.len(), 1);
    assert_eq!(
        (&*altered.results[0].user, altered.results[0].error_code),
        ("carol", 0)
    );
    let described: DescribeUserScramCredentialsResponse = admin
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            &DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![UserName::default().with_name(s("carol"))])),
        )
        .await
        .expect("DescribeUserScramCredentials");
    assert_eq!(described.error_code, 0);
    let infos: Vec<(i8, i32)> = described.results[0]
        .credential_infos
        .iter()
        .map(|c| (c.mechanism, c.iterations))
        .collect();
    assert_eq!(infos, [(SCRAM_SHA_512, 8192)]);

    // librdkafka: carol authenticates with the new credential and writes under the new ACL.
    let carol = common::sasl_ssl_client(
        &lab.gateway.bootstrap_servers(),
        &lab.pki,
        "SCRAM-SHA-512",
        "carol",
        "carol-secret",
    );
    common::produce(&carol, TOPIC, 20, 4).await;
    assert_eq!(carol_sees_orders(&lab).await, 0);

    // alice has no ACL on the cluster: every admin request gets 31.
    let (mut alice, _) = Conn::login(&lab, "alice", "alice-secret")
        .await
        .expect("alice logs in");
    let r: DescribeAclsResponse = alice
        .call(ApiKey::DescribeAcls, 3, &acls_of("User:carol"))
        .await
        .expect("DescribeAcls");
    assert_eq!((r.error_code, r.resources.len()), (31, 0));
    let r: CreateAclsResponse = alice
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![write_on_orders("User:alice")]),
        )
        .await
        .expect("CreateAcls");
    assert_eq!(r.results[0].error_code, 31);
    let r: DeleteAclsResponse = alice
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(ANY)
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_pattern_type_filter(ANY)
                .with_operation(ANY)
                .with_permission_type(ANY)]),
        )
        .await
        .expect("DeleteAcls");
    assert_eq!(r.filter_results[0].error_code, 31);
    let r: AlterUserScramCredentialsResponse = alice
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default()
                .with_upsertions(vec![carol_upsertion("stolen", 4096)]),
        )
        .await
        .expect("AlterUserScramCredentials");
    assert_eq!(
        (&*r.results[0].user, r.results[0].error_code),
        ("carol", 31)
    );
    let r: DescribeUserScramCredentialsResponse = alice
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            &DescribeUserScramCredentialsRequest::default().with_users(None),
        )
        .await
        .expect("DescribeUserScramCredentials");
    assert_eq!(r.error_code, 31);
    // Nothing alice asked for happened.
    assert!(lab
        .credentials
        .snapshot()
        .credential("carol", Mechanism::ScramSha512)
        .is_some_and(|c| c.iterations() == 8192));
    assert!(!std::fs::read_to_string(&lab.policy_file)
        .expect("policy file")
        .contains("User:alice"));

    // DeleteAcls returns what it matched; from the next request on carol may not see orders.
    let deleted: DeleteAclsResponse = admin
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(TOPIC_TYPE)
                .with_resource_name_filter(Some(s(TOPIC)))
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(Some(s("User:carol")))
                .with_host_filter(None)
                .with_operation(ANY)
                .with_permission_type(ANY)]),
        )
        .await
        .expect("DeleteAcls");
    assert_eq!(deleted.filter_results[0].error_code, 0);
    let matched = &deleted.filter_results[0].matching_acls;
    assert_eq!(matched.len(), 1);
    assert_eq!(
        (&*matched[0].principal, matched[0].operation),
        ("User:carol", WRITE)
    );
    let r: DescribeAclsResponse = admin
        .call(ApiKey::DescribeAcls, 3, &acls_of("User:carol"))
        .await
        .expect("DescribeAcls");
    assert!(r.resources.is_empty());
    assert_eq!(carol_sees_orders(&lab).await, 29);

    // Deleting carol's credential locks her out at the next login.
    let r: AlterUserScramCredentialsResponse = admin
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_deletions(vec![
                ScramCredentialDeletion::default()
                    .with_name(s("carol"))
                    .with_mechanism(SCRAM_SHA_512),
            ]),
        )
        .await
        .expect("AlterUserScramCredentials");
    assert_eq!(r.results[0].error_code, 0);
    let refused = Conn::login(&lab, "carol", "carol-secret").await;
    let Err(reason) = refused else {
        panic!("carol must no longer log in");
    };
    assert!(reason.contains("error 58"), "{reason}");

    lab.gateway.shutdown().await;
}
