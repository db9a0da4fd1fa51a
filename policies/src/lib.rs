//! placeholder
#![forbid(unsafe_code)]
mod acl;
mod authorizer;
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
pub use error::*;
pub use filter::*;
pub use matcher::{Decision, Request, Rule};
pub use policy::*;
pub use principal::*;
pub use role::*;
