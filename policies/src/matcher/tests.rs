//! Ported from Kafka's AuthorizerTest, BaseAuthorizerTest and StandardAuthorizerTest
//! (reference §4.3), plus kgate's groups, roles and cache.

use std::net::IpAddr;

use crate::*;

/// `"allow User:alice Read Topic literal orders *"`.
pub(crate) fn acl(s: &str) -> AclBinding {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [permission, principal, operation, resource_type, pattern_type, name, host] = f[..] else {
        panic!("bad acl spec {s}");
    };
    AclBinding {
        pattern: ResourcePattern::new(
            resource_type.parse().unwrap(),
            pattern_type.parse().unwrap(),
            name,
        )
        .unwrap(),
        principal: principal.parse().unwrap(),
        host: host.parse().unwrap(),
        operation: operation.parse().unwrap(),
        permission: permission.parse().unwrap(),
    }
}

fn authorizer(acls: &[&str]) -> Authorizer {
    let mut p = Policy::new();
    for a in acls {
        p.add_acl(acl(a));
    }
    Authorizer::new(p, AuthorizerOptions::default())
}

const HOST1: &str = "192.168.1.1";
const HOST2: &str = "192.168.1.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn user(s: &str) -> Principal {
    s.parse().unwrap()
}

/// Whether `principal` from `host` may do `op` on `resource` (`Topic:orders`).
fn allowed(a: &Authorizer, principal: &str, host: &str, op: Operation, resource: &str) -> bool {
    decide(a, principal, host, op, resource).allowed
}

fn decide(a: &Authorizer, principal: &str, host: &str, op: Operation, resource: &str) -> Decision {
    let (t, name) = resource.split_once(':').unwrap();
    let d = a.authorize(&Request {
        principal: &user(principal),
        groups: &[],
        host: ip(host),
        resource_type: t.parse().unwrap(),
        name,
        operation: op,
    });
    let again = a.authorize_uncached(&Request {
        principal: &user(principal),
        groups: &[],
        host: ip(host),
        resource_type: t.parse().unwrap(),
        name,
        operation: op,
    });
    assert_eq!(d, again, "cached and uncached decisions differ");
    d
}

use Operation::*;

#[test]
fn default_deny_with_no_acl() {
    let a = authorizer(&[]);
    let d = decide(&a, "User:alice", HOST1, Read, "Topic:orders");
    assert!(!d.allowed);
    assert_eq!(d.rule.to_string(), "no rule matched: default deny");
}

#[test]
fn allow_everyone_if_no_acl_found_means_no_acl_of_anyone_on_the_resource() {
    let mut p = Policy::new();
    p.set_allow_everyone_if_no_acl_found(true);
    p.add_acl(acl("allow User:bob Read Topic prefixed ord *"));
    let a = Authorizer::new(p, AuthorizerOptions::default());
    // A prefixed ACL of another user covers `orders`: no fallback.
    assert!(!allowed(&a, "User:alice", HOST1, Read, "Topic:orders"));
    // Nothing covers `payments`.
    let d = decide(&a, "User:alice", HOST1, Write, "Topic:payments");
    assert!(d.allowed);
    assert_eq!(d.rule, Rule::AllowEveryoneNoAcl);
    // A wildcard ACL covers everything of the type.
    let mut p = (*a.policy()).clone();
    p.add_acl(acl("deny User:carol Read Group literal * *"));
    a.replace(p).unwrap();
    assert!(!allowed(&a, "User:alice", HOST1, Read, "Group:g1"));
    assert!(allowed(
        &a,
        "User:alice",
        HOST1,
        Read,
        "Cluster:kafka-cluster"
    ));
}

#[test]
fn allow_on_prefixed_and_wildcard_resources() {
    let a = authorizer(&[
        "allow User:alice Read Topic prefixed ord *",
        "allow User:bob Write Topic literal * *",
    ]);
    assert!(allowed(&a, "User:alice", HOST1, Read, "Topic:orders"));
    assert!(allowed(&a, "User:alice", HOST1, Read, "Topic:ord"));
    assert!(!allowed(&a, "User:alice", HOST1, Read, "Topic:or"));
    assert!(!allowed(&a, "User:alice", HOST1, Read, "Topic:xorders"));
    assert!(allowed(&a, "User:bob", HOST1, Write, "Topic:anything"));
    assert!(!allowed(&a, "User:bob", HOST1, Write, "Group:anything"));
}

#[test]
fn deny_takes_precedence() {
    let a = authorizer(&[
        "allow User:alice All Topic literal * *",
        "deny User:alice Write Topic prefixed pay *",
        "allow User:alice Write Topic literal payments *",
    ]);
    let d = decide(&a, "User:alice", HOST1, Write, "Topic:payments");
    assert!(!d.allowed);
    assert_eq!(
        d.rule,
        Rule::Acl(acl("deny User:alice Write Topic prefixed pay *").into())
    );
    // A deny on WRITE leaves DESCRIBE alone.
    assert!(allowed(&a, "User:alice", HOST1, Describe, "Topic:payments"));
    assert!(allowed(&a, "User:alice", HOST1, Write, "Topic:orders"));
}

#[test]
fn deny_all_beats_allow_and_wildcard_principal_deny_hits_everyone() {
    let a = authorizer(&[
        "allow User:alice Read Topic literal t *",
        "deny User:* All Topic literal t *",
    ]);
    assert!(!allowed(&a, "User:alice", HOST1, Read, "Topic:t"));
    assert!(!allowed(&a, "Group:custom", HOST1, Describe, "Topic:t"));
}

/// AuthorizerTest.testAclInheritance.
#[test]
fn acl_inheritance() {
    let concrete = &Operation::ALL[1..];
    let cases: &[(Operation, &[Operation])] = &[
        (All, concrete),
        (Read, &[Read, Describe]),
        (Write, &[Write, Describe]),
        (Delete, &[Delete, Describe]),
        (Alter, &[Alter, Describe]),
        (AlterConfigs, &[AlterConfigs, DescribeConfigs]),
        (Describe, &[Describe]),
        (DescribeConfigs, &[DescribeConfigs]),
        (Create, &[Create]),
        (IdempotentWrite, &[IdempotentWrite]),
    ];
    for &(granted, implied) in cases {
        let a = authorizer(&[&format!("allow User:alice {granted} Topic literal t *")]);
        for &op in concrete {
            assert_eq!(
                allowed(&a, "User:alice", HOST1, op, "Topic:t"),
                implied.contains(&op),
                "ALLOW {granted} and {op}"
            );
        }
        // DENY implies nothing but itself (ALL denies everything).
        let a = authorizer(&[
            &format!("deny User:alice {granted} Topic literal t *"),
            "allow User:alice All Topic literal t *",
        ]);
        for &op in concrete {
            let denied = granted == All || op == granted;
            assert_eq!(
                !allowed(&a, "User:alice", HOST1, op, "Topic:t"),
                denied,
                "DENY {granted} and {op}"
            );
        }
    }
}

#[test]
fn super_users_bypass_deny() {
    let mut p = Policy::new();
    p.add_super_user(user("User:admin"));
    p.add_acl(acl("deny User:* All Topic literal * *"));
    let a = Authorizer::new(
        p,
        AuthorizerOptions {
            super_users: vec![user("Custom:svc")],
            ..Default::default()
        },
    );
    let d = decide(&a, "User:admin", HOST1, Alter, "Topic:x");
    assert!(d.allowed);
    assert_eq!(d.rule.to_string(), "super user User:admin");
    assert!(
        allowed(&a, "Custom:svc", HOST1, Read, "Topic:x"),
        "custom principal type"
    );
    assert!(
        !allowed(&a, "User:Admin", HOST1, Read, "Topic:x"),
        "case-sensitive"
    );
    assert!(!allowed(&a, "User:bob", HOST1, Read, "Topic:x"));
}

/// StandardAuthorizerTest: host address validation.
#[test]
fn hosts_match_exactly() {
    let a = authorizer(&[
        &format!("allow User:alice Read Topic literal t {HOST1}"),
        "allow User:bob Read Topic literal t *",
        &format!("deny User:bob Read Topic literal t {HOST2}"),
        "allow User:carol Read Topic literal t ::1",
    ]);
    assert!(allowed(&a, "User:alice", HOST1, Read, "Topic:t"));
    assert!(!allowed(&a, "User:alice", HOST2, Read, "Topic:t"));
    assert!(allowed(&a, "User:bob", HOST1, Read, "Topic:t"));
    assert!(!allowed(&a, "User:bob", HOST2, Read, "Topic:t"));
    assert!(allowed(
        &a,
        "User:carol",
        "0:0:0:0:0:0:0:1",
        Read,
        "Topic:t"
    ));
    assert!(!allowed(&a, "User:carol", "127.0.0.1", Read, "Topic:t"));
}

/// AuthorizerTest.testTopicAcl: a matrix of users, hosts and operations.
#[test]
fn topic_acl_matrix() {
    let a = authorizer(&[
        &format!("allow User:rob Read Topic literal t {HOST1}"),
        &format!("deny User:rob Read Topic literal t {HOST2}"),
        &format!("allow User:rob Write Topic literal t {HOST2}"),
        "allow User:batman Describe Topic literal t *",
        "allow User:* Read Topic literal t *",
        "deny User:bob Read Topic literal t *",
    ]);
    let expect = [
        ("User:rob", HOST1, Read, true),
        ("User:rob", HOST2, Read, false),
        ("User:rob", HOST2, Write, true),
        ("User:rob", HOST1, Write, false),
        ("User:rob", HOST2, Describe, true),
        ("User:batman", HOST1, Describe, true),
        ("User:batman", HOST1, Read, true),
        ("User:batman", HOST1, Write, false),
        ("User:bob", HOST1, Read, false),
        ("User:bob", HOST1, Describe, true),
        ("User:nobody", HOST2, Read, true),
        ("User:nobody", HOST2, Alter, false),
    ];
    for (p, h, op, want) in expect {
        assert_eq!(allowed(&a, p, h, op, "Topic:t"), want, "{p} {h} {op}");
    }
}

#[test]
fn single_character_resource_acls() {
    let a = authorizer(&[
        "allow User:a Write Topic literal f *",
        "allow User:a Read Topic prefixed _ *",
    ]);
    assert!(allowed(&a, "User:a", HOST1, Write, "Topic:f"));
    assert!(!allowed(&a, "User:a", HOST1, Write, "Topic:foo"));
    assert!(allowed(&a, "User:a", HOST1, Read, "Topic:_foo"));
    assert!(allowed(&a, "User:a", HOST1, Read, "Topic:_"));
    assert!(!allowed(&a, "User:a", HOST1, Read, "Topic:foo_"));
}

/// AuthorizerTest.testAuthorizeWithEmptyResourceName.
#[test]
fn an_empty_name_matches_only_the_wildcard() {
    let a = authorizer(&["allow User:a Read Group prefixed g *"]);
    assert!(!allowed(&a, "User:a", HOST1, Read, "Group:"));
    let a = authorizer(&["allow User:a Read Group literal * *"]);
    assert!(allowed(&a, "User:a", HOST1, Read, "Group:"));
}

#[test]
fn many_acls_and_prefix_chains() {
    let mut acls: Vec<String> = (0..200)
        .map(|i| format!("allow User:u{i} Read Topic literal t{i} *"))
        .collect();
    acls.push("allow User:u7 Write Topic prefixed t *".into());
    acls.push("deny User:u7 Write Topic prefixed t1 *".into());
    acls.push("allow User:u7 Alter Topic prefixed t12 *".into());
    let refs: Vec<&str> = acls.iter().map(String::as_str).collect();
    let a = authorizer(&refs);
    assert!(allowed(&a, "User:u150", HOST1, Read, "Topic:t150"));
    assert!(!allowed(&a, "User:u150", HOST1, Read, "Topic:t151"));
    assert!(allowed(&a, "User:u7", HOST1, Write, "Topic:t7"));
    assert!(!allowed(&a, "User:u7", HOST1, Write, "Topic:t12"));
    assert!(allowed(&a, "User:u7", HOST1, Alter, "Topic:t123"));
    assert!(allowed(&a, "User:u7", HOST1, Describe, "Topic:t123"));
}

// === authorizeByResourceType (KIP-679) ===

fn by_type(a: &Authorizer, principal: &str, op: Operation, t: ResourceType) -> bool {
    a.authorize_by_resource_type(&user(principal), &[], ip(HOST1), op, t)
        .allowed
}

#[test]
fn by_resource_type_all_host_op_and_principal() {
    use ResourceType::Topic;
    assert!(!by_type(&authorizer(&[]), "User:a", Write, Topic));
    assert!(by_type(
        &authorizer(&["allow User:a Write Topic literal t *"]),
        "User:a",
        Write,
        Topic
    ));
    assert!(by_type(
        &authorizer(&["allow User:a All Topic literal t *"]),
        "User:a",
        Write,
        Topic
    ));
    assert!(by_type(
        &authorizer(&["allow User:* Write Topic prefixed t *"]),
        "User:a",
        Write,
        Topic
    ));
    assert!(!by_type(
        &authorizer(&[&format!("allow User:a Write Topic literal t {HOST2}")]),
        "User:a",
        Write,
        Topic
    ));
    // No implications: READ does not count for DESCRIBE here.
    assert!(!by_type(
        &authorizer(&["allow User:a Read Topic literal t *"]),
        "User:a",
        Describe,
        Topic
    ));
    // Another type does not count.
    assert!(!by_type(
        &authorizer(&["allow User:a Write Group literal t *"]),
        "User:a",
        Write,
        Topic
    ));
}

#[test]
fn by_resource_type_super_user_and_no_acl_override() {
    let mut p = Policy::new();
    p.add_super_user(user("User:admin"));
    p.add_acl(acl("deny User:admin Write Topic literal * *"));
    let a = Authorizer::new(p, AuthorizerOptions::default());
    assert!(by_type(&a, "User:admin", Write, ResourceType::Topic));
    let mut p = Policy::new();
    p.set_allow_everyone_if_no_acl_found(true);
    let a = Authorizer::new(p.clone(), AuthorizerOptions::default());
    assert!(by_type(&a, "User:a", Write, ResourceType::Topic));
    p.add_acl(acl("deny User:b Read Topic literal * *"));
    let a = Authorizer::new(p, AuthorizerOptions::default());
    assert!(!by_type(&a, "User:a", Write, ResourceType::Topic));
}

#[test]
fn by_resource_type_deny_dominance() {
    use ResourceType::Topic;
    let cases: &[(&[&str], bool, &str)] = &[
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:a Write Topic literal t2 *",
            ],
            true,
            "an unrelated deny does not dominate",
        ),
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:a Write Topic literal t1 *",
            ],
            false,
            "deny takes precedence",
        ),
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:a Write Topic literal * *",
            ],
            false,
            "a wildcard deny dominates",
        ),
        (
            &[
                "allow User:a Write Topic literal * *",
                "deny User:a Write Topic literal * *",
            ],
            false,
            "a wildcard deny beats a wildcard allow",
        ),
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:a Write Topic prefixed t *",
            ],
            false,
            "a prefixed deny dominates a literal",
        ),
        (
            &[
                "allow User:a Write Topic prefixed t12 *",
                "deny User:a Write Topic prefixed t1 *",
            ],
            false,
            "a prefixed deny dominates a longer prefix",
        ),
        (
            &[
                "allow User:a Write Topic prefixed t1 *",
                "deny User:a Write Topic prefixed t12 *",
            ],
            true,
            "a longer deny prefix does not dominate",
        ),
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:a Write Topic prefixed t1 *",
                "allow User:a Write Topic literal x *",
            ],
            true,
            "one surviving allow is enough",
        ),
        (
            &[
                "allow User:a Write Topic prefixed t *",
                "deny User:a Write Topic literal t *",
            ],
            true,
            "a literal deny does not dominate a prefix",
        ),
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:b Write Topic literal * *",
            ],
            true,
            "another user's deny does not count",
        ),
        (
            &[
                "allow User:a Write Topic literal t1 *",
                "deny User:* All Topic prefixed t *",
            ],
            false,
            "User:* and ALL denies count",
        ),
    ];
    for (acls, want, why) in cases {
        assert_eq!(
            by_type(&authorizer(acls), "User:a", Write, Topic),
            *want,
            "{why}"
        );
    }
}

#[test]
fn by_resource_type_after_add_and_remove() {
    let a = authorizer(&[]);
    assert!(!by_type(&a, "User:a", Write, ResourceType::Topic));
    a.create_acls(vec![acl("allow User:a Write Topic literal t1 *")])
        .unwrap();
    assert!(by_type(&a, "User:a", Write, ResourceType::Topic));
    a.create_acls(vec![acl("deny User:a Write Topic prefixed t *")])
        .unwrap();
    assert!(!by_type(&a, "User:a", Write, ResourceType::Topic));
    a.delete_acls(&[AclBindingFilter::exact(&acl(
        "deny User:a Write Topic prefixed t *",
    ))])
    .unwrap();
    assert!(by_type(&a, "User:a", Write, ResourceType::Topic));
}

// === authorized operations ===

#[test]
fn authorized_operations_masks() {
    let a = authorizer(&[
        "allow User:a All Topic literal t *",
        "allow User:a Read Group literal g *",
    ]);
    let topic = a.authorized_operations(&user("User:a"), &[], ip(HOST1), ResourceType::Topic, "t");
    let want: i32 = ResourceType::Topic
        .supported_operations()
        .iter()
        .map(|o| 1 << o.code())
        .sum();
    assert_eq!(topic, want);
    let group = a.authorized_operations(&user("User:a"), &[], ip(HOST1), ResourceType::Group, "g");
    assert_eq!(group, (1 << 3) | (1 << 8), "Read implies Describe");
    let cluster = a.authorized_operations(
        &user("User:a"),
        &[],
        ip(HOST1),
        ResourceType::Cluster,
        "kafka-cluster",
    );
    assert_eq!(cluster, 0);
}

// === groups, roles ===

#[test]
fn group_membership_and_request_groups() {
    let mut p = Policy::new();
    p.add_member(user("Group:marketing"), user("User:alice"))
        .unwrap();
    p.add_acl(acl(
        "allow Group:marketing Read Topic literal customer_feedback *",
    ));
    p.add_acl(acl("allow Group:eng Write Topic literal system_logs *"));
    let a = Authorizer::new(p, AuthorizerOptions::default());
    assert!(allowed(
        &a,
        "User:alice",
        HOST1,
        Read,
        "Topic:customer_feedback"
    ));
    assert!(!allowed(
        &a,
        "User:bob",
        HOST1,
        Read,
        "Topic:customer_feedback"
    ));
    let req = |groups: &[Principal]| {
        a.authorize(&Request {
            principal: &user("User:bob"),
            groups,
            host: ip(HOST1),
            resource_type: ResourceType::Topic,
            name: "system_logs",
            operation: Write,
        })
        .allowed
    };
    assert!(!req(&[]));
    assert!(req(&[user("Group:eng")]), "groups from the caller count");
    assert!(!req(&[]), "the cache keys on the groups too");
}

#[test]
fn role_bindings_grant_and_deny_acls_still_win() {
    let mut p = Policy::new();
    let eng = user("Group:eng");
    p.add_member(eng.clone(), user("User:bob")).unwrap();
    p.bind_role(
        RoleBinding::new(
            eng,
            Role::DeveloperWrite,
            Some(ResourcePattern::prefixed(ResourceType::Topic, "system_").unwrap()),
        )
        .unwrap(),
    );
    p.bind_role(RoleBinding::new(user("User:root"), Role::SystemAdmin, None).unwrap());
    p.add_acl(acl("deny User:bob Write Topic literal system_secrets *"));
    let a = Authorizer::new(p, AuthorizerOptions::default());
    let d = decide(&a, "User:bob", HOST1, Write, "Topic:system_logs");
    assert!(d.allowed);
    assert_eq!(
        d.rule.to_string(),
        "role binding: Group:eng DeveloperWrite on Topic PREFIXED \"system_\""
    );
    assert!(allowed(
        &a,
        "User:bob",
        HOST1,
        Describe,
        "Topic:system_logs"
    ));
    assert!(!allowed(&a, "User:bob", HOST1, Read, "Topic:system_logs"));
    assert!(!allowed(
        &a,
        "User:bob",
        HOST1,
        Write,
        "Topic:system_secrets"
    ));
    for (op, res) in [
        (Alter, "Cluster:kafka-cluster"),
        (Read, "Topic:x"),
        (Write, "TransactionalId:t"),
        (CreateTokens, "User:User:x"),
    ] {
        assert!(
            allowed(&a, "User:root", HOST1, op, res),
            "SystemAdmin {op} {res}"
        );
    }
}

// === cache and generations ===

#[test]
fn a_change_takes_effect_on_the_next_decision() {
    let a = authorizer(&["allow User:a Read Topic literal t *"]);
    let g1 = a.generation();
    assert!(allowed(&a, "User:a", HOST1, Read, "Topic:t"));
    assert!(a.cached_decisions() > 0);
    let removed = a.delete_acls(&[AclBindingFilter::any()]).unwrap();
    assert_eq!(removed[0].len(), 1);
    assert_eq!(a.generation(), g1 + 1);
    assert!(!allowed(&a, "User:a", HOST1, Read, "Topic:t"));
    // A change that changes nothing keeps the generation.
    a.delete_acls(&[AclBindingFilter::any()]).unwrap();
    assert_eq!(a.generation(), g1 + 1);
}

#[test]
fn create_and_delete_report_like_kafka() {
    let a = authorizer(&[]);
    let b1 = acl("allow User:a Read Topic literal t *");
    let b2 = acl("allow User:a Read Topic prefixed t *");
    assert_eq!(
        a.create_acls(vec![b1.clone(), b2.clone(), b1.clone()])
            .unwrap(),
        vec![true, true, false]
    );
    let mut match_t = AclBindingFilter::any();
    match_t.pattern.name = Some("t".into());
    match_t.pattern.pattern_type = PatternTypeFilter::Match;
    assert_eq!(a.describe_acls(&match_t), vec![b1.clone(), b2.clone()]);
    // Dedupe on delete: the second filter reports nothing already deleted by the first.
    let out = a
        .delete_acls(&[match_t.clone(), AclBindingFilter::any()])
        .unwrap();
    assert_eq!(out, vec![vec![b1, b2], vec![]]);
}

#[test]
fn the_cache_stays_bounded() {
    let mut p = Policy::new();
    p.add_acl(acl("allow User:* Read Topic literal * *"));
    let a = Authorizer::new(
        p,
        AuthorizerOptions {
            cache_capacity: 64,
            ..Default::default()
        },
    );
    for i in 0..1000 {
        assert!(allowed(&a, "User:a", HOST1, Read, &format!("Topic:t{i}")));
    }
    assert!(a.cached_decisions() <= 64 + 16, "{}", a.cached_decisions());
    let off = Authorizer::new(
        Policy::new(),
        AuthorizerOptions {
            cache_capacity: 0,
            ..Default::default()
        },
    );
    assert!(!allowed(&off, "User:a", HOST1, Read, "Topic:t"));
    assert_eq!(off.cached_decisions(), 0);
}

#[test]
fn a_file_backed_authorizer_persists_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    Policy::new().save(&path).unwrap();
    let a = Authorizer::open(&path, AuthorizerOptions::default()).unwrap();
    a.create_acls(vec![acl("allow User:a Read Topic literal t *")])
        .unwrap();
    assert_eq!(Policy::load(&path).unwrap().acls().len(), 1);
    // A bad file is refused and the policy in force stays.
    std::fs::write(
        &path,
        "[[acl]]\nprincipal = \"alice\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\nname = \"t\"\n",
    )
    .unwrap();
    let g = a.generation();
    let err = a.reload().unwrap_err().to_string();
    assert!(err.contains("policy.toml:2:13"), "{err}");
    assert_eq!(a.generation(), g);
    assert!(allowed(&a, "User:a", HOST1, Read, "Topic:t"));
    // A good file is taken.
    Policy::new().save(&path).unwrap();
    assert_eq!(a.reload().unwrap(), g + 1);
    assert!(!allowed(&a, "User:a", HOST1, Read, "Topic:t"));
}

#[test]
fn concurrent_readers_and_a_writer_agree() {
    let a = std::sync::Arc::new(authorizer(&["allow User:a Read Topic literal t *"]));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let d = a.authorize(&Request {
                        principal: &user("User:a"),
                        groups: &[],
                        host: ip(HOST1),
                        resource_type: ResourceType::Topic,
                        name: "t",
                        operation: Read,
                    });
                    assert!(matches!(d.rule, Rule::Acl(_) | Rule::DefaultDeny));
                }
            })
        })
        .collect();
    for i in 0..50 {
        if i % 2 == 0 {
            a.delete_acls(&[AclBindingFilter::any()]).unwrap();
        } else {
            a.create_acls(vec![acl("allow User:a Read Topic literal t *")])
                .unwrap();
        }
    }
    for r in readers {
        r.join().unwrap();
    }
}
