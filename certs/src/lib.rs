//! kgate-certs: the certificates of a kgate deployment, from generation to the principal of
//! an mTLS client.
//!
//! # Layout
//!
//! - [`generate`]: a private CA, the gateway's server certificate and client certificates,
//!   with rcgen (what `kgate certs init|server|client` runs). Keys are written atomically with
//!   mode 0600 and existing files are never overwritten without `force`.
//! - [`load`]: PEM files into rustls types, with errors that name the file.
//! - [`tls`]: the rustls `ServerConfig` (TLS 1.2/1.3, aws-lc-rs, optional required client
//!   certificates) behind a [`TlsConfigHandle`] that reloads certificates and client CAs live
//!   and refuses a bad new file.
//! - [`dn`]: a certificate subject rendered byte for byte as Java's
//!   `X500Principal.getName()`, the string Kafka's ACLs are written against.
//! - [`mapping`]: Kafka's `ssl.principal.mapping.rules`, turning that string into the
//!   principal name.
//!
//! Errors are one enum per concern ([`CertsError`] for files and TLS, [`PrincipalError`] and
//! [`MappingRulesError`] for principals); nothing here panics on a file's or a peer's bytes.
//!
//! # Example
//!
//! ```
//! use kgate_certs::{generate, PrincipalMapper, TlsConfigHandle, TlsSettings};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let options = generate::GenerateOptions::default();
//! generate::init_ca(dir.path(), &options)?;
//! generate::issue_server(dir.path(), &["localhost".into()], &[], &options)?;
//! let alice = generate::issue_client(dir.path(), "alice", &options)?;
//!
//! // The gateway's TLS configuration, requiring client certificates signed by the CA.
//! let tls = TlsConfigHandle::load(TlsSettings {
//!     cert: dir.path().join("server.pem"),
//!     key: dir.path().join("server-key.pem"),
//!     client_ca: Some(dir.path().join("ca.pem")),
//! })?;
//! let _config = tls.current(); // an Arc<rustls::ServerConfig> for tokio-rustls
//!
//! // What the gateway derives from alice's certificate after the handshake.
//! let cert = &kgate_certs::load_certs(&alice.cert)?[0];
//! let mapper: PrincipalMapper = "RULE:^CN=(.*)$/$1/L,DEFAULT".parse()?;
//! assert_eq!(mapper.principal(cert)?, "alice");
//! assert_eq!(PrincipalMapper::default().principal(cert)?, "CN=alice");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod dn;
mod error;
mod files;
pub mod generate;
pub mod load;
pub mod mapping;
pub mod tls;

pub use dn::{rfc2253, subject_rfc2253, PrincipalError};
pub use error::CertsError;
pub use generate::{GenerateOptions, Generated};
pub use load::{load_certified_key, load_certs, load_client_roots, load_private_key};
pub use mapping::{MappingRulesError, PrincipalMapper, DEFAULT_RULES};
pub use tls::{
    provider, server_config, ReloadOutcome, ReloadableCertResolver, TlsConfigHandle, TlsSettings,
};
