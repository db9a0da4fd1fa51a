//! Authentication errors: what the client is told, and (separately) why, for the logs.

use std::fmt;

/// Kafka's SASL_AUTHENTICATION_FAILED error code, sent with every [`AuthError`].
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// A failed SASL exchange.
///
/// `Display` is the exact text a Kafka broker puts in SaslAuthenticate's `error_message`
/// (KIP-152), so the proxy can send `err.to_string()` (or [`AuthError::client_message`]) as is.
/// The SCRAM and PLAIN credential errors deliberately say the same thing for an unknown user
/// and a wrong password; the real cause is kept apart in [`AuthError::reason`], for the logs
/// only: never send it to the client.
///
/// After any error the connection must be closed (after Kafka's failed-authentication delay).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// SCRAM failed for any reason but an authzid mismatch: unknown user, no credential for
    /// this mechanism, wrong password, malformed message, nonce mismatch, `tokenauth`.
    #[error(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {mechanism}"
    )]
    ScramFailed {
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`, as in Kafka's message.
        mechanism: &'static str,
        /// The real cause, for logs.
        reason: FailureReason,
    },
    /// The client asked to act as another user (SCRAM `a=` or the PLAIN authzid).
    #[error(
        "Authentication failed: Client requested an authorization id that is different from \
         username"
    )]
    AuthorizationIdMismatch,
    /// A PLAIN token that does not have exactly 3 NUL-separated fields (Kafka counts up to 4).
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    PlainTokenCount(usize),
    /// A PLAIN token with an empty username.
    #[error("Authentication failed: username not specified")]
    UsernameNotSpecified,
    /// A PLAIN token with an empty password.
    #[error("Authentication failed: password not specified")]
    PasswordNotSpecified,
    /// PLAIN: unknown user or wrong password (the same text for both).
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword {
        /// The real cause, for logs.
        reason: FailureReason,
    },
}

impl AuthError {
    /// The Kafka error code for SaslAuthenticate: always SASL_AUTHENTICATION_FAILED (58).
    pub fn kafka_error_code(&self) -> i16 {
        SASL_AUTHENTICATION_FAILED
    }

    /// The message for the client; during re-authentication (KIP-368) Kafka's generic SCRAM
    /// text says "re-authentication" instead of "authentication".
    pub fn client_message(&self, reauthentication: bool) -> String {
        match self {
            AuthError::ScramFailed { mechanism, .. } if reauthentication => format!(
                "Authentication failed during re-authentication due to invalid credentials with \
                 SASL mechanism {mechanism}"
            ),
            other => other.to_string(),
        }
    }

    /// Why the exchange really failed, for the connection's log line; `None` when the client
    /// message already says it all.
    pub fn reason(&self) -> Option<FailureReason> {
        match self {
            AuthError::ScramFailed { reason, .. }
            | AuthError::InvalidUsernameOrPassword { reason } => Some(*reason),
            _ => None,
        }
    }
}

/// The cause behind a generic authentication failure. For logs and tests, never for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// The client sent `tokenauth=true`: kgate has no delegation tokens.
    DelegationTokenNotSupported,
    /// A SCRAM step was called after the exchange had finished or failed.
    ExchangeFinished,
    /// The credential's iteration count is outside 4096..=16384.
    IterationsOutOfRange,
    /// A message that does not follow the grammar; the text names the part.
    Malformed(&'static str),
    /// The user exists but has no credential for this mechanism.
    NoCredentialForMechanism,
    /// client-final's nonce does not end with the nonce of server-first.
    NonceMismatch,
    /// The operating system's random source failed (no server nonce could be made).
    RandomUnavailable,
    /// The gs2 header asks for channel binding (`y` or `p=`), which Kafka never offers.
    UnsupportedChannelBinding,
    /// No such user.
    UnknownUser,
    /// The proof (SCRAM) or the password (PLAIN) does not match the credential.
    WrongPassword,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::DelegationTokenNotSupported => {
                f.write_str("delegation tokens (tokenauth=true) are not supported")
            }
            FailureReason::ExchangeFinished => f.write_str("the SASL exchange already finished"),
            FailureReason::IterationsOutOfRange => {
                f.write_str("credential iterations outside 4096..=16384")
            }
            FailureReason::Malformed(what) => write!(f, "malformed message: {what}"),
            FailureReason::NoCredentialForMechanism => {
                f.write_str("user has no credential for this mechanism")
            }
            FailureReason::NonceMismatch => f.write_str("client-final nonce mismatch"),
            FailureReason::RandomUnavailable => f.write_str("OS random source failed"),
            FailureReason::UnsupportedChannelBinding => {
                f.write_str("channel binding requested (gs2 header not 'n')")
            }
            FailureReason::UnknownUser => f.write_str("unknown user"),
            FailureReason::WrongPassword => f.write_str("wrong password"),
        }
    }
}
