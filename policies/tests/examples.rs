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

/// Two writers of one policy file (the gateway answering CreateAcls, and `kgate acl add` in
/// another process) each change what is on disk under the file's lock: neither change is lost.
#[test]
fn two_writers_of_one_policy_file_lose_nothing() {
    use kgate_policies::{AclBinding, Policy, PolicyLock};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    Policy::new().save(&path).unwrap();
    let gateway = Authorizer::open(&path, AuthorizerOptions::default()).unwrap();
    let acl = |topic: &str| AclBinding::from_wire(2, topic, 3, "User:a", "*", 2, 3).unwrap();

    // The CLI's way: lock, load, change, save.
    {
        let _lock = PolicyLock::acquire(&path).unwrap();
        let mut policy = Policy::load(&path).unwrap();
        policy.add_acl(acl("from-cli"));
        policy.save(&path).unwrap();
    }
    // The gateway has not reloaded; its change must keep the CLI's.
    gateway.update(|p| p.add_acl(acl("from-gateway"))).unwrap();
    let on_disk = Policy::load(&path).unwrap();
    let topics: Vec<String> = on_disk
        .acls()
        .iter()
        .map(|a| a.pattern.name().to_owned())
        .collect();
    assert!(topics.contains(&"from-cli".to_owned()), "{topics:?}");
    assert!(topics.contains(&"from-gateway".to_owned()), "{topics:?}");
    assert_eq!(gateway.policy().acls().len(), 2, "in force at once");

    // A writer that keeps the lock (a stopped `kgate acl`) makes the gateway's change fail
    // after a bounded wait instead of holding the request forever; nothing is written.
    {
        let _held = PolicyLock::acquire(&path).unwrap();
        let started = std::time::Instant::now();
        let err = gateway
            .update(|p| p.add_acl(acl("while-locked")))
            .unwrap_err();
        assert!(err.to_string().contains("policy.toml.lock"), "{err}");
        assert!(started.elapsed() >= kgate_policies::GATEWAY_LOCK_WAIT);
        assert!(started.elapsed() < kgate_policies::GATEWAY_LOCK_WAIT * 3);
    }
    assert_eq!(Policy::load(&path).unwrap().acls().len(), 2);

    // A file left broken by a hand edit is not overwritten.
    std::fs::write(&path, "[[acl]\n").unwrap();
    assert!(gateway.update(|p| p.add_acl(acl("third"))).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[[acl]\n");
}

/// Comments an operator wrote survive a rewrite by kgate: at the top, above [groups] and above
/// each binding that is still there; a removed binding takes its comment with it.
#[test]
fn a_rewrite_keeps_the_operators_comments() {
    use kgate_policies::{AclBinding, AclBindingFilter, Policy};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let seeds = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seeds.toml"),
    )
    .unwrap();
    // A binding parked as comments at the end, and a table header written loosely.
    let seeds = format!("{seeds}\n# [[acl]]\n# principal = \"User:parked\"\n").replace(
        "[[acl]]\nprincipal = \"Group:engineering\"",
        "[[ acl ]] # eng\nprincipal = \"Group:engineering\"",
    );
    std::fs::write(&path, &seeds).unwrap();
    let mut policy = Policy::load(&path).unwrap();
    let before = policy.acls().len();
    // Remove the marketing consumer-group binding, add a new one.
    let filter = AclBindingFilter::from_wire(3, Some("marketing-"), 4, None, None, 1, 1)
        .unwrap()
        .unwrap();
    assert_eq!(policy.remove_acls(&filter).len(), 1);
    policy.add_acl(AclBinding::from_wire(2, "invoices", 3, "User:erin", "*", 3, 3).unwrap());
    policy.save(&path).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# The seeds' scenario"), "{text}");
    assert!(
        text.contains("# Marketing reads customer_feedback (Read implies Describe) ...\n[[acl]]\nprincipal = \"Group:marketing\""),
        "{text}"
    );
    assert!(
        !text.contains("with consumer groups named marketing-*"),
        "{text}"
    );
    assert!(text.contains("# Engineering writes system_logs"), "{text}");
    assert!(
        text.ends_with("# [[acl]]\n# principal = \"User:parked\"\n"),
        "{text}"
    );
    let again = Policy::load(&path).unwrap();
    assert_eq!(again, policy);
    assert_eq!(again.acls().len(), before);
    // A second rewrite changes nothing.
    again.save(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}
