//! SASL authentication for kgate: the server side of SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
//! exactly as a Kafka broker runs them, and the file of salted SCRAM credentials they check.
//!
//! # Layout
//! * [`scram`]: the SCRAM state machine ([`ScramServer`]), fed with the client's messages.
//! * [`plain`]: PLAIN ([`plain::authenticate`]), verified against the SCRAM credentials.
//! * [`store`]: users and credentials ([`CredentialStore`]), the TOML file, and the proxy's
//!   reloadable handle ([`SharedCredentials`]).
//! * [`ScramCredential`]: salt, StoredKey, ServerKey, iterations: what Kafka keeps.
//! * [`crypto`]: the RFC 5802 key derivations on the RustCrypto primitives.
//! * [`AuthError`]: the failure a client sees (Kafka's exact text) plus the real cause, for
//!   logs only.
//!
//! Only mechanism bytes go in and out: the Kafka framing (SaslHandshake v0 raw tokens or
//! SaslAuthenticate) belongs to the proxy. The SCRAM server never runs PBKDF2 (a few
//! microseconds per exchange); PLAIN and credential creation do (up to ≈20 ms), so they
//! belong on a blocking thread.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use kgate_auth::{CredentialStore, Mechanism, ScramServer, Step};
//!
//! let mut store = CredentialStore::new();
//! store.add("alice", Mechanism::ScramSha256, b"alice-secret", 4096)?;
//! let store = Arc::new(store);
//!
//! // PLAIN: one token, the username comes back.
//! let user = kgate_auth::plain::authenticate(&store, b"\0alice\0alice-secret")?;
//! assert_eq!(user, "alice");
//!
//! // SCRAM: the first client message gets server-first back ...
//! let mut server = ScramServer::new(Mechanism::ScramSha256, store.clone());
//! let Step::Continue(server_first) = server.step(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL")?
//! else { unreachable!() };
//! assert!(server_first.starts_with(b"r=fyko+d2lbbFgONRv9qkxdawL"));
//!
//! // ... and a malformed or wrong client-final fails with Kafka's generic message.
//! let err = server.step(b"c=biws,r=wrong,p=AAAA").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "Authentication failed during authentication due to invalid credentials with SASL \
//!      mechanism SCRAM-SHA-256"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod plain;
pub mod scram;
pub mod store;

mod credential;
mod error;
mod mechanism;

pub use credential::{CredentialFormatError, ScramCredential};
pub use error::{AuthError, FailureReason, SASL_AUTHENTICATION_FAILED};
pub use mechanism::{
    Mechanism, UnknownMechanism, DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS,
};
pub use scram::{ScramServer, Step};
pub use store::{
    CredentialError, CredentialLock, CredentialSink, CredentialStore, Deletion, SharedCredentials,
    StoreError, Upsertion, UserCredentials, UserSummary,
};
/// Re-exported so callers (the CLI) can hold passwords in zeroizing buffers without a
/// dependency of their own.
pub use zeroize::Zeroizing;
