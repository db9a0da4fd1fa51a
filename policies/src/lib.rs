//! kgate's authorization model: Kafka ACLs exactly as a Kafka broker's authorizer applies
//! them, plus roles in the style of Confluent RBAC, kept in one human-readable policy file.
//!
//! # Parts
//! - **Vocabulary** ([`Principal`], [`ResourceType`], [`PatternType`], [`Operation`],
//!   [`Permission`], [`Host`], [`ResourcePattern`], [`AclBinding`]): types that cannot hold
//!   an invalid value, with Kafka's wire codes and Kafka's implied operations
//!   ([`Operation::allows`], [`Operation::denies`]).
//! - **Filters** ([`AclBindingFilter`]): Kafka's ANY/MATCH semantics for DescribeAcls and
//!   DeleteAcls.
//! - **Roles** ([`Role`], [`RoleBinding`]): what each role grants is `roles.toml`.
//! - **Policy** ([`Policy`]): ACL bindings, role bindings, group membership, super users and
//!   `allow_everyone_if_no_acl_found`; parsed with file, line and reason on error; written
//!   atomically.
//! - **Authorizer** ([`Authorizer`]): the policy compiled into literal maps and prefix tries
//!   per resource type, behind a bounded decision cache keyed on the whole request and
//!   invalidated by a generation number. It answers [`Authorizer::authorize`],
//!   [`Authorizer::authorize_by_resource_type`] and [`Authorizer::authorized_operations`],
//!   and serves CreateAcls / DescribeAcls / DeleteAcls, persisting changes.
//! - **Reference** ([`reference`](mod@reference)): the casbin model file `kafka_acl.conf` and the policy as
//!   casbin rows. A property test keeps the compiled matcher equal to casbin.
//! - **Bench** ([`bench_decisions`]): decision cost at 100, 10,000 and 100,000 bindings.
//!
//! # Example
//! ```
//! use kgate_policies::{Authorizer, AuthorizerOptions, Operation, Policy, Principal, Request, ResourceType};
//!
//! let text = r#"
//! [groups]
//! marketing = ["User:alice"]
//!
//! [[acl]]
//! principal = "Group:marketing"
//! permission = "Allow"
//! operation = "Read"
//! resource_type = "Topic"
//! name = "customer_feedback"
//! "#;
//! let policy = Policy::parse(text, "policy.toml".as_ref())?;
//! let authorizer = Authorizer::new(policy, AuthorizerOptions::default());
//!
//! let alice: Principal = "User:alice".parse()?;
//! let mut request = Request {
//!     principal: &alice,
//!     groups: &[],
//!     host: "10.0.0.5".parse()?,
//!     resource_type: ResourceType::Topic,
//!     name: "customer_feedback",
//!     operation: Operation::Describe, // implied by Read
//! };
//! assert!(authorizer.authorize(&request).allowed);
//!
//! request.operation = Operation::Write;
//! let decision = authorizer.authorize(&request);
//! assert!(!decision.allowed);
//! assert_eq!(decision.rule.to_string(), "no rule matched: default deny");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acl;
mod authorizer;
mod bench;
mod cache;
mod error;
mod filter;
mod matcher;
mod policy;
mod principal;
pub mod reference;
mod role;

pub use acl::*;
pub use authorizer::*;
pub use bench::{bench_decisions, synthetic_policy, BenchFigure, BENCH_SIZES};
pub use error::*;
pub use filter::*;
pub use matcher::{Decision, Request, Rule};
pub use policy::*;
pub use principal::*;
pub use role::*;
