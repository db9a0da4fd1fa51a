//! Metadata through kgate, as Kafka answers it, at every version: a request naming only
//! topics the principal may not describe never shows any other topic (the v0 empty-list leak,
//! and a broker that reads an empty list as "all topics"), and a missing topic the principal
//! may describe but not create is 29 only when the request allowed auto-creation, else 3.
//!
//! Raw requests (kafka-protocol) over SASL/PLAIN, so every version is sent exactly as asked.

mod common;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use common::raw::RawClient;

/// alice may describe `public` and `planned` (which does not exist) and nothing else; she may
/// create nothing.
const POLICY: &str = r#"
version = 1
[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Describe"
resource_type = "Topic"
pattern_type = "Literal"
name = "public"
host = "*"

[[acl]]
principal = "User:alice"
permission = "Allow"
operation = "Describe"
resource_type = "Topic"
pattern_type = "Literal"
name = "planned"
host = "*"
"#;

fn named(names: &[&str], allow_auto: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string((*n).to_string()))))
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(allow_auto)
}

fn topics(r: &MetadataResponse) -> Vec<(String, i16)> {
    let mut t: Vec<(String, i16)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
            )
        })
        .collect();
    t.sort();
    t
}

/// Every check of this file against a gateway in front of an upstream that holds the topics
/// `public`, `secret` and `payroll`.
async fn metadata_as_kafka_answers(upstream: Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let mut config = kgate_proxy::GatewayConfig::new(listen, upstream);
    config.refresh_interval = std::time::Duration::from_secs(3600);
    config.sasl.authenticator = Some(common::authenticator(dir.path()));
    config.authz = Some(common::authz(dir.path(), POLICY));
    let (gateway, _) = common::start_gateway(config).await;
    let addr = gateway.bootstrap_addr().to_string();
    let mut c = RawClient::login(&addr, "alice", "alice-secret").await;
    let max = c.version(ApiKey::Metadata, 12);
    assert!(max >= 4, "the gateway offers Metadata v{max}");

    for version in 0..=max {
        // Only denied topics named: exactly those, with 29, and nothing else of the cluster.
        let allow_auto = version < 4;
        let r: MetadataResponse = c
            .call(
                ApiKey::Metadata,
                version,
                &named(&["secret", "payroll"], allow_auto),
            )
            .await;
        assert_eq!(
            topics(&r),
            vec![("payroll".into(), 29), ("secret".into(), 29)],
            "v{version}: only the named topics, denied"
        );
        assert!(
            r.topics.iter().all(|t| t.partitions.is_empty()),
            "v{version}: no partitions of a denied topic"
        );
        assert!(!r.brokers.is_empty(), "v{version}: the brokers still come");

        // A mix: the allowed one answered by the broker, the denied one 29, nothing more.
        let r: MetadataResponse = c
            .call(
                ApiKey::Metadata,
                version,
                &named(&["public", "secret"], allow_auto),
            )
            .await;
        assert_eq!(
            topics(&r),
            vec![("public".into(), 0), ("secret".into(), 29)],
            "v{version}"
        );

        // A missing topic alice may describe but not create.
        if version >= 4 {
            let r: MetadataResponse = c
                .call(ApiKey::Metadata, version, &named(&["planned"], false))
                .await;
            assert_eq!(
                topics(&r),
                vec![("planned".into(), 3)],
                "v{version} without auto-creation: UNKNOWN_TOPIC_OR_PARTITION"
            );
        }
        let r: MetadataResponse = c
            .call(ApiKey::Metadata, version, &named(&["planned"], true))
            .await;
        assert_eq!(
            topics(&r),
            vec![("planned".into(), 29)],
            "v{version} with auto-creation (implied before v4): TOPIC_AUTHORIZATION_FAILED"
        );

        // All topics: only what alice may describe.
        let all = if version == 0 {
            MetadataRequest::default().with_topics(Some(Vec::new()))
        } else {
            MetadataRequest::default()
                .with_topics(None)
                .with_allow_auto_topic_creation(allow_auto)
        };
        let r: MetadataResponse = c.call(ApiKey::Metadata, version, &all).await;
        assert_eq!(
            topics(&r),
            vec![("public".into(), 0)],
            "v{version} all topics"
        );
    }
    // Nothing was created on the way: `planned` is still missing.
    let r: MetadataResponse = c
        .call(ApiKey::Metadata, max, &named(&["planned"], false))
        .await;
    assert_eq!(topics(&r), vec![("planned".into(), 3)]);

    // An empty v1+ list means no topic in Kafka (a broker may read it as all): none shown.
    let r: MetadataResponse = c.call(ApiKey::Metadata, max, &named(&[], false)).await;
    assert_eq!(topics(&r), Vec::<(String, i16)>::new());
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_never_leaks_and_answers_missing_topics_as_kafka_embedded() {
    let cluster = common::cluster_with_topic("public", 2);
    cluster.create_topic("secret", 2).expect("topic");
    cluster.create_topic("payroll", 1).expect("topic");
    let upstream = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_owned)
        .collect();
    metadata_as_kafka_answers(upstream).await;
}

/// Every broker address a client is told (Metadata, FindCoordinator old and new style,
/// DescribeCluster) is one of kgate's own listeners, never an upstream broker's.
///
/// `describe_cluster`: whether the upstream serves DescribeCluster (tansu does; librdkafka's
/// mock cluster does not, so kgate does not offer it there).
async fn only_kgate_addresses_reach_clients(
    upstream: Vec<String>,
    group: &str,
    describe_cluster: bool,
) {
    use kafka_protocol::messages::{
        DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
        FindCoordinatorResponse,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let mut config = kgate_proxy::GatewayConfig::new(listen, upstream.clone());
    config.refresh_interval = std::time::Duration::from_secs(3600);
    config.advertised_host = Some("localhost".into());
    config.sasl.authenticator = Some(common::authenticator(dir.path()));
    config.authz = Some(common::authz(
        dir.path(),
        "version = 1\nsuper_users = [\"User:alice\"]\n",
    ));
    let (gateway, _) = common::start_gateway(config).await;
    let addr = gateway.bootstrap_addr().to_string();
    let mut c = RawClient::login(&addr, "alice", "alice-secret").await;
    let directory = gateway.shared().directory.brokers();
    let kgate_ports: Vec<i32> = directory.values().map(|b| i32::from(b.port)).collect();
    let upstream_addrs: Vec<String> = directory.values().map(|b| b.upstream.clone()).collect();
    assert!(!kgate_ports.is_empty());
    let check = |what: &str, host: &str, port: i32| {
        let seen = format!("{host}:{port}");
        assert_eq!(
            host, "localhost",
            "{what}: {seen} is not kgate's advertised host"
        );
        assert!(
            kgate_ports.contains(&port),
            "{what}: port {port} is not one of kgate's {kgate_ports:?}"
        );
        assert!(
            !upstream_addrs.contains(&seen),
            "{what}: {seen} is an upstream broker's own address"
        );
    };
    let v = c.version(ApiKey::Metadata, 12);
    let r: MetadataResponse = c
        .call(ApiKey::Metadata, v, &named(&["public"], false))
        .await;
    assert!(!r.brokers.is_empty());
    for b in &r.brokers {
        check("Metadata", &b.host, b.port);
    }
    let v = c.version(ApiKey::FindCoordinator, 6);
    for version in [v.min(3), v] {
        let req = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string()))
        };
        let mut answered = false;
        for _ in 0..50 {
            let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, version, &req).await;
            let found: Vec<(String, i32)> = if version >= 4 {
                r.coordinators
                    .iter()
                    .filter(|k| k.error_code == 0)
                    .map(|k| (k.host.to_string(), k.port))
                    .collect()
            } else if r.error_code == 0 {
                vec![(r.host.to_string(), r.port)]
            } else {
                Vec::new()
            };
            if let Some((host, port)) = found.first() {
                check(&format!("FindCoordinator v{version}"), host, *port);
                answered = true;
                break;
            }
            // The coordinator may not be ready yet (COORDINATOR_NOT_AVAILABLE): ask again.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            answered,
            "FindCoordinator v{version} never named a coordinator"
        );
    }
    let offered = c.versions.get(&(ApiKey::DescribeCluster as i16)).copied();
    assert_eq!(
        offered.is_some(),
        describe_cluster,
        "DescribeCluster offered"
    );
    if let Some(max) = offered {
        let r: DescribeClusterResponse = c
            .call(
                ApiKey::DescribeCluster,
                max,
                &DescribeClusterRequest::default(),
            )
            .await;
        assert!(!r.brokers.is_empty());
        for b in &r.brokers {
            check("DescribeCluster", &b.host, b.port);
        }
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_kgate_addresses_reach_clients_embedded() {
    let cluster = common::cluster_with_topic("public", 2);
    let upstream = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_owned)
        .collect();
    only_kgate_addresses_reach_clients(upstream, "g1", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_never_leaks_and_answers_missing_topics_as_kafka_tansu() {
    // tansu reads an empty topic list as "all topics" at every version, and does not
    // auto-create: the checks hold all the same.
    let tansu = common::tansu::Tansu::start(&[("public", 2), ("secret", 2), ("payroll", 1)]);
    metadata_as_kafka_answers(vec![tansu.bootstrap()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_kgate_addresses_reach_clients_tansu() {
    let tansu = common::tansu::Tansu::start(&[("public", 2)]);
    only_kgate_addresses_reach_clients(vec![tansu.bootstrap()], "g1", true).await;
}
