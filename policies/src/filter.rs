//! ACL filters with Kafka's `AclBindingFilter.matches` semantics (reference §2.5): what
//! DescribeAcls shows and DeleteAcls removes, and what `kgate acl list|remove` select.

use crate::{
    AclBinding, Host, Operation, ParseError, PatternType, PatternTypeFilter, Permission, Principal,
    ResourcePattern, ResourceType, WILDCARD,
};

/// Selects resource patterns. `None` fields are wildcards (Kafka's ANY / null).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourcePatternFilter {
    /// `None` = ANY resource type.
    pub resource_type: Option<ResourceType>,
    /// `None` = any name.
    pub name: Option<String>,
    /// ANY, MATCH, LITERAL or PREFIXED.
    pub pattern_type: PatternTypeFilter,
}

impl ResourcePatternFilter {
    /// Matches every pattern.
    pub const ANY: ResourcePatternFilter = ResourcePatternFilter {
        resource_type: None,
        name: None,
        pattern_type: PatternTypeFilter::Any,
    };

    /// Kafka's `ResourcePatternFilter.matches`:
    /// - ANY/LITERAL/PREFIXED filters need an equal name (LITERAL/PREFIXED also an equal type);
    /// - MATCH takes every pattern that would apply to the name: literal equal, literal `*`,
    ///   prefixed whose prefix starts the name;
    /// - a null name matches all names.
    pub fn matches(&self, pattern: &ResourcePattern) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != pattern.resource_type())
        {
            return false;
        }
        if let PatternTypeFilter::Is(p) = self.pattern_type {
            if p != pattern.pattern_type() {
                return false;
            }
        }
        let Some(name) = &self.name else {
            return true;
        };
        match self.pattern_type {
            PatternTypeFilter::Any | PatternTypeFilter::Is(_) => name == pattern.name(),
            PatternTypeFilter::Match => match pattern.pattern_type() {
                PatternType::Literal => name == pattern.name() || pattern.name() == WILDCARD,
                PatternType::Prefixed => name.starts_with(pattern.name()),
            },
        }
    }
}

/// Selects ACL entries. `None` fields are wildcards; set fields compare exactly (no `User:*`
/// expansion, no implied operations), as Kafka's `AccessControlEntryFilter`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessControlEntryFilter {
    /// `None` = any principal.
    pub principal: Option<Principal>,
    /// `None` = any host.
    pub host: Option<Host>,
    /// `None` = ANY operation.
    pub operation: Option<Operation>,
    /// `None` = ANY permission.
    pub permission: Option<Permission>,
}

impl AccessControlEntryFilter {
    /// Kafka's `AccessControlEntryFilter.matches`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.is_none_or(|h| h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

/// A filter over ACL bindings: what a DescribeAcls request or one DeleteAcls filter carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    /// The resource side.
    pub pattern: ResourcePatternFilter,
    /// The entry side.
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    /// Matches every binding.
    pub fn any() -> Self {
        AclBindingFilter {
            pattern: ResourcePatternFilter::ANY,
            entry: AccessControlEntryFilter::default(),
        }
    }

    /// The filter that matches exactly this binding (and nothing else).
    pub fn exact(acl: &AclBinding) -> Self {
        AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: Some(acl.pattern.resource_type()),
                name: Some(acl.pattern.name().to_owned()),
                pattern_type: PatternTypeFilter::Is(acl.pattern.pattern_type()),
            },
            entry: AccessControlEntryFilter {
                principal: Some(acl.principal.clone()),
                host: Some(acl.host),
                operation: Some(acl.operation),
                permission: Some(acl.permission),
            },
        }
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.pattern.matches(&acl.pattern) && self.entry.matches(acl)
    }

    /// A DescribeAcls request or one DeleteAcls filter from its wire fields (v1+; apply
    /// [`AclBindingFilter::for_version_0`] for v0). Nullable strings are `None`.
    ///
    /// Returns `Ok(None)` for a filter that can match nothing: a principal or host that no
    /// stored ACL can have (Kafka compares the strings and finds nothing). The proxy then
    /// answers with an empty result.
    ///
    /// # Errors
    /// UNKNOWN (0) or unknown codes in any field: INVALID_REQUEST (42), as Kafka's "Unknown
    /// patternFilter." / "Unknown entryFilter.".
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Option<Self>, ParseError> {
        let filter = AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: ResourceType::filter_from_code(resource_type)?,
                name: name.map(str::to_owned),
                pattern_type: PatternTypeFilter::from_code(pattern_type)?,
            },
            entry: AccessControlEntryFilter {
                principal: None,
                host: None,
                operation: Operation::filter_from_code(operation)?,
                permission: Permission::filter_from_code(permission)?,
            },
        };
        let Ok(principal) = principal.map(str::parse::<Principal>).transpose() else {
            return Ok(None);
        };
        let Ok(host) = host.map(str::parse::<Host>).transpose() else {
            return Ok(None);
        };
        Ok(Some(AclBindingFilter {
            entry: AccessControlEntryFilter {
                principal,
                host,
                ..filter.entry
            },
            ..filter
        }))
    }

    /// Kafka's treatment of v0 DescribeAcls/DeleteAcls filters, which predate prefixed ACLs:
    /// pattern ANY becomes LITERAL so legacy clients never see or delete PREFIXED ACLs.
    /// Returns `None` for any other non-literal pattern filter (UNSUPPORTED_VERSION).
    pub fn for_version_0(mut self) -> Option<Self> {
        match self.pattern.pattern_type {
            PatternTypeFilter::Any => {
                self.pattern.pattern_type = PatternTypeFilter::Is(PatternType::Literal);
                Some(self)
            }
            PatternTypeFilter::Is(PatternType::Literal) => Some(self),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(t: ResourceType, p: PatternType, name: &str) -> ResourcePattern {
        ResourcePattern::new(t, p, name).unwrap()
    }

    fn filter(
        t: Option<ResourceType>,
        name: Option<&str>,
        p: PatternTypeFilter,
    ) -> ResourcePatternFilter {
        ResourcePatternFilter {
            resource_type: t,
            name: name.map(str::to_owned),
            pattern_type: p,
        }
    }

    use PatternType::{Literal, Prefixed};
    use PatternTypeFilter::{Any, Is, Match};
    use ResourceType::{Group, Topic};

    /// Ported from Kafka's ResourcePatternFilterTest.
    #[test]
    fn resource_pattern_filter_truth_table() {
        let t = Some(Topic);
        // resource type
        assert!(!filter(t, Some("Name"), Is(Prefixed)).matches(&pattern(Group, Prefixed, "Name")));
        assert!(filter(None, Some("Name"), Is(Prefixed)).matches(&pattern(Group, Prefixed, "Name")));
        // name
        assert!(
            !filter(t, Some("Different"), Is(Prefixed)).matches(&pattern(Topic, Prefixed, "Name"))
        );
        assert!(!filter(t, Some("NAME"), Is(Prefixed)).matches(&pattern(Topic, Prefixed, "Name")));
        assert!(filter(t, None, Is(Prefixed)).matches(&pattern(Topic, Prefixed, "Name")));
        // pattern type
        assert!(!filter(t, Some("Name"), Is(Literal)).matches(&pattern(Topic, Prefixed, "Name")));
        assert!(filter(t, Some("Name"), Any).matches(&pattern(Topic, Prefixed, "Name")));
        assert!(filter(t, Some("Name"), Any).matches(&pattern(Topic, Literal, "Name")));
        assert!(filter(t, Some("Name"), Match).matches(&pattern(Topic, Prefixed, "Name")));
        assert!(filter(t, Some("Name"), Match).matches(&pattern(Topic, Literal, "Name")));
        // literal wildcard
        assert!(filter(t, Some("*"), Is(Literal)).matches(&pattern(Topic, Literal, "*")));
        assert!(!filter(t, Some("Name"), Is(Literal)).matches(&pattern(Topic, Literal, "*")));
        assert!(
            !filter(t, Some("Name"), Any).matches(&pattern(Topic, Literal, "*")),
            "should not match literal wildcard if filter has pattern type ANY"
        );
        assert!(
            filter(t, Some("Name"), Match).matches(&pattern(Topic, Literal, "*")),
            "should match literal wildcard if filter has pattern type MATCH"
        );
        // prefixes
        assert!(filter(t, Some("Name"), Match).matches(&pattern(Topic, Prefixed, "Na")));
        assert!(filter(t, Some("Name"), Is(Prefixed)).matches(&pattern(Topic, Prefixed, "Name")));
        assert!(
            !filter(t, Some("Na"), Is(Prefixed)).matches(&pattern(Topic, Prefixed, "Name")),
            "should not match if both prefixed and the filter is a prefix of the resource"
        );
        assert!(
            !filter(t, Some("Name"), Is(Prefixed)).matches(&pattern(Topic, Prefixed, "Na")),
            "should not match if both prefixed and the resource is a prefix of the filter"
        );
        assert!(!filter(t, Some("Name"), Any).matches(&pattern(Topic, Prefixed, "Na")));
        assert!(!filter(t, Some("Na"), Match).matches(&pattern(Topic, Prefixed, "Name")));
        assert!(filter(t, None, Match).matches(&pattern(Topic, Prefixed, "Na")));
        assert!(!filter(t, Some("Name"), Match).matches(&pattern(Topic, Literal, "Nam")));
    }

    #[test]
    fn entry_filter_compares_exactly() {
        let acl = AclBinding {
            pattern: pattern(Topic, Literal, "orders"),
            principal: "User:*".parse().unwrap(),
            host: Host::Any,
            operation: Operation::All,
            permission: Permission::Allow,
        };
        let mut f = AclBindingFilter::any();
        assert!(f.matches(&acl));
        f.entry.operation = Some(Operation::Read);
        assert!(
            !f.matches(&acl),
            "op filter READ does not match an ALL entry"
        );
        f.entry.operation = Some(Operation::All);
        f.entry.principal = Some("User:alice".parse().unwrap());
        assert!(!f.matches(&acl), "principal filter does not expand User:*");
        assert!(AclBindingFilter::exact(&acl).matches(&acl));
    }

    #[test]
    fn wire_fields_convert_with_kafka_validation() {
        let b = AclBinding::from_wire(2, "orders", 4, "User:a", "::1", 3, 3).unwrap();
        assert_eq!(b.pattern, pattern(Topic, Prefixed, "orders"));
        assert_eq!(b.host.to_string(), "0:0:0:0:0:0:0:1");
        assert_eq!(
            AclBinding::from_wire(4, "x", 3, "User:a", "*", 3, 3)
                .unwrap_err()
                .to_string(),
            "The only valid name for the CLUSTER resource is kafka-cluster"
        );
        assert!(
            AclBinding::from_wire(1, "x", 3, "User:a", "*", 3, 3).is_err(),
            "ANY type"
        );
        assert!(
            AclBinding::from_wire(2, "x", 2, "User:a", "*", 3, 3).is_err(),
            "MATCH pattern"
        );
        assert!(
            AclBinding::from_wire(2, "x", 3, "User:a", "*", 1, 3).is_err(),
            "ANY operation"
        );
        assert!(
            AclBinding::from_wire(2, "x", 3, "User:a", "*", 3, 1).is_err(),
            "ANY permission"
        );
        assert!(
            AclBinding::from_wire(2, "", 3, "User:a", "*", 3, 3).is_err(),
            "empty name"
        );
        assert!(
            AclBinding::from_wire(2, "x", 3, "alice", "*", 3, 3).is_err(),
            "principal"
        );

        let f = AclBindingFilter::from_wire(1, None, 1, None, None, 1, 1)
            .unwrap()
            .unwrap();
        assert_eq!(f, AclBindingFilter::any());
        let f = AclBindingFilter::from_wire(2, Some("t"), 2, Some("User:a"), Some("*"), 3, 3)
            .unwrap()
            .unwrap();
        assert_eq!(f.pattern.pattern_type, Match);
        assert_eq!(f.entry.host, Some(Host::Any));
        assert_eq!(
            AclBindingFilter::from_wire(1, None, 1, Some("nobody"), None, 1, 1),
            Ok(None)
        );
        assert!(AclBindingFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclBindingFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
        assert!(AclBindingFilter::from_wire(1, None, 1, None, None, 0, 1).is_err());
        assert!(AclBindingFilter::from_wire(1, None, 1, None, None, 1, 0).is_err());
    }

    #[test]
    fn version_0_filters_never_see_prefixed_acls() {
        let f = AclBindingFilter::any().for_version_0().unwrap();
        assert!(!f.matches(&AclBinding {
            pattern: pattern(Topic, Prefixed, "a"),
            principal: "User:a".parse().unwrap(),
            host: Host::Any,
            operation: Operation::Read,
            permission: Permission::Allow,
        }));
        let mut m = AclBindingFilter::any();
        m.pattern.pattern_type = Match;
        assert!(m.for_version_0().is_none());
    }
}
