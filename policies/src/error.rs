//! Errors: one for a single value that does not parse, one for a policy file.

use std::path::PathBuf;

/// A value (principal, operation, host, resource pattern, ...) that does not parse.
///
/// Each message names the problem and how to write the value instead, so the CLI can print it
/// as is and the proxy can put it in a Kafka `error_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A principal without the `Type:name` shape.
    #[error("malformed principal `{0}`: write Type:name, e.g. User:alice or Group:marketing")]
    PrincipalShape(String),
    /// A principal type written in the wrong case (types are case-sensitive).
    #[error("malformed principal `{given}`: principal types are case-sensitive, write {expected}")]
    PrincipalCase {
        /// What was given.
        given: String,
        /// The spelling Kafka uses.
        expected: String,
    },
    /// An unknown operation name or code.
    #[error("unknown operation `{0}`: expected one of All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens")]
    Operation(String),
    /// An unknown resource type name or code.
    #[error("unknown resource type `{0}`: expected one of Topic, Group, Cluster, TransactionalId, DelegationToken, User")]
    ResourceType(String),
    /// An unknown pattern type name or code.
    #[error(
        "unknown pattern type `{0}`: expected Literal or Prefixed (filters also take Any or Match)"
    )]
    PatternType(String),
    /// An unknown permission name or code.
    #[error("unknown permission `{0}`: expected Allow or Deny")]
    Permission(String),
    /// A host that is neither `*` nor an IP address.
    #[error("bad host `{0}`: write * or an exact IP address (no hostnames, no CIDR ranges)")]
    Host(String),
    /// An empty resource name (Kafka refuses it too).
    #[error("Invalid empty resource name")]
    EmptyResourceName,
    /// A cluster resource not named `kafka-cluster` (Kafka refuses it too).
    #[error("The only valid name for the CLUSTER resource is kafka-cluster")]
    ClusterName,
    /// An unknown role name.
    #[error("unknown role `{0}`: expected one of DeveloperRead, DeveloperWrite, DeveloperManage, ResourceOwner, Operator, ClusterAdmin, UserAdmin, SecurityAdmin, AuditAdmin, SystemAdmin")]
    Role(String),
    /// A role bound on a resource type it grants nothing on.
    #[error(
        "role {role} grants nothing on {resource_type} resources: bind it on one of {supported}"
    )]
    RoleResource {
        /// The role.
        role: String,
        /// The resource type it was bound on.
        resource_type: String,
        /// The resource types it does grant on.
        supported: String,
    },
    /// A group name that is empty or a group member that cannot be one.
    #[error("bad group membership: {0}")]
    Group(String),
    /// A resource written as `type:name` that does not parse.
    #[error("bad resource `{0}`: write type:name, e.g. topic:orders, group:billing, transactional-id:tx1, or cluster")]
    Resource(String),
}

/// A policy file that cannot be read, parsed or written.
///
/// Loading never half-applies: on any error the caller keeps the policy that was in force.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The policy file.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is wrong at a known place.
    #[error("{}:{line}:{column}: {reason}", file.display())]
    Invalid {
        /// The policy file.
        file: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The shared state in the cluster (`state = "kafka"`) could not take the change; nothing
    /// changed.
    #[error("the shared state in the cluster: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}
