//! The example policies parse, and decide as their comments say.

use std::path::Path;

use kgate_policies::*;

fn load(name: &str) -> Authorizer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    Authorizer::open(&path, AuthorizerOptions::default()).unwrap()
}

fn allowed(
    a: &Authorizer,
    who: &str,
    op: Operation,
    t: ResourceType,
    name: &str,
    host: &str,
) -> bool {
    a.authorize(&Request {
        principal: &who.parse().unwrap(),
        groups: &[],
        host: host.parse().unwrap(),
        resource_type: t,
        name,
        operation: op,
    })
    .allowed
}

use Operation::*;
use ResourceType::{Cluster, Group, Topic};

const H: &str = "10.0.0.5";

#[test]
fn seeds_scenario() {
    let a = load("seeds.toml");
    // Marketing may only read customer_feedback.
    assert!(allowed(
        &a,
        "User:alice",
        Read,
        Topic,
        "customer_feedback",
        H
    ));
    assert!(allowed(
        &a,
        "User:alice",
        Describe,
        Topic,
        "customer_feedback",
        H
    ));
    assert!(allowed(
        &a,
        "User:alice",
        Read,
        Group,
        "marketing-dashboard",
        H
    ));
    assert!(!allowed(
        &a,
        "User:alice",
        Write,
        Topic,
        "customer_feedback",
        H
    ));
    assert!(!allowed(&a, "User:alice", Read, Topic, "system_logs", H));
    // Engineering may only write system_logs.
    assert!(allowed(&a, "User:bob", Write, Topic, "system_logs", H));
    assert!(!allowed(&a, "User:bob", Read, Topic, "system_logs", H));
    assert!(!allowed(
        &a,
        "User:bob",
        Read,
        Topic,
        "customer_feedback",
        H
    ));
    assert!(
        a.authorize_by_resource_type(
            &"User:bob".parse().unwrap(),
            &[],
            H.parse().unwrap(),
            Write,
            Topic
        )
        .allowed
    );
    // Admins may do everything.
    for (op, t, n) in [
        (Read, Topic, "customer_feedback"),
        (Write, Topic, "anything"),
        (Alter, Cluster, "kafka-cluster"),
        (Delete, Group, "g"),
    ] {
        assert!(allowed(&a, "User:admin", op, t, n, H), "{op} {t} {n}");
    }
    // Strangers nothing.
    assert!(!allowed(
        &a,
        "User:mallory",
        Describe,
        Topic,
        "customer_feedback",
        H
    ));
}

#[test]
fn kafka_acls_style() {
    let a = load("kafka-acls-style.toml");
    assert!(allowed(&a, "User:app", Write, Topic, "events", H));
    assert!(allowed(&a, "User:reporting", Read, Topic, "payments-eu", H));
    assert!(allowed(&a, "User:reporting", Read, Group, "reporting-1", H));
    assert!(!allowed(
        &a,
        "User:reporting",
        Write,
        Topic,
        "payments-audit",
        H
    ));
    assert!(
        allowed(&a, "User:admin", Write, Topic, "payments-audit", H),
        "super users bypass DENY"
    );
    assert!(allowed(&a, "User:x", Describe, Topic, "t", "203.0.113.10"));
    assert!(!allowed(&a, "User:x", Describe, Topic, "t", H));
}

#[test]
fn roles_example() {
    let a = load("roles.toml");
    assert!(allowed(&a, "User:erin", Alter, Topic, "payments.eu", H));
    assert!(allowed(
        &a,
        "User:erin",
        IdempotentWrite,
        Cluster,
        "kafka-cluster",
        H
    ));
    assert!(!allowed(&a, "User:erin", Read, Topic, "orders", H));
    assert!(allowed(&a, "User:dashboard", Read, Topic, "orders", H));
    assert!(!allowed(&a, "User:dashboard", Write, Topic, "orders", H));
    assert!(allowed(
        &a,
        "User:grace",
        DescribeConfigs,
        Topic,
        "orders",
        H
    ));
    assert!(allowed(&a, "User:grace", Create, Topic, "new", H));
    assert!(!allowed(&a, "User:grace", Read, Topic, "orders", H));
    assert!(!allowed(
        &a,
        "User:grace",
        Alter,
        Cluster,
        "kafka-cluster",
        H
    ));
    assert!(allowed(
        &a,
        "User:security",
        Alter,
        Cluster,
        "kafka-cluster",
        H
    ));
}
