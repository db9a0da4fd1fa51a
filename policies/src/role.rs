//! Roles in the style of Confluent RBAC, and role bindings.
//!
//! What each role grants is data: `policies/roles.toml`, embedded at build time.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Operation, ParseError, Principal, ResourcePattern, ResourceType};

/// The role definitions file, readable next to this crate's `Cargo.toml`.
pub const ROLES_TOML: &str = include_str!("../roles.toml");

/// A predefined role. What it grants is [`Role::grants`], read from `roles.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Consume from topics and groups.
    DeveloperRead,
    /// Produce to topics, transactional ids, idempotently.
    DeveloperWrite,
    /// Create, delete and configure an application's resources.
    DeveloperManage,
    /// Everything on the resources in scope.
    ResourceOwner,
    /// Describe and monitor.
    Operator,
    /// Manage the cluster and topics without data access.
    ClusterAdmin,
    /// Manage users' credentials and tokens.
    UserAdmin,
    /// Manage ACLs.
    SecurityAdmin,
    /// Manage audit configuration.
    AuditAdmin,
    /// Everything.
    SystemAdmin,
}

impl Role {
    /// Every role, in the order Confluent lists them.
    pub const ALL: [Role; 10] = [
        Role::DeveloperRead,
        Role::DeveloperWrite,
        Role::DeveloperManage,
        Role::ResourceOwner,
        Role::Operator,
        Role::ClusterAdmin,
        Role::UserAdmin,
        Role::SecurityAdmin,
        Role::AuditAdmin,
        Role::SystemAdmin,
    ];

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::DeveloperRead => "DeveloperRead",
            Role::DeveloperWrite => "DeveloperWrite",
            Role::DeveloperManage => "DeveloperManage",
            Role::ResourceOwner => "ResourceOwner",
            Role::Operator => "Operator",
            Role::ClusterAdmin => "ClusterAdmin",
            Role::UserAdmin => "UserAdmin",
            Role::SecurityAdmin => "SecurityAdmin",
            Role::AuditAdmin => "AuditAdmin",
            Role::SystemAdmin => "SystemAdmin",
        }
    }

    /// One sentence on what the role is for.
    pub fn description(self) -> &'static str {
        &catalog()[self.index()].description
    }

    /// The operations the role grants, per resource type.
    pub fn grants(self) -> &'static BTreeMap<ResourceType, Vec<Operation>> {
        &catalog()[self.index()].grants
    }

    /// The operations granted on one resource type (empty when none).
    pub fn grants_on(self, resource_type: ResourceType) -> &'static [Operation] {
        self.grants()
            .get(&resource_type)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseError::Role(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDefinition {
    description: String,
    grants: BTreeMap<ResourceType, Vec<Operation>>,
}

/// Parses `roles.toml` in `Role::ALL` order.
fn parse_catalog(text: &str) -> Result<Vec<RoleDefinition>, String> {
    let mut table: BTreeMap<String, RoleDefinition> =
        toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for role in Role::ALL {
        let def = table
            .remove(role.name())
            .ok_or_else(|| format!("role {role} is not defined"))?;
        if def.grants.is_empty() {
            return Err(format!("role {role} grants nothing"));
        }
        out.push(def);
    }
    if let Some(extra) = table.keys().next() {
        return Err(format!("unknown role {extra}"));
    }
    Ok(out)
}

fn catalog() -> &'static [RoleDefinition] {
    static CATALOG: OnceLock<Vec<RoleDefinition>> = OnceLock::new();
    CATALOG.get_or_init(|| match parse_catalog(ROLES_TOML) {
        Ok(c) => c,
        // Invariant: roles.toml is compiled in and `roles_toml_defines_every_role` checks it.
        Err(e) => panic!("embedded roles.toml is invalid: {e}"),
    })
}

// === impl RoleBinding ===

/// A role given to a principal (often a `Group:`) on a resource pattern, or on the whole
/// cluster when `resource` is `None`.
///
/// Always meaningful: a binding on a resource names a type the role grants something on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleBinding {
    principal: Principal,
    role: Role,
    resource: Option<ResourcePattern>,
}

impl RoleBinding {
    /// A binding, checked.
    ///
    /// # Errors
    /// When `resource` is of a type the role grants nothing on.
    pub fn new(
        principal: Principal,
        role: Role,
        resource: Option<ResourcePattern>,
    ) -> Result<Self, ParseError> {
        if let Some(r) = &resource {
            if role.grants_on(r.resource_type()).is_empty() {
                let supported: Vec<&str> = role.grants().keys().map(|t| t.name()).collect();
                return Err(ParseError::RoleResource {
                    role: role.name().into(),
                    resource_type: r.resource_type().name().into(),
                    supported: supported.join(", "),
                });
            }
        }
        Ok(RoleBinding {
            principal,
            role,
            resource,
        })
    }

    /// Who holds the role.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where: a resource pattern, or `None` for the whole cluster.
    pub fn resource(&self) -> Option<&ResourcePattern> {
        self.resource.as_ref()
    }

    /// The (pattern, operation) grants this binding amounts to: for a resource, the role's
    /// operations on that type; for the whole cluster, the role's operations on every name
    /// (`*`, or `kafka-cluster` for the cluster) of every type it lists.
    pub fn expand(&self) -> Vec<(ResourcePattern, Operation)> {
        let mut out = Vec::new();
        match &self.resource {
            Some(p) => {
                for &op in self.role.grants_on(p.resource_type()) {
                    out.push((p.clone(), op));
                }
            }
            None => {
                for (&t, ops) in self.role.grants() {
                    let pattern = whole_type(t);
                    for &op in ops {
                        out.push((pattern.clone(), op));
                    }
                }
            }
        }
        out
    }
}

/// The literal pattern that covers every resource of a type.
fn whole_type(t: ResourceType) -> ResourcePattern {
    match t {
        ResourceType::Cluster => ResourcePattern::cluster(),
        t => match ResourcePattern::literal(t, crate::WILDCARD) {
            Ok(p) => p,
            // Invariant: `*` is non-empty and only the cluster type restricts names.
            Err(_) => ResourcePattern::cluster(),
        },
    }
}

impl fmt::Display for RoleBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Some(r) => write!(f, "{} {} on {}", self.principal, self.role, r),
            None => write!(f, "{} {} on the whole cluster", self.principal, self.role),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_toml_defines_every_role() {
        let defs = parse_catalog(ROLES_TOML).unwrap();
        assert_eq!(defs.len(), Role::ALL.len());
        for role in Role::ALL {
            assert!(!role.description().is_empty());
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert_eq!(
            Role::DeveloperRead.grants_on(ResourceType::Topic),
            &[Operation::Read, Operation::Describe]
        );
        assert_eq!(Role::SystemAdmin.grants().len(), ResourceType::ALL.len());
    }

    #[test]
    fn a_catalog_with_a_missing_role_is_refused() {
        let err = parse_catalog(
            "[DeveloperRead]\ndescription = \"x\"\ngrants = { Topic = [\"Read\"] }\n",
        );
        assert_eq!(err.unwrap_err(), "role DeveloperWrite is not defined");
    }

    #[test]
    fn unknown_role_names_list_the_known_ones() {
        let err = "Reader".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("DeveloperRead, DeveloperWrite"), "{err}");
    }

    #[test]
    fn a_binding_on_a_type_the_role_does_not_cover_is_refused() {
        let topic = ResourcePattern::literal(ResourceType::Topic, "t").unwrap();
        let err = RoleBinding::new(
            Principal::user("a").unwrap(),
            Role::SecurityAdmin,
            Some(topic),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "role SecurityAdmin grants nothing on Topic resources: bind it on one of Cluster"
        );
    }

    #[test]
    fn a_cluster_wide_binding_expands_to_every_listed_type() {
        let b = RoleBinding::new(Principal::user("a").unwrap(), Role::SecurityAdmin, None).unwrap();
        let grants = b.expand();
        assert_eq!(grants.len(), 2);
        assert!(grants.iter().all(|(p, _)| *p == ResourcePattern::cluster()));
        let b = RoleBinding::new(Principal::user("a").unwrap(), Role::DeveloperRead, None).unwrap();
        assert!(b.expand().iter().all(|(p, _)| p.name() == "*"));
    }
}
