//! The compiled matcher: the policy indexed for the data path, as Kafka's StandardAuthorizer
//! does (reference §2.2, §2.3).
//!
//! Per resource type: a hash map of literal names (`*` included) and a byte trie of prefixes;
//! inside each, rules grouped by principal. A decision looks up the literal name, the
//! wildcard, and every stored prefix of the name (one walk down the trie), and within each
//! only the rules of the request's principal, `User:*` and the principal's groups. The cost
//! depends on the name's length and the rules that apply, not on the size of the policy.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::{
    AclBinding, Host, Operation, PatternType, Permission, Policy, Principal, ResourceType,
    RoleBinding, WILDCARD,
};

/// The name `authorize_by_resource_type` first authorizes, as Kafka's default
/// `Authorizer.authorizeByResourceType` does, so that super users, the no-ACL default and `*`
/// ALLOWs pass at once.
const HARDCODE: &str = "hardcode";

/// One authorization question: may `principal` from `host` do `operation` on the resource
/// `resource_type`:`name`? Always about one concrete (literal) name.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The session principal, e.g. `User:alice`.
    pub principal: &'a Principal,
    /// Groups the caller knows the principal belongs to (e.g. from a directory), on top of the
    /// policy file's `[groups]`; usually empty.
    pub groups: &'a [Principal],
    /// The client's address as kgate sees it.
    pub host: IpAddr,
    /// The resource type.
    pub resource_type: ResourceType,
    /// The concrete resource name (`kafka-cluster` for the cluster).
    pub name: &'a str,
    /// The operation.
    pub operation: Operation,
}

/// Why a decision came out as it did: what the audit log and `kgate acl check` print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The principal (or one of its groups) is a super user.
    SuperUser(Principal),
    /// This ACL binding decided (the first matching DENY, else the first matching ALLOW).
    Acl(Arc<AclBinding>),
    /// This role binding granted the operation.
    Role(Arc<RoleBinding>),
    /// No rule of any principal covers the resource and `allow_everyone_if_no_acl_found` is on.
    AllowEveryoneNoAcl,
    /// Nothing allowed it.
    DefaultDeny,
    /// The topic is kgate's own (the shared state topic): no client may touch it, super
    /// users included; only kgate writes it.
    Reserved(Arc<str>),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::SuperUser(p) => write!(f, "super user {p}"),
            Rule::Acl(a) => write!(f, "acl: {a}"),
            Rule::Role(r) => write!(f, "role binding: {r}"),
            Rule::AllowEveryoneNoAcl => f.write_str("allow everyone: no acl found"),
            Rule::DefaultDeny => f.write_str("no rule matched: default deny"),
            Rule::Reserved(t) => write!(f, "reserved: {t} is kgate's state topic"),
        }
    }
}

/// An authorization decision and the rule that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// What decided.
    pub rule: Rule,
}

impl Decision {
    fn allow(rule: Rule) -> Self {
        Decision {
            allowed: true,
            rule,
        }
    }

    /// The denial of a reserved topic.
    pub(crate) fn reserved(topic: Arc<str>) -> Self {
        Decision {
            allowed: false,
            rule: Rule::Reserved(topic),
        }
    }

    fn deny(rule: Rule) -> Self {
        Decision {
            allowed: false,
            rule,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "ALLOW" } else { "DENY" };
        write!(f, "{verdict} ({})", self.rule)
    }
}

/// One compiled rule: an ACL entry, or one operation a role binding grants.
#[derive(Debug)]
struct Entry {
    host: Host,
    operation: Operation,
    permission: Permission,
    rule: Rule,
}

/// The rules on one resource pattern, by principal.
#[derive(Debug)]
struct RuleSet {
    pattern_type: PatternType,
    name: Box<str>,
    by_principal: HashMap<Principal, Vec<Entry>>,
}

impl RuleSet {
    fn new(pattern_type: PatternType, name: &str) -> Self {
        RuleSet {
            pattern_type,
            name: name.into(),
            by_principal: HashMap::new(),
        }
    }
}

/// A byte trie of prefixes; node 0 is the root (the empty prefix, which never holds rules).
#[derive(Debug)]
struct Trie {
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    rules: Option<Box<RuleSet>>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            nodes: vec![Node::default()],
        }
    }

    fn child(&self, node: usize, byte: u8) -> Option<usize> {
        let children = &self.nodes[node].children;
        children
            .binary_search_by_key(&byte, |&(b, _)| b)
            .ok()
            .map(|i| children[i].1 as usize)
    }

    fn insert(&mut self, prefix: &str) -> &mut RuleSet {
        let mut node = 0;
        for &b in prefix.as_bytes() {
            node = match self.nodes[node]
                .children
                .binary_search_by_key(&b, |&(c, _)| c)
            {
                Ok(i) => self.nodes[node].children[i].1 as usize,
                Err(i) => {
                    let next = self.nodes.len();
                    self.nodes.push(Node::default());
                    // A policy has far fewer than 2^32 prefix bytes (the file would be GBs).
                    self.nodes[node].children.insert(i, (b, next as u32));
                    next
                }
            };
        }
        self.nodes[node]
            .rules
            .get_or_insert_with(|| Box::new(RuleSet::new(PatternType::Prefixed, prefix)))
    }

    /// The rule sets of every stored prefix of `name`, shortest first.
    fn prefixes_of<'t>(&'t self, name: &'t str) -> impl Iterator<Item = &'t RuleSet> + 't {
        let mut node = Some(0usize);
        name.as_bytes().iter().filter_map(move |&b| {
            let next = self.child(node?, b);
            node = next;
            next.and_then(|n| self.nodes[n].rules.as_deref())
        })
    }

    fn all(&self) -> impl Iterator<Item = &RuleSet> {
        self.nodes.iter().filter_map(|n| n.rules.as_deref())
    }
}

/// The rules of one resource type.
#[derive(Debug)]
struct TypeIndex {
    /// Literal names, `*` included.
    literal: HashMap<Box<str>, RuleSet>,
    prefixed: Trie,
}

impl TypeIndex {
    fn new() -> Self {
        TypeIndex {
            literal: HashMap::new(),
            prefixed: Trie::new(),
        }
    }

    fn rule_set(&mut self, pattern_type: PatternType, name: &str) -> &mut RuleSet {
        match pattern_type {
            PatternType::Literal => self
                .literal
                .entry(name.into())
                .or_insert_with(|| RuleSet::new(PatternType::Literal, name)),
            PatternType::Prefixed => self.prefixed.insert(name),
        }
    }

    /// Every rule set that applies to `name`: literal, wildcard, prefixes.
    fn applying<'t>(&'t self, name: &'t str) -> impl Iterator<Item = &'t RuleSet> + 't {
        let literal = self.literal.get(name);
        let wildcard = if name == WILDCARD {
            None
        } else {
            self.literal.get(WILDCARD)
        };
        literal
            .into_iter()
            .chain(wildcard)
            .chain(self.prefixed.prefixes_of(name))
    }

    fn all(&self) -> impl Iterator<Item = &RuleSet> {
        self.literal.values().chain(self.prefixed.all())
    }
}

/// A policy compiled for the data path. Immutable; a reload builds a new one.
#[derive(Debug)]
pub(crate) struct Compiled {
    allow_everyone: bool,
    super_users: HashSet<Principal>,
    member_of: HashMap<Principal, Vec<Principal>>,
    types: [TypeIndex; 6],
    wildcard: Principal,
}

impl Compiled {
    /// Indexes `policy`; `extra_super_users` come from the command line.
    pub(crate) fn new(policy: &Policy, extra_super_users: &[Principal]) -> Self {
        let mut types = [(); 6].map(|()| TypeIndex::new());
        for acl in policy.acls() {
            let rule = Rule::Acl(Arc::new(acl.clone()));
            types[acl.pattern.resource_type().index()]
                .rule_set(acl.pattern.pattern_type(), acl.pattern.name())
                .by_principal
                .entry(acl.principal.clone())
                .or_default()
                .push(Entry {
                    host: acl.host,
                    operation: acl.operation,
                    permission: acl.permission,
                    rule,
                });
        }
        for binding in policy.role_bindings() {
            let rule = Rule::Role(Arc::new(binding.clone()));
            for (pattern, operation) in binding.expand() {
                types[pattern.resource_type().index()]
                    .rule_set(pattern.pattern_type(), pattern.name())
                    .by_principal
                    .entry(binding.principal().clone())
                    .or_default()
                    .push(Entry {
                        host: Host::Any,
                        operation,
                        permission: Permission::Allow,
                        rule: rule.clone(),
                    });
            }
        }
        let mut member_of: HashMap<Principal, Vec<Principal>> = HashMap::new();
        for (group, members) in policy.groups() {
            for m in members {
                member_of.entry(m.clone()).or_default().push(group.clone());
            }
        }
        Compiled {
            allow_everyone: policy.allow_everyone_if_no_acl_found(),
            super_users: policy
                .super_users()
                .chain(extra_super_users)
                .cloned()
                .collect(),
            member_of,
            types,
            wildcard: Principal::wildcard(),
        }
    }

    /// The principals whose rules apply to a session: itself, `User:*`, its groups.
    fn principals<'a>(
        &'a self,
        principal: &'a Principal,
        groups: &'a [Principal],
    ) -> Vec<&'a Principal> {
        let mut out = Vec::with_capacity(2 + groups.len());
        out.push(principal);
        if !principal.is_wildcard() {
            out.push(&self.wildcard);
        }
        if let Some(gs) = self.member_of.get(principal) {
            out.extend(gs.iter());
        }
        for g in groups {
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }

    fn super_user(&self, principals: &[&Principal]) -> Option<Decision> {
        if self.super_users.is_empty() {
            return None;
        }
        principals
            .iter()
            .find(|p| !p.is_wildcard() && self.super_users.contains(**p))
            .map(|p| Decision::allow(Rule::SuperUser((*p).clone())))
    }

    /// Kafka's decision (reference §2.2): super user; any matching DENY; any matching ALLOW
    /// (implications included); the no-ACL default; deny.
    pub(crate) fn authorize(&self, req: &Request<'_>) -> Decision {
        let principals = self.principals(req.principal, req.groups);
        if let Some(d) = self.super_user(&principals) {
            return d;
        }
        let mut found_any = false;
        let mut allow: Option<&Rule> = None;
        for set in self.types[req.resource_type.index()].applying(req.name) {
            found_any = true;
            for p in &principals {
                let Some(entries) = set.by_principal.get(*p) else {
                    continue;
                };
                for e in entries {
                    if !e.host.matches(req.host) {
                        continue;
                    }
                    match e.permission {
                        Permission::Deny if e.operation.denies(req.operation) => {
                            return Decision::deny(e.rule.clone());
                        }
                        Permission::Allow
                            if allow.is_none() && e.operation.allows(req.operation) =>
                        {
                            allow = Some(&e.rule);
                        }
                        _ => {}
                    }
                }
            }
        }
        match allow {
            Some(rule) => Decision::allow(rule.clone()),
            None if !found_any && self.allow_everyone => Decision::allow(Rule::AllowEveryoneNoAcl),
            None => Decision::deny(Rule::DefaultDeny),
        }
    }

    /// Kafka's `authorizeByResourceType` (KIP-679, reference §2.3): may the principal do
    /// `operation` on at least one resource of the type? Exact operation or ALL only, no
    /// implications; a DENY on `*` dominates; a literal ALLOW survives unless denied literally
    /// or by a covering prefix; a prefixed ALLOW survives unless a DENY prefix covers it.
    pub(crate) fn authorize_by_resource_type(
        &self,
        principal: &Principal,
        groups: &[Principal],
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> Decision {
        let first = self.authorize(&Request {
            principal,
            groups,
            host,
            resource_type,
            name: HARDCODE,
            operation,
        });
        if first.allowed {
            return first;
        }
        let principals = self.principals(principal, groups);
        let mut deny_literal: HashSet<&str> = HashSet::new();
        let mut deny_prefixed: Vec<&str> = Vec::new();
        let mut allows: Vec<(PatternType, &str, &Rule)> = Vec::new();
        let mut wildcard_allow: Option<&Rule> = None;
        for set in self.types[resource_type.index()].all() {
            for p in &principals {
                let Some(entries) = set.by_principal.get(*p) else {
                    continue;
                };
                for e in entries {
                    if !e.host.matches(host)
                        || !(e.operation == operation || e.operation == Operation::All)
                    {
                        continue;
                    }
                    match (e.permission, set.pattern_type, &*set.name) {
                        (Permission::Deny, PatternType::Literal, WILDCARD) => {
                            return Decision::deny(e.rule.clone());
                        }
                        (Permission::Deny, PatternType::Literal, n) => {
                            deny_literal.insert(n);
                        }
                        (Permission::Deny, PatternType::Prefixed, n) => deny_prefixed.push(n),
                        (Permission::Allow, PatternType::Literal, WILDCARD) => {
                            wildcard_allow.get_or_insert(&e.rule);
                        }
                        (Permission::Allow, t, n) => allows.push((t, n, &e.rule)),
                    }
                }
            }
        }
        if let Some(rule) = wildcard_allow {
            return Decision::allow(rule.clone());
        }
        for (t, name, rule) in allows {
            if t == PatternType::Literal && deny_literal.contains(name) {
                continue;
            }
            if deny_prefixed.iter().any(|d| name.starts_with(d)) {
                continue;
            }
            return Decision::allow(rule.clone());
        }
        Decision::deny(Rule::DefaultDeny)
    }
}

#[cfg(test)]
mod tests;
