//! Decision cost, for `kgate bench authz`: synthetic policies of growing size, each timed
//! through the decision cache and around it.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use crate::{
    AclBinding, Authorizer, AuthorizerOptions, Host, Operation, Permission, Policy, Principal,
    Request, ResourcePattern, ResourceType,
};

/// The policy sizes the issue asks for.
pub const BENCH_SIZES: [usize; 3] = [100, 10_000, 100_000];

/// The cost of one decision with a policy of `bindings` ACL bindings.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchFigure {
    /// ACL bindings in the policy.
    pub bindings: usize,
    /// Mean nanoseconds per decision answered from the cache.
    pub cached_ns: f64,
    /// Mean nanoseconds per decision computed by the compiled matcher.
    pub uncached_ns: f64,
    /// Decisions timed for each of the two figures.
    pub decisions: usize,
    /// Share of the timed uncached decisions that allowed (shows the mix is realistic).
    pub allowed_share: f64,
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn principal(i: usize) -> Principal {
    Principal::user(&format!("u{i}")).unwrap_or_else(|_| Principal::wildcard())
}

fn binding(
    t: ResourceType,
    prefixed: bool,
    name: &str,
    p: Principal,
    op: Operation,
    perm: Permission,
    host: Host,
) -> Option<AclBinding> {
    let pattern = if prefixed {
        ResourcePattern::prefixed(t, name)
    } else {
        ResourcePattern::literal(t, name)
    };
    Some(AclBinding {
        pattern: pattern.ok()?,
        principal: p,
        host,
        operation: op,
        permission: perm,
    })
}

/// A policy of `n` bindings shaped like a real one: per-user literal topic grants, team
/// prefixes, some denies, host-bound rules, group grants, one `User:*` wildcard.
pub fn synthetic_policy(n: usize) -> Policy {
    let users = (n / 10).max(1);
    let mut p = Policy::new();
    let client = Host::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)));
    p.add_acl(AclBinding {
        pattern: ResourcePattern::literal(ResourceType::Topic, "*")
            .unwrap_or_else(|_| ResourcePattern::cluster()),
        principal: Principal::wildcard(),
        host: Host::Any,
        operation: Operation::Describe,
        permission: Permission::Allow,
    });
    let mut i = 0;
    while p.acls().len() < n {
        let who = principal(i % users);
        let host = if i % 20 == 0 { client } else { Host::Any };
        let b = match i % 10 {
            0..=5 => binding(
                ResourceType::Topic,
                false,
                &format!("orders-{i}"),
                who,
                Operation::Read,
                Permission::Allow,
                host,
            ),
            6 | 7 => binding(
                ResourceType::Topic,
                true,
                &format!("team-{}-", i % 1000),
                who,
                Operation::Write,
                Permission::Allow,
                host,
            ),
            8 => binding(
                ResourceType::Topic,
                false,
                &format!("orders-{}", i - 8),
                who,
                Operation::Write,
                Permission::Deny,
                host,
            ),
            _ => binding(
                ResourceType::Group,
                false,
                &format!("g{i}"),
                who,
                Operation::Read,
                Permission::Allow,
                host,
            ),
        };
        if let Some(b) = b {
            p.add_acl(b);
        }
        i += 1;
    }
    p
}

struct OwnedRequest {
    principal: Principal,
    name: String,
    resource_type: ResourceType,
    operation: Operation,
}

fn requests(n: usize, count: usize, seed: u64) -> Vec<OwnedRequest> {
    let users = (n / 10).max(1);
    let mut rng = Rng(seed | 1);
    (0..count)
        .map(|_| {
            let i = rng.below(n);
            let (resource_type, name, operation) = match rng.below(4) {
                0 => (
                    ResourceType::Topic,
                    format!("orders-{}", i - i % 10),
                    Operation::Read,
                ),
                1 => (
                    ResourceType::Topic,
                    format!("team-{}-logs", i % 1000),
                    Operation::Write,
                ),
                2 => (
                    ResourceType::Topic,
                    format!("orders-{i}"),
                    Operation::Describe,
                ),
                _ => (
                    ResourceType::Group,
                    format!("g{}", i - i % 10 + 9),
                    Operation::Read,
                ),
            };
            OwnedRequest {
                principal: principal(i % users),
                name,
                resource_type,
                operation,
            }
        })
        .collect()
}

fn as_request(r: &OwnedRequest) -> Request<'_> {
    Request {
        principal: &r.principal,
        groups: &[],
        host: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
        resource_type: r.resource_type,
        name: &r.name,
        operation: r.operation,
    }
}

/// Times `decisions` decisions per size, cached and uncached, and returns one figure per
/// size. Targets (issue 3): ≤ 1 µs cached and ≤ 20 µs uncached at 100,000 bindings.
pub fn bench_decisions(sizes: &[usize], decisions: usize) -> Vec<BenchFigure> {
    let decisions = decisions.max(1);
    sizes
        .iter()
        .map(|&n| {
            let authorizer = Authorizer::new(synthetic_policy(n), AuthorizerOptions::default());
            // Uncached: distinct requests through the compiled matcher.
            let cold = requests(n, decisions.min(50_000), 0x9e37_79b9);
            let mut allowed = 0usize;
            let start = Instant::now();
            for i in 0..decisions {
                let d = authorizer.authorize_uncached(&as_request(&cold[i % cold.len()]));
                allowed += usize::from(black_box(d).allowed);
            }
            let uncached_ns = start.elapsed().as_nanos() as f64 / decisions as f64;
            // Cached: a working set of 1,000 requests, warmed once.
            let hot = requests(n, 1_000, 0x5851_f42d);
            for r in &hot {
                authorizer.authorize(&as_request(r));
            }
            let start = Instant::now();
            for i in 0..decisions {
                black_box(authorizer.authorize(&as_request(&hot[i % hot.len()])));
            }
            let cached_ns = start.elapsed().as_nanos() as f64 / decisions as f64;
            BenchFigure {
                bindings: n,
                cached_ns,
                uncached_ns,
                decisions,
                allowed_share: allowed as f64 / decisions as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_policies_have_the_asked_size_and_a_realistic_mix() {
        let p = synthetic_policy(1000);
        assert_eq!(p.acls().len(), 1000);
        let figures = bench_decisions(&[100, 1000], 2_000);
        assert_eq!(figures.len(), 2);
        for f in figures {
            assert!(f.cached_ns > 0.0 && f.uncached_ns > 0.0);
            assert!(f.allowed_share > 0.2 && f.allowed_share < 0.95, "{f:?}");
        }
    }
}
