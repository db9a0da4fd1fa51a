//! One module per subcommand.

pub mod certs;
pub mod client_config;
pub mod config;
pub mod demo;
pub mod proxy;
pub mod sim;
