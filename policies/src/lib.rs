//! placeholder
#![forbid(unsafe_code)]
mod acl;
mod error;
mod filter;
mod policy;
mod principal;
mod role;
pub use acl::*;
pub use error::*;
pub use filter::*;
pub use policy::*;
pub use principal::*;
pub use role::*;
