//! The reference semantics in casbin's policy language: the model file `kafka_acl.conf` and
//! the policy as casbin rows. casbin is not on the data path (a linear scan with a script
//! evaluation per rule); the agreement test loads these rows into a casbin enforcer and
//! checks the compiled matcher against it on random policies and requests.

use std::collections::BTreeSet;

use crate::matcher::Request;
use crate::{java_host_address, Operation, PatternType, Permission, Policy, ResourceType, Role};

/// The casbin model (`policies/kafka_acl.conf`).
pub const CASBIN_MODEL: &str = include_str!("../kafka_acl.conf");

/// The name of the custom matcher function the model uses: `prefixMatch(name, prefix)` is
/// `name.starts_with(prefix)`.
pub const PREFIX_MATCH: &str = "prefixMatch";

/// A policy as casbin rows, deduplicated and sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CasbinRows {
    /// `p`: principal, host, resource type, pattern type, name, operation or `role:<Role>`,
    /// `allow`/`deny`.
    pub p: Vec<Vec<String>>,
    /// `g`: member, group.
    pub g: Vec<Vec<String>>,
    /// `g2`: operation, granting operation or role, resource type.
    pub g2: Vec<Vec<String>>,
}

fn row<const N: usize>(fields: [&str; N]) -> Vec<String> {
    fields.iter().map(|s| (*s).to_owned()).collect()
}

/// The casbin rows of `policy` (super users and the no-ACL default are outside the model).
pub fn casbin_rows(policy: &Policy) -> CasbinRows {
    let mut p = BTreeSet::new();
    for a in policy.acls() {
        let eft = match a.permission {
            Permission::Allow => "allow",
            Permission::Deny => "deny",
        };
        p.insert(row([
            a.principal.as_str(),
            &a.host.to_string(),
            a.pattern.resource_type().name(),
            a.pattern.pattern_type().name(),
            a.pattern.name(),
            a.operation.name(),
            eft,
        ]));
    }
    for b in policy.role_bindings() {
        let role = format!("role:{}", b.role());
        let patterns: BTreeSet<_> = b.expand().into_iter().map(|(pat, _)| pat).collect();
        for pat in patterns {
            p.insert(row([
                b.principal().as_str(),
                "*",
                pat.resource_type().name(),
                pat.pattern_type().name(),
                pat.name(),
                &role,
                "allow",
            ]));
        }
    }
    let mut g = BTreeSet::new();
    for (group, members) in policy.groups() {
        for m in members {
            g.insert(row([m.as_str(), group.as_str()]));
        }
    }
    let mut g2 = BTreeSet::new();
    for t in ResourceType::ALL {
        for granting in Operation::ALL {
            for implied in granting.implied() {
                g2.insert(row([implied.name(), granting.name(), t.name()]));
            }
        }
        for role in Role::ALL {
            let name = format!("role:{role}");
            for &op in role.grants_on(t) {
                let granted: Vec<Operation> = if op == Operation::All {
                    Operation::ALL.to_vec()
                } else {
                    std::iter::once(op)
                        .chain(op.implied().iter().copied())
                        .collect()
                };
                for o in granted {
                    g2.insert(row([o.name(), &name, t.name()]));
                }
            }
        }
    }
    CasbinRows {
        p: p.into_iter().collect(),
        g: g.into_iter().collect(),
        g2: g2.into_iter().collect(),
    }
}

/// The casbin request of `req`: principal, Java host text, resource type, name, operation.
pub fn casbin_request(req: &Request<'_>) -> Vec<String> {
    vec![
        req.principal.as_str().to_owned(),
        java_host_address(req.host),
        req.resource_type.name().to_owned(),
        req.name.to_owned(),
        req.operation.name().to_owned(),
    ]
}

/// A plain scan of the policy for "is there any rule, of any principal, on this resource?",
/// the question behind `allow_everyone_if_no_acl_found`; independent of the compiled index.
pub fn any_rule_covers(policy: &Policy, resource_type: ResourceType, name: &str) -> bool {
    let covers = |t: ResourceType, pt: PatternType, pattern: &str| {
        t == resource_type
            && match pt {
                PatternType::Literal => pattern == name || pattern == crate::WILDCARD,
                PatternType::Prefixed => name.starts_with(pattern),
            }
    };
    policy.acls().iter().any(|a| {
        covers(
            a.pattern.resource_type(),
            a.pattern.pattern_type(),
            a.pattern.name(),
        )
    }) || policy.role_bindings().iter().any(|b| {
        b.expand()
            .iter()
            .any(|(p, _)| covers(p.resource_type(), p.pattern_type(), p.name()))
    })
}
