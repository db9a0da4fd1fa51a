//! Kafka's ACL vocabulary: resource types, pattern types, operations, permissions, hosts,
//! resource patterns and ACL bindings, with their wire codes (reference §2.1).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ParseError, Principal};

/// The name of the one cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The literal resource name that matches every name of its type.
pub const WILDCARD: &str = "*";

/// Lower-cases and drops `_`, `-` and spaces, so `IDEMPOTENT_WRITE`, `idempotent-write` and
/// `IdempotentWrite` all read the same, as kafka-acls accepts them.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

// === impl ResourceType ===

/// A Kafka resource type that ACLs can name (`ANY` and `UNKNOWN` exist only on the wire; a
/// filter uses `Option<ResourceType>` with `None` for ANY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// Wire code 2.
    Topic,
    /// Wire code 3: a consumer group.
    Group,
    /// Wire code 4: the cluster, always named `kafka-cluster`.
    Cluster,
    /// Wire code 5.
    TransactionalId,
    /// Wire code 6.
    DelegationToken,
    /// Wire code 7: a user, named by its full principal string (`User:alice`).
    User,
}

impl ResourceType {
    /// Every resource type, in wire-code order.
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        self.index() as i8 + 2
    }

    /// The type with this wire code; `None` for ANY (1), UNKNOWN (0) and unknown codes.
    pub fn from_code(code: i8) -> Option<Self> {
        usize::try_from(code - 2)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// A resource type filter from its wire code: `Ok(None)` is ANY.
    ///
    /// # Errors
    /// UNKNOWN (0) and unknown codes; the proxy answers INVALID_REQUEST.
    pub fn filter_from_code(code: i8) -> Result<Option<Self>, ParseError> {
        match code {
            1 => Ok(None),
            c => Self::from_code(c)
                .map(Some)
                .ok_or_else(|| ParseError::ResourceType(c.to_string())),
        }
    }

    /// Position in [`ResourceType::ALL`], for per-type arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Kafka's name, e.g. `TransactionalId`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }

    /// The operations Kafka supports on this type: the bits an `authorized_operations` mask
    /// may carry (reference §1.0 item 7).
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }
}

impl FromStr for ResourceType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let f = fold(s);
        Self::ALL
            .into_iter()
            .find(|t| fold(t.name()) == f)
            .ok_or_else(|| ParseError::ResourceType(s.to_owned()))
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
string_serde!(ResourceType);

// === impl PatternType ===

/// How an ACL's resource name matches (KIP-290). Filters use [`PatternTypeFilter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    /// Wire code 3: the exact name, or every name when the name is `*`.
    Literal,
    /// Wire code 4: every name that starts with the name (`*` is just a character here).
    Prefixed,
}

impl PatternType {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// The pattern type with this wire code (not ANY or MATCH: those are filters).
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "Literal",
            PatternType::Prefixed => "Prefixed",
        }
    }
}

impl FromStr for PatternType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match fold(s).as_str() {
            "literal" => Ok(PatternType::Literal),
            "prefixed" => Ok(PatternType::Prefixed),
            _ => Err(ParseError::PatternType(s.to_owned())),
        }
    }
}

impl fmt::Display for PatternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
string_serde!(PatternType);

/// The pattern type of an ACL filter (DescribeAcls, DeleteAcls, `kgate acl list|remove`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternTypeFilter {
    /// Wire code 1: any pattern type, but the name must be equal.
    Any,
    /// Wire code 2: every pattern that would apply to the name (literal, `*`, prefixes).
    Match,
    /// Exactly this pattern type and the equal name.
    Is(PatternType),
}

impl PatternTypeFilter {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            PatternTypeFilter::Any => 1,
            PatternTypeFilter::Match => 2,
            PatternTypeFilter::Is(p) => p.code(),
        }
    }

    /// The filter with this wire code.
    ///
    /// # Errors
    /// UNKNOWN (0) and unknown codes ("Unknown patternFilter." in Kafka).
    pub fn from_code(code: i8) -> Result<Self, ParseError> {
        match code {
            1 => Ok(PatternTypeFilter::Any),
            2 => Ok(PatternTypeFilter::Match),
            c => PatternType::from_code(c)
                .map(PatternTypeFilter::Is)
                .ok_or_else(|| ParseError::PatternType(c.to_string())),
        }
    }
}

impl FromStr for PatternTypeFilter {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match fold(s).as_str() {
            "any" => Ok(PatternTypeFilter::Any),
            "match" => Ok(PatternTypeFilter::Match),
            _ => s.parse().map(PatternTypeFilter::Is),
        }
    }
}

// === impl Operation ===

/// An ACL operation. `All` matches every operation; ANY exists only in filters, where
/// `Option<Operation>` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Wire code 2: every operation, for ALLOW and DENY alike.
    All,
    /// Wire code 3.
    Read,
    /// Wire code 4.
    Write,
    /// Wire code 5.
    Create,
    /// Wire code 6.
    Delete,
    /// Wire code 7.
    Alter,
    /// Wire code 8.
    Describe,
    /// Wire code 9.
    ClusterAction,
    /// Wire code 10.
    DescribeConfigs,
    /// Wire code 11.
    AlterConfigs,
    /// Wire code 12.
    IdempotentWrite,
    /// Wire code 13.
    CreateTokens,
    /// Wire code 14.
    DescribeTokens,
}

impl Operation {
    /// Every operation including `All`, in wire-code order.
    pub const ALL: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        self as i8 + 2
    }

    /// The operation with this wire code; `None` for ANY (1), UNKNOWN (0) and unknown codes.
    pub fn from_code(code: i8) -> Option<Self> {
        usize::try_from(code - 2)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// An operation filter from its wire code: `Ok(None)` is ANY.
    ///
    /// # Errors
    /// UNKNOWN (0) and unknown codes ("Unknown entryFilter." in Kafka).
    pub fn filter_from_code(code: i8) -> Result<Option<Self>, ParseError> {
        match code {
            1 => Ok(None),
            c => Self::from_code(c)
                .map(Some)
                .ok_or_else(|| ParseError::Operation(c.to_string())),
        }
    }

    /// Kafka's name, e.g. `IdempotentWrite`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "All",
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::CreateTokens => "CreateTokens",
            Operation::DescribeTokens => "DescribeTokens",
        }
    }

    /// Whether an **ALLOW** entry for `self` grants `requested`: the same operation, `All`, or
    /// Kafka's implications (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
    /// DESCRIBE_CONFIGS). Only ALLOW implies: see [`Operation::denies`].
    pub fn allows(self, requested: Operation) -> bool {
        self == Operation::All
            || self == requested
            || (requested == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (requested == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }

    /// Whether a **DENY** entry for `self` refuses `requested`: the same operation or `All`,
    /// nothing implied (DENY READ leaves DESCRIBE alone).
    pub fn denies(self, requested: Operation) -> bool {
        self == Operation::All || self == requested
    }

    /// The operations an ALLOW entry for `self` grants besides itself.
    pub fn implied(self) -> &'static [Operation] {
        match self {
            Operation::Read | Operation::Write | Operation::Delete | Operation::Alter => {
                &[Operation::Describe]
            }
            Operation::AlterConfigs => &[Operation::DescribeConfigs],
            _ => &[],
        }
    }
}

impl FromStr for Operation {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let f = fold(s);
        Self::ALL
            .into_iter()
            .find(|o| fold(o.name()) == f)
            .ok_or_else(|| ParseError::Operation(s.to_owned()))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
string_serde!(Operation);

// === impl Permission ===

/// Whether an ACL allows or denies. DENY always wins over ALLOW.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Wire code 3.
    Allow,
    /// Wire code 2.
    Deny,
}

impl Permission {
    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    /// The permission with this wire code; `None` for ANY (1), UNKNOWN and unknown codes.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    /// A permission filter from its wire code: `Ok(None)` is ANY.
    ///
    /// # Errors
    /// UNKNOWN (0) and unknown codes.
    pub fn filter_from_code(code: i8) -> Result<Option<Self>, ParseError> {
        match code {
            1 => Ok(None),
            c => Self::from_code(c)
                .map(Some)
                .ok_or_else(|| ParseError::Permission(c.to_string())),
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Allow => "Allow",
            Permission::Deny => "Deny",
        }
    }
}

impl FromStr for Permission {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match fold(s).as_str() {
            "allow" => Ok(Permission::Allow),
            "deny" => Ok(Permission::Deny),
            _ => Err(ParseError::Permission(s.to_owned())),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
string_serde!(Permission);

// === impl Host ===

/// The host of an ACL: `*` or one exact IP address.
///
/// Kafka compares the ACL's host string with Java's `InetAddress.getHostAddress()` of the
/// client. kgate stores the parsed address and prints it the Java way (IPv6 uncompressed,
/// `0:0:0:0:0:0:0:1`), so `::1` and `0:0:0:0:0:0:0:1` are the same host. An IPv4-mapped IPv6
/// address is its IPv4 address, as Java reports it. Hostnames and CIDR ranges are refused:
/// Kafka would store them and then never match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// `*`: every client address.
    Any,
    /// Exactly this client address.
    Ip(IpAddr),
}

impl Host {
    /// Whether a client at `ip` matches.
    pub fn matches(self, ip: IpAddr) -> bool {
        match self {
            Host::Any => true,
            Host::Ip(h) => h == canonical_ip(ip),
        }
    }
}

/// The address as Java sees it: IPv4-mapped IPv6 addresses become IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Java's `InetAddress.getHostAddress()` text: IPv4 dotted, IPv6 as eight lower-case hex
/// groups without leading zeros and without `::` compression.
pub fn java_host_address(ip: IpAddr) -> String {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => java_ipv6(v6),
    }
}

fn java_ipv6(v6: Ipv6Addr) -> String {
    let parts: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
    parts.join(":")
}

impl FromStr for Host {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(Host::Any);
        }
        s.parse::<IpAddr>()
            .map(|ip| Host::Ip(canonical_ip(ip)))
            .map_err(|_| ParseError::Host(s.to_owned()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Any => f.write_str("*"),
            Host::Ip(ip) => f.write_str(&java_host_address(*ip)),
        }
    }
}
string_serde!(Host);

// === impl ResourcePattern ===

/// The resource side of an ACL: a type, a pattern type and a name.
///
/// Always valid as Kafka's `AclControlManager.validateNewAcl` demands: the name is not empty,
/// and a cluster pattern is named `kafka-cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    resource_type: ResourceType,
    pattern_type: PatternType,
    name: Box<str>,
}

impl ResourcePattern {
    /// A pattern, checked.
    ///
    /// # Errors
    /// An empty name, or a cluster pattern not named `kafka-cluster`.
    pub fn new(
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &str,
    ) -> Result<Self, ParseError> {
        if name.is_empty() {
            return Err(ParseError::EmptyResourceName);
        }
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(ParseError::ClusterName);
        }
        Ok(ResourcePattern {
            resource_type,
            pattern_type,
            name: name.into(),
        })
    }

    /// A literal pattern.
    ///
    /// # Errors
    /// As [`ResourcePattern::new`].
    pub fn literal(resource_type: ResourceType, name: &str) -> Result<Self, ParseError> {
        Self::new(resource_type, PatternType::Literal, name)
    }

    /// A prefixed pattern.
    ///
    /// # Errors
    /// As [`ResourcePattern::new`].
    pub fn prefixed(resource_type: ResourceType, name: &str) -> Result<Self, ParseError> {
        Self::new(resource_type, PatternType::Prefixed, name)
    }

    /// The cluster resource, `kafka-cluster`.
    pub fn cluster() -> Self {
        ResourcePattern {
            resource_type: ResourceType::Cluster,
            pattern_type: PatternType::Literal,
            name: CLUSTER_NAME.into(),
        }
    }

    /// The resource type.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The pattern type.
    pub fn pattern_type(&self) -> PatternType {
        self.pattern_type
    }

    /// The name, or prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the pattern applies to the concrete resource `name` of its own type: literal
    /// equal, literal `*`, or prefixed and `name` starts with it.
    pub fn applies_to(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => &*self.name == name || &*self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&*self.name),
        }
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:?}",
            self.resource_type,
            self.pattern_type.name().to_ascii_uppercase(),
            self.name
        )
    }
}

// === impl AclBinding ===

/// One Kafka ACL: a resource pattern and an access control entry (principal, host,
/// operation, permission). Every field is valid by construction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// Which resources.
    pub pattern: ResourcePattern,
    /// Who: a user, `User:*`, a group, or any other principal type.
    pub principal: Principal,
    /// From where.
    pub host: Host,
    /// What.
    pub operation: Operation,
    /// Allow or deny.
    pub permission: Permission,
}

impl AclBinding {
    /// One CreateAcls creation from its wire fields (reference §2.5), checked as Kafka's
    /// controller does: a concrete resource type, LITERAL or PREFIXED, a concrete operation,
    /// ALLOW or DENY, a non-empty name, `kafka-cluster` for the cluster, a `Type:name`
    /// principal. kgate also requires the host to be `*` or an IP address.
    ///
    /// # Errors
    /// The first invalid field; the proxy answers that creation with INVALID_REQUEST (42) and
    /// the error's text.
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, ParseError> {
        let resource_type = ResourceType::from_code(resource_type)
            .ok_or_else(|| ParseError::ResourceType(resource_type.to_string()))?;
        let pattern_type = PatternType::from_code(pattern_type)
            .ok_or_else(|| ParseError::PatternType(pattern_type.to_string()))?;
        let operation = Operation::from_code(operation)
            .ok_or_else(|| ParseError::Operation(operation.to_string()))?;
        let permission = Permission::from_code(permission)
            .ok_or_else(|| ParseError::Permission(permission.to_string()))?;
        Ok(AclBinding {
            pattern: ResourcePattern::new(resource_type, pattern_type, name)?,
            principal: principal.parse()?,
            host: host.parse()?,
            operation,
            permission,
        })
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} from host {}",
            self.principal,
            self.permission.name().to_ascii_uppercase(),
            self.operation,
            self.pattern,
            self.host
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_match_kafka() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(
            ResourceType::from_code(5),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(ResourceType::from_code(1), None);
        assert_eq!(ResourceType::filter_from_code(1), Ok(None));
        assert!(ResourceType::filter_from_code(0).is_err());
        assert_eq!(Operation::All.code(), 2);
        assert_eq!(Operation::Describe.code(), 8);
        assert_eq!(Operation::DescribeTokens.code(), 14);
        assert_eq!(Operation::from_code(12), Some(Operation::IdempotentWrite));
        assert_eq!(Operation::from_code(0), None);
        assert_eq!(Operation::from_code(15), None);
        assert_eq!(Operation::from_code(-3), None);
        assert_eq!(Permission::Deny.code(), 2);
        assert_eq!(Permission::Allow.code(), 3);
        assert_eq!(
            PatternTypeFilter::from_code(2),
            Ok(PatternTypeFilter::Match)
        );
        assert!(PatternTypeFilter::from_code(0).is_err());
        for op in Operation::ALL {
            assert_eq!(Operation::from_code(op.code()), Some(op));
        }
    }

    #[test]
    fn names_parse_as_kafka_acls_writes_them() {
        for s in [
            "IdempotentWrite",
            "IDEMPOTENT_WRITE",
            "idempotent-write",
            "idempotentwrite",
        ] {
            assert_eq!(s.parse::<Operation>(), Ok(Operation::IdempotentWrite));
        }
        assert_eq!(
            "TRANSACTIONAL_ID".parse(),
            Ok(ResourceType::TransactionalId)
        );
        assert_eq!(
            "transactional-id".parse(),
            Ok(ResourceType::TransactionalId)
        );
        assert_eq!("PREFIXED".parse(), Ok(PatternType::Prefixed));
        assert_eq!("match".parse(), Ok(PatternTypeFilter::Match));
        let err = "Reed".parse::<Operation>().unwrap_err();
        assert!(err
            .to_string()
            .starts_with("unknown operation `Reed`: expected one of All, Read"));
    }

    /// AuthorizerTest "ACL inheritance".
    #[test]
    fn only_allow_implies_operations() {
        use Operation::*;
        let concrete = &Operation::ALL[1..];
        for &op in concrete {
            assert!(All.allows(op) && All.denies(op));
        }
        for granted in [Read, Write, Delete, Alter] {
            assert!(granted.allows(Describe));
            assert!(!granted.denies(Describe));
        }
        assert!(AlterConfigs.allows(DescribeConfigs));
        assert!(!AlterConfigs.denies(DescribeConfigs));
        assert!(!Write.allows(Read));
        assert!(!Create.allows(Describe));
        for &op in concrete {
            if op != Describe {
                assert!(!Describe.allows(op));
            }
            if op != DescribeConfigs {
                assert!(!DescribeConfigs.allows(op));
            }
        }
    }

    #[test]
    fn hosts_print_the_java_way() {
        let h: Host = "::1".parse().unwrap();
        assert_eq!(h.to_string(), "0:0:0:0:0:0:0:1");
        let h: Host = "fe80::0ab:1".parse().unwrap();
        assert_eq!(h.to_string(), "fe80:0:0:0:0:0:ab:1");
        let mapped: Host = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.5");
        assert!(mapped.matches("10.0.0.5".parse().unwrap()));
        assert!("10.0.0.5"
            .parse::<Host>()
            .unwrap()
            .matches("::ffff:10.0.0.5".parse().unwrap()));
        assert!(Host::Any.matches("10.9.9.9".parse().unwrap()));
        assert!(!"10.0.0.5"
            .parse::<Host>()
            .unwrap()
            .matches("10.0.0.6".parse().unwrap()));
        for bad in ["localhost", "10.0.0.0/8", "", " 10.0.0.1"] {
            assert!(bad.parse::<Host>().is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_are_checked_like_kafka() {
        assert_eq!(
            ResourcePattern::literal(ResourceType::Topic, ""),
            Err(ParseError::EmptyResourceName)
        );
        assert_eq!(
            ResourcePattern::literal(ResourceType::Cluster, "other"),
            Err(ParseError::ClusterName)
        );
        assert!(ResourcePattern::prefixed(ResourceType::Cluster, CLUSTER_NAME).is_ok());
    }

    /// AuthorizerTest: single-character resource ACLs.
    #[test]
    fn single_character_patterns_match_exactly() {
        let f = ResourcePattern::literal(ResourceType::Topic, "f").unwrap();
        assert!(f.applies_to("f") && !f.applies_to("foo"));
        let u = ResourcePattern::prefixed(ResourceType::Topic, "_").unwrap();
        assert!(u.applies_to("_foo") && u.applies_to("_") && !u.applies_to("foo_"));
        let star = ResourcePattern::prefixed(ResourceType::Topic, "*").unwrap();
        assert!(!star.applies_to("foo") && star.applies_to("*x"));
        let wild = ResourcePattern::literal(ResourceType::Topic, "*").unwrap();
        assert!(wild.applies_to("foo") && wild.applies_to(""));
    }
}
