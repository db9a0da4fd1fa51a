//! KIP-848 consumer groups through kgate with librdkafka (`group.protocol=consumer`) in front
//! of the embedded cluster, whose mock brokers speak ConsumerGroupHeartbeat and assign
//! partitions by topic id: two members split the partitions and read every record (Fetch by
//! topic id through kgate); a member subscribed to a topic it may not describe gets
//! TOPIC_AUTHORIZATION_FAILED; revoking READ on the group stops it.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kgate_policies::{
    AclBinding, Host, Operation, Permission, Policy, Principal, ResourcePattern, ResourceType,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

const TOPIC: &str = "orders";
const SECRET: &str = "secret";
const GROUP: &str = "g848";

fn acl(resource_type: ResourceType, name: &str, operation: Operation) -> AclBinding {
    let principal: Principal = "User:alice".parse().expect("principal");
    AclBinding {
        pattern: ResourcePattern::literal(resource_type, name).expect("pattern"),
        principal,
        host: Host::Any,
        operation,
        permission: Permission::Allow,
    }
}

fn consumer(client: &ClientConfig, group: &str, topics: &[&str]) -> BaseConsumer {
    let c: BaseConsumer = client
        .clone()
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    c.subscribe(topics).expect("subscribe");
    c
}

/// Polls every consumer until `done` holds (or panics after `secs`), given the errors seen and
/// the number of records received; returns the errors.
fn poll_until(
    consumers: &[&BaseConsumer],
    secs: u64,
    mut done: impl FnMut(&[&BaseConsumer], &[RDKafkaErrorCode], usize) -> bool,
) -> Vec<RDKafkaErrorCode> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut errors = Vec::new();
    let mut received = 0;
    while !done(consumers, &errors, received) {
        assert!(
            Instant::now() < deadline,
            "timed out; errors seen: {errors:?}; assignments: {:?}",
            consumers.iter().map(|c| assigned(c)).collect::<Vec<_>>()
        );
        for c in consumers {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(_)) => received += 1,
                Some(Err(e)) => errors.extend(e.rdkafka_error_code()),
                None => {}
            }
        }
    }
    errors
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_members_split_partitions_and_are_authorized_like_kafka() {
    let cluster = common::cluster_with_topic(TOPIC, 4);
    cluster.create_topic(SECRET, 1).expect("topic");
    let pki = common::Pki::new();
    let mut config = common::gateway_config(&cluster);
    config.tls = Some(pki.tls(false));
    config.sasl.authenticator = Some(common::authenticator(pki.dir.path()));
    let authz = common::authz(pki.dir.path(), "");
    config.authz = Some(authz.clone());
    let (gateway, _) = common::start_gateway(config).await;
    let minimal = vec![
        acl(ResourceType::Group, GROUP, Operation::Read),
        acl(ResourceType::Topic, TOPIC, Operation::Read),
        acl(ResourceType::Topic, TOPIC, Operation::Write),
    ];
    authz
        .authorizer
        .create_acls(minimal.clone())
        .expect("grant");
    let client = common::sasl_ssl_client(
        &gateway.bootstrap_servers(),
        &pki,
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    );

    const RECORDS: usize = 40;
    common::produce(&client, TOPIC, RECORDS, 8).await;
    let result = tokio::task::spawn_blocking(move || {
        // Two members split the four partitions between them and read every record.
        let a = consumer(&client, GROUP, &[TOPIC]);
        let b = consumer(&client, GROUP, &[TOPIC]);
        poll_until(&[&a, &b], 60, |cs, _, received| {
            let (x, y) = (assigned(cs[0]), assigned(cs[1]));
            !x.is_empty()
                && !y.is_empty()
                && x.is_disjoint(&y)
                && x.len() + y.len() == 4
                && received >= RECORDS
        });
        // A member subscribed to a topic it may not describe: 29 for the whole heartbeat.
        let c = consumer(&client, "g848-secret", &[SECRET]);
        authz
            .authorizer
            .create_acls(vec![acl(
                ResourceType::Group,
                "g848-secret",
                Operation::Read,
            )])
            .expect("grant");
        let errors = poll_until(&[&c], 60, |_, errors, _| {
            errors.contains(&RDKafkaErrorCode::TopicAuthorizationFailed)
        });
        assert!(assigned(&c).is_empty(), "assigned despite 29: {errors:?}");
        drop(c);
        // Revoking READ on the group stops its members.
        let mut policy = Policy::parse("", "policy.toml".as_ref()).expect("empty policy");
        policy.add_acl(acl(ResourceType::Topic, TOPIC, Operation::Read));
        authz.authorizer.replace(policy).expect("revoke");
        poll_until(&[&a, &b], 60, |_, errors, _| {
            errors.contains(&RDKafkaErrorCode::GroupAuthorizationFailed)
        });
    })
    .await;
    gateway.shutdown().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
