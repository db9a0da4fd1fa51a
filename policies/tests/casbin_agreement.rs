//! The compiled matcher agrees with the casbin model (`kafka_acl.conf`), the reference
//! semantics, on thousands of random requests against random policies; and
//! `authorize_by_resource_type` agrees with a line-by-line transcription of Kafka's default
//! `Authorizer.authorizeByResourceType`.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use casbin::function_map::{dynamic_to_str, OperatorFunction};
use casbin::rhai::Dynamic;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use kgate_policies::reference::{
    any_rule_covers, casbin_request, casbin_rows, CASBIN_MODEL, PREFIX_MATCH,
};
use kgate_policies::*;
use proptest::prelude::*;

// Small universes, repeated entries for weight: rules must often collide (deny against allow,
// prefix against literal) for the agreement to mean something.
const PRINCIPALS: &[&str] = &[
    "User:alice",
    "User:alice",
    "User:bob",
    "User:*",
    "Group:g1",
    "Group:g2",
    "Svc:x",
];
const SESSIONS: &[&str] = &[
    "User:alice",
    "User:alice",
    "User:bob",
    "User:carol",
    "Svc:x",
    "Group:g1",
];
const HOSTS: &[&str] = &["*", "*", "10.0.0.1", "::1"];
const CLIENTS: &[&str] = &["10.0.0.1", "10.0.0.2", "::1"];
const NAMES: &[&str] = &["*", "a", "a", "ab", "abc", "b", "hardcode"];
const REQUEST_NAMES: &[&str] = &[
    "",
    "a",
    "ab",
    "ab",
    "abc",
    "abd",
    "b",
    "*",
    "hardcode",
    "x",
    "kafka-cluster",
];
const OPERATIONS: &[Operation] = &[
    Operation::All,
    Operation::All,
    Operation::Read,
    Operation::Read,
    Operation::Write,
    Operation::Describe,
    Operation::Describe,
    Operation::Alter,
    Operation::Delete,
    Operation::AlterConfigs,
    Operation::DescribeConfigs,
    Operation::DescribeConfigs,
    Operation::Create,
    Operation::ClusterAction,
    Operation::IdempotentWrite,
    Operation::CreateTokens,
    Operation::DescribeTokens,
];
const MEMBERS: &[&str] = &["User:alice", "User:bob", "User:carol"];
const GROUPS: &[&str] = &["Group:g1", "Group:g2"];

fn resource_type() -> impl Strategy<Value = ResourceType> {
    // Topic and Group twice as often: they carry most rules.
    prop::sample::select(vec![
        ResourceType::Topic,
        ResourceType::Topic,
        ResourceType::Topic,
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ])
}

fn pattern() -> impl Strategy<Value = ResourcePattern> {
    (resource_type(), any::<bool>(), prop::sample::select(NAMES)).prop_map(|(t, prefixed, name)| {
        let pt = if prefixed {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        };
        let name = if t == ResourceType::Cluster {
            CLUSTER_NAME
        } else {
            name
        };
        ResourcePattern::new(t, pt, name).unwrap()
    })
}

fn operation() -> impl Strategy<Value = Operation> {
    prop::sample::select(OPERATIONS)
}

fn acl() -> impl Strategy<Value = AclBinding> {
    (
        pattern(),
        prop::sample::select(PRINCIPALS),
        prop::sample::select(HOSTS),
        operation(),
        any::<bool>(),
    )
        .prop_map(|(pattern, principal, host, operation, allow)| AclBinding {
            pattern,
            principal: principal.parse().unwrap(),
            host: host.parse().unwrap(),
            operation,
            permission: if allow {
                Permission::Allow
            } else {
                Permission::Deny
            },
        })
}

fn role_binding() -> impl Strategy<Value = Option<RoleBinding>> {
    (
        prop::sample::select(PRINCIPALS),
        prop::sample::select(Role::ALL.to_vec()),
        prop::option::of(pattern()),
    )
        .prop_map(|(p, role, resource)| RoleBinding::new(p.parse().unwrap(), role, resource).ok())
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::collection::vec(acl(), 0..20),
        prop::collection::vec(role_binding(), 0..3),
        prop::collection::vec(
            (prop::sample::select(GROUPS), prop::sample::select(MEMBERS)),
            0..4,
        ),
        prop::collection::vec(prop::sample::select(vec!["User:carol", "Group:g2"]), 0..2),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(acls, roles, members, supers, everyone)| {
            let mut p = Policy::new();
            p.set_allow_everyone_if_no_acl_found(everyone);
            for a in acls {
                p.add_acl(a);
            }
            for r in roles.into_iter().flatten() {
                p.bind_role(r);
            }
            for (g, m) in members {
                p.add_member(g.parse().unwrap(), m.parse().unwrap())
                    .unwrap();
            }
            for s in supers {
                p.add_super_user(s.parse().unwrap());
            }
            p
        })
}

#[derive(Clone, Debug)]
struct Req {
    principal: Principal,
    host: IpAddr,
    resource_type: ResourceType,
    name: &'static str,
    operation: Operation,
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(SESSIONS),
        prop::sample::select(CLIENTS),
        resource_type(),
        prop::sample::select(REQUEST_NAMES),
        operation(),
    )
        .prop_map(|(p, h, resource_type, name, operation)| Req {
            principal: p.parse().unwrap(),
            host: h.parse().unwrap(),
            resource_type,
            name,
            operation,
        })
}

impl Req {
    fn as_request(&self) -> Request<'_> {
        Request {
            principal: &self.principal,
            groups: &[],
            host: self.host,
            resource_type: self.resource_type,
            name: self.name,
            operation: self.operation,
        }
    }
}

fn enforcer(rt: &tokio::runtime::Runtime, policy: &Policy) -> Enforcer {
    let rows = casbin_rows(policy);
    rt.block_on(async {
        let model = DefaultModel::from_str(CASBIN_MODEL).await.unwrap();
        let mut e = Enforcer::new(model, MemoryAdapter::default())
            .await
            .unwrap();
        e.add_function(
            PREFIX_MATCH,
            OperatorFunction::Arg2(|name: Dynamic, prefix: Dynamic| {
                dynamic_to_str(&name)
                    .starts_with(&*dynamic_to_str(&prefix))
                    .into()
            }),
        );
        if !rows.p.is_empty() {
            e.add_named_policies("p", rows.p).await.unwrap();
        }
        if !rows.g.is_empty() {
            e.add_named_grouping_policies("g", rows.g).await.unwrap();
        }
        e.add_named_grouping_policies("g2", rows.g2).await.unwrap();
        e
    })
}

/// Points a random request at one of the policy's ACLs (its principal, host and resource), so
/// that rules meet requests, and each other, often.
fn aim(policy: &Policy, mut r: Req, index: prop::sample::Index, longer: bool) -> Req {
    if policy.acls().is_empty() {
        return r;
    }
    let a = &policy.acls()[index.index(policy.acls().len())];
    if a.principal.is_group() {
        if let Some(m) = policy
            .groups()
            .find(|(g, _)| **g == a.principal)
            .and_then(|(_, m)| m.iter().next())
        {
            r.principal = m.clone();
        }
    } else if !a.principal.is_wildcard() {
        r.principal = a.principal.clone();
    }
    if let Host::Ip(ip) = a.host {
        r.host = ip;
    }
    r.resource_type = a.pattern.resource_type();
    let name = a.pattern.name();
    r.name = match (a.pattern.pattern_type(), name, longer) {
        (PatternType::Literal, "*", _) => r.name,
        (PatternType::Prefixed, n, true) => Box::leak(format!("{n}x").into_boxed_str()),
        (_, n, _) => Box::leak(n.to_owned().into_boxed_str()),
    };
    r
}

/// The principals a session's rules come from: itself, `User:*`, its groups.
fn principals(policy: &Policy, p: &Principal) -> Vec<Principal> {
    let mut out = vec![p.clone(), Principal::wildcard()];
    out.extend(policy.groups_of(p).cloned());
    out
}

/// Super users, then casbin, then the no-ACL default.
fn reference(e: &Enforcer, policy: &Policy, req: &Request<'_>) -> bool {
    let supers: HashSet<&Principal> = policy.super_users().collect();
    if principals(policy, req.principal)
        .iter()
        .any(|p| !p.is_wildcard() && supers.contains(p))
    {
        return true;
    }
    if e.enforce(casbin_request(req)).unwrap() {
        return true;
    }
    policy.allow_everyone_if_no_acl_found() && !any_rule_covers(policy, req.resource_type, req.name)
}

/// Kafka's default `Authorizer.authorizeByResourceType`, transcribed; step 1 uses the
/// reference decision.
fn reference_by_type(e: &Enforcer, policy: &Policy, req: &Request<'_>) -> bool {
    let hardcode = Request {
        name: "hardcode",
        ..*req
    };
    if reference(e, policy, &hardcode) {
        return true;
    }
    let who = principals(policy, req.principal);
    // Every rule of the type as (pattern, principal, host, operation, permission).
    let mut rules: Vec<(ResourcePattern, Principal, Host, Operation, Permission)> = policy
        .acls()
        .iter()
        .map(|a| {
            (
                a.pattern.clone(),
                a.principal.clone(),
                a.host,
                a.operation,
                a.permission,
            )
        })
        .collect();
    for b in policy.role_bindings() {
        for (p, op) in b.expand() {
            rules.push((p, b.principal().clone(), Host::Any, op, Permission::Allow));
        }
    }
    let mut deny: [BTreeSet<String>; 2] = Default::default();
    let mut allow: [BTreeSet<String>; 2] = Default::default();
    let mut wildcard_allow = false;
    for (pattern, principal, host, op, permission) in rules {
        if pattern.resource_type() != req.resource_type
            || !host.matches(req.host)
            || !who.contains(&principal)
            || !(op == req.operation || op == Operation::All)
        {
            continue;
        }
        let literal = pattern.pattern_type() == PatternType::Literal;
        let slot = usize::from(!literal);
        match permission {
            Permission::Deny => {
                if literal && pattern.name() == "*" {
                    return false;
                }
                deny[slot].insert(pattern.name().to_owned());
            }
            Permission::Allow => {
                if literal && pattern.name() == "*" {
                    wildcard_allow = true;
                    continue;
                }
                allow[slot].insert(pattern.name().to_owned());
            }
        }
    }
    if wildcard_allow {
        return true;
    }
    for (slot, names) in allow.iter().enumerate() {
        for name in names {
            if slot == 0 && deny[0].contains(name) {
                continue;
            }
            let mut sb = String::new();
            let mut dominated = false;
            for ch in name.chars() {
                sb.push(ch);
                if deny[1].contains(&sb) {
                    dominated = true;
                    break;
                }
            }
            if !dominated {
                return true;
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// 128 policies × 48 requests = 6,144 decisions, plus as many by-type decisions.
    #[test]
    fn compiled_matcher_agrees_with_casbin(
        policy in policy(),
        requests in prop::collection::vec((request(), any::<prop::sample::Index>(), any::<bool>(), any::<bool>()), 48),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let e = enforcer(&rt, &policy);
        let authorizer = Authorizer::new(policy.clone(), AuthorizerOptions::default());
        let requests: Vec<Req> = requests
            .into_iter()
            .map(|(r, index, targeted, longer)| if targeted { aim(&policy, r, index, longer) } else { r })
            .collect();
        for r in &requests {
            let req = r.as_request();
            let want = reference(&e, &policy, &req);
            let got = authorizer.authorize(&req);
            prop_assert_eq!(got.allowed, want, "request {:?} decided by {}\npolicy:\n{}", r, got.rule, policy.to_toml());
            // The cache answers the same.
            prop_assert_eq!(authorizer.authorize(&req), got);
            let want = reference_by_type(&e, &policy, &req);
            let got = authorizer.authorize_by_resource_type(&r.principal, &[], r.host, r.operation, r.resource_type);
            prop_assert_eq!(got.allowed, want, "by type {:?} decided by {}\npolicy:\n{}", r, got.rule, policy.to_toml());
        }
    }

    /// The policy file round-trips whatever the policy.
    #[test]
    fn policy_file_round_trips(policy in policy()) {
        let text = policy.to_toml();
        prop_assert_eq!(Policy::parse(&text, "p.toml".as_ref()).unwrap(), policy);
    }
}

/// The model itself decides as Kafka does on fixed cases, so the agreement above is not
/// agreement with a model that allows or denies everything.
#[test]
fn casbin_model_decides_known_cases() {
    let text = r#"
[groups]
marketing = ["User:alice"]
[[acl]]
principal = "Group:marketing"
permission = "Allow"
operation = "Read"
resource_type = "Topic"
name = "customer_feedback"
[[acl]]
principal = "User:*"
permission = "Deny"
operation = "Write"
resource_type = "Topic"
pattern_type = "Prefixed"
name = "pay"
[[acl]]
principal = "User:bob"
permission = "Allow"
operation = "All"
resource_type = "Topic"
name = "*"
host = "10.0.0.1"
[[role_binding]]
principal = "User:carol"
role = "DeveloperWrite"
resource_type = "Topic"
pattern_type = "Prefixed"
name = "system_"
"#;
    let policy = Policy::parse(text, "p.toml".as_ref()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = enforcer(&rt, &policy);
    let cases = [
        (
            "User:alice",
            "10.0.0.9",
            "customer_feedback",
            Operation::Read,
            true,
        ),
        (
            "User:alice",
            "10.0.0.9",
            "customer_feedback",
            Operation::Describe,
            true,
        ),
        (
            "User:alice",
            "10.0.0.9",
            "customer_feedback",
            Operation::Write,
            false,
        ),
        ("User:alice", "10.0.0.9", "other", Operation::Read, false),
        ("User:bob", "10.0.0.1", "orders", Operation::Alter, true),
        ("User:bob", "10.0.0.2", "orders", Operation::Alter, false),
        ("User:bob", "10.0.0.1", "payments", Operation::Write, false),
        ("User:bob", "10.0.0.1", "payments", Operation::Read, true),
        (
            "User:carol",
            "10.0.0.1",
            "system_logs",
            Operation::Write,
            true,
        ),
        (
            "User:carol",
            "10.0.0.1",
            "system_logs",
            Operation::Describe,
            true,
        ),
        (
            "User:carol",
            "10.0.0.1",
            "system_logs",
            Operation::Read,
            false,
        ),
    ];
    let authorizer = Authorizer::new(policy.clone(), AuthorizerOptions::default());
    for (p, h, name, op, want) in cases {
        let principal: Principal = p.parse().unwrap();
        let req = Request {
            principal: &principal,
            groups: &[],
            host: h.parse().unwrap(),
            resource_type: ResourceType::Topic,
            name,
            operation: op,
        };
        assert_eq!(
            e.enforce(casbin_request(&req)).unwrap(),
            want,
            "casbin: {p} {h} {name} {op}"
        );
        assert_eq!(
            authorizer.authorize(&req).allowed,
            want,
            "compiled: {p} {h} {name} {op}"
        );
    }
}
