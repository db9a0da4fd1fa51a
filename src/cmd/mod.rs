//! One module per subcommand.

pub mod acl;
pub mod bench;
pub mod bench_sim;
pub mod certs;
pub mod client_config;
pub mod config;
pub mod demo;
pub mod fault;
pub mod lab;
pub mod proxy;
pub mod role;
pub mod sim;
pub mod state;
pub mod users;
pub mod versions;
