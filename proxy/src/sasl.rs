//! Kafka's SASL framing, exactly as a broker's `SaslServerAuthenticator` does it.
//!
//! The mechanisms themselves (PLAIN, SCRAM) live behind [`Authenticator`]; this module only
//! knows Kafka's connection states: ApiVersions (at most once) → SaslHandshake v0 (raw
//! tokens follow) or v1 (SaslAuthenticate requests follow) → authenticated, or closed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::frame::{read_frame, write_frame, MAX_PRE_AUTH_FRAME};
use crate::header::{decode_body, decode_request_header, encode_response, RequestPrefix};
use crate::log_safe::LogSafe;
use crate::versions::VersionTable;

/// Kafka's ILLEGAL_SASL_STATE.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// Kafka's UNSUPPORTED_SASL_MECHANISM.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's SASL_AUTHENTICATION_FAILED.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// The outcome of one mechanism step.
#[derive(Debug)]
pub enum SaslStep {
    /// Send this challenge and wait for the client's next token.
    Continue(Vec<u8>),
    /// Authenticated: send the final token (possibly empty).
    Done {
        /// The last server token.
        response: Vec<u8>,
        /// The authenticated principal, in Kafka's form (`User:alice`).
        principal: String,
    },
    /// Refused, with the message Kafka would send (KIP-152).
    Failed {
        /// Sent to v1 clients in SaslAuthenticate's error_message.
        message: String,
        /// The user the client claimed, for the log line only.
        user: Option<String>,
        /// The real cause (unknown user, wrong password, ...), for the log line only.
        reason: Option<String>,
    },
}

/// One authentication exchange in progress.
pub trait SaslSession: Send + 'static {
    /// Consumes one client token. May be CPU-heavy (PLAIN runs PBKDF2), so the connection
    /// calls it on a blocking thread.
    fn step(&mut self, token: &[u8]) -> SaslStep;
}

/// The mechanisms a gateway offers, and where their credentials come from.
pub trait Authenticator: Send + Sync + 'static {
    /// Enabled mechanism names, as sent in SaslHandshake responses.
    fn mechanisms(&self) -> Vec<String>;
    /// Starts an exchange, or `None` if the mechanism is not enabled.
    fn start(&self, mechanism: &str) -> Option<Box<dyn SaslSession>>;
    /// A number that changes whenever the credentials change (0 if they never do).
    fn generation(&self) -> u64 {
        0
    }
    /// A fingerprint of what `user` logs in with under `mechanism` now; `None` when the user
    /// or that credential is gone. An open connection compares it with the one it logged in
    /// with to notice a changed password or a removed user.
    fn fingerprint(&self, _user: &str, _mechanism: &str) -> Option<u64> {
        None
    }
}

/// How a connection ended up authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// `User:alice`, or the mapped certificate principal.
    pub principal: String,
    /// `SCRAM-SHA-512`, `PLAIN`, `SSL` (client certificate) or `NONE` (anonymous listener).
    pub mechanism: String,
}

/// Why a connection was closed during authentication.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthClose {
    /// The client went away.
    #[error("client closed the connection during authentication")]
    ClientClosed,
    /// A frame could not be read (oversized, truncated, socket error).
    #[error("{0}")]
    Frame(#[from] crate::frame::FrameError),
    /// The client sent something Kafka would not accept at this point.
    #[error("{0}")]
    Protocol(String),
    /// The credentials were refused.
    #[error(
        "authentication failed: mechanism {mechanism}, user {}, cause: {}",
        LogSafe(user.as_deref().unwrap_or("-")),
        reason.as_deref().unwrap_or(message)
    )]
    Failed {
        /// The mechanism tried.
        mechanism: String,
        /// The message sent to the client.
        message: String,
        /// The user name the client claimed, when it could be read: as the client sent it,
        /// so print it through [`LogSafe`] (as `Display` does).
        user: Option<String>,
        /// The real cause, never sent to the client.
        reason: Option<String>,
    },
    /// Writing to the client failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// What the pre-authentication phase produced.
#[derive(Debug)]
pub struct AuthOutcome {
    /// Who the client is.
    pub who: Authenticated,
    /// The first post-authentication request, when the client skipped SASL because its
    /// certificate already authenticated it.
    pub first_request: Option<Bytes>,
}

/// Settings of the SASL phase.
#[derive(Clone)]
pub struct SaslSettings {
    /// The mechanisms; `None` on listeners without SASL.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// Delay before closing after a failed authentication (Kafka's
    /// `connection.failed.authentication.delay.ms`, 100 ms by default).
    pub failure_delay: Duration,
    /// How long a SASL session lasts before the client must re-authenticate on the same
    /// connection (KIP-368, Kafka's `connections.max.reauth.ms`); zero: forever. Sent to the
    /// client in SaslAuthenticate v1+; a request after expiry closes the connection.
    pub session_lifetime: Duration,
    /// Close a connection at its next request once the credential it logged in with is
    /// changed or removed (a reload, AlterUserScramCredentials), instead of at its next
    /// re-authentication.
    pub revoke_sessions_on_change: bool,
}

impl SaslSettings {
    /// The lifetime as SaslAuthenticate carries it (0: no expiry).
    pub fn session_lifetime_ms(&self) -> i64 {
        i64::try_from(self.session_lifetime.as_millis()).unwrap_or(i64::MAX)
    }
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("sasl", &self.authenticator.is_some())
            .field("failure_delay", &self.failure_delay)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

/// Runs Kafka's pre-authentication state machine on a fresh connection.
///
/// `cert_principal` is the mapped client-certificate principal, if the TLS handshake
/// verified one: such a client may skip SASL, as on a Kafka SSL listener. On a listener
/// without SASL and without a certificate the client is `User:ANONYMOUS`.
///
/// # Errors
/// [`AuthClose`] says why the connection must be closed; responses Kafka sends before such a
/// close (error 33, error 58) have already been written, and the failure delay has passed.
///
/// `on_failure` is called when a login fails: it records the failure (per client address)
/// and returns how much longer than `failure_delay` this one is held. The failure's answer is
/// held that long before it is sent, so an address that keeps guessing learns each verdict
/// later and later; the close follows after `failure_delay`, as in Kafka.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    versions: &VersionTable,
    settings: &SaslSettings,
    cert_principal: Option<String>,
    on_failure: &(dyn Fn() -> Duration + Sync),
) -> Result<AuthOutcome, AuthClose> {
    let Some(authenticator) = settings.authenticator.clone() else {
        let who = match cert_principal {
            Some(principal) => Authenticated {
                principal,
                mechanism: "SSL".into(),
            },
            None => Authenticated {
                principal: "User:ANONYMOUS".into(),
                mechanism: "NONE".into(),
            },
        };
        return Ok(AuthOutcome {
            who,
            first_request: None,
        });
    };
    let mut api_versions_seen = false;
    loop {
        let frame = read_frame(stream, MAX_PRE_AUTH_FRAME)
            .await?
            .ok_or(AuthClose::ClientClosed)?;
        let prefix = RequestPrefix::peek(&frame)
            .ok_or_else(|| AuthClose::Protocol("frame too short for a request header".into()))?;
        match prefix.known_key() {
            Some(ApiKey::ApiVersions) if !api_versions_seen => {
                let (resp, ok) = versions
                    .answer_api_versions(&frame, &prefix)
                    .map_err(AuthClose::Protocol)?;
                // After error 35 or 42 the client may retry with a version kgate accepts.
                api_versions_seen = ok;
                write_frame(stream, &resp).await?;
            }
            Some(ApiKey::ApiVersions) => {
                return Err(AuthClose::Protocol(
                    "second ApiVersions request before SaslHandshake".into(),
                ))
            }
            Some(ApiKey::SaslHandshake) if (0..=1).contains(&prefix.api_version) => {
                let (_, body) =
                    decode_request_header(ApiKey::SaslHandshake, prefix.api_version, &frame)
                        .map_err(|e| AuthClose::Protocol(e.to_string()))?;
                let req: SaslHandshakeRequest =
                    decode_body(ApiKey::SaslHandshake, prefix.api_version, body)
                        .map_err(|e| AuthClose::Protocol(e.to_string()))?;
                let mechanism = req.mechanism.to_string();
                let enabled = authenticator.mechanisms();
                let session = authenticator.start(&mechanism);
                let error_code = if session.is_some() {
                    0
                } else {
                    UNSUPPORTED_SASL_MECHANISM
                };
                let resp = SaslHandshakeResponse::default()
                    .with_error_code(error_code)
                    .with_mechanisms(enabled.iter().cloned().map(StrBytes::from_string).collect());
                let bytes = encode_response(
                    ApiKey::SaslHandshake,
                    prefix.api_version,
                    prefix.correlation_id,
                    &resp,
                )
                .map_err(|e| AuthClose::Protocol(e.to_string()))?;
                write_frame(stream, &bytes).await?;
                let Some(session) = session else {
                    // Kafka counts this as a failed authentication: same delay before the close.
                    tokio::time::sleep(settings.failure_delay).await;
                    return Err(AuthClose::Protocol(format!(
                        "unsupported SASL mechanism \"{}\" (enabled: {})",
                        LogSafe(&mechanism),
                        enabled.join(", ")
                    )));
                };
                let exchange = if prefix.api_version == 0 {
                    let result = raw_tokens(stream, session, &mechanism).await;
                    if matches!(result, Err(AuthClose::Failed { .. })) {
                        // No answer in v0: the close itself comes later.
                        tokio::time::sleep(on_failure()).await;
                    }
                    result
                } else {
                    authenticate_requests(
                        stream,
                        versions,
                        session,
                        &mechanism,
                        settings.session_lifetime_ms(),
                        on_failure,
                    )
                    .await
                };
                return match exchange {
                    Ok(principal) => Ok(AuthOutcome {
                        who: Authenticated {
                            principal,
                            mechanism,
                        },
                        first_request: None,
                    }),
                    Err(e) => {
                        if matches!(e, AuthClose::Failed { .. }) {
                            tokio::time::sleep(settings.failure_delay).await;
                        }
                        Err(e)
                    }
                };
            }
            _ if cert_principal.is_some() => {
                return Ok(AuthOutcome {
                    who: Authenticated {
                        principal: cert_principal.unwrap_or_default(),
                        mechanism: "SSL".into(),
                    },
                    first_request: Some(frame),
                });
            }
            other => {
                return Err(AuthClose::Protocol(format!(
                    "unexpected Kafka request of type {} during SASL handshake",
                    api_name(prefix.api_key, other)
                )))
            }
        }
    }
}

/// Handshake v0: the tokens travel as bare frames; a failure just closes the connection.
async fn raw_tokens<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    mut session: Box<dyn SaslSession>,
    mechanism: &str,
) -> Result<String, AuthClose> {
    loop {
        let token = read_frame(stream, MAX_PRE_AUTH_FRAME)
            .await?
            .ok_or(AuthClose::ClientClosed)?;
        let (back, step) = run_step(session, token).await?;
        session = back;
        match step {
            SaslStep::Continue(challenge) => write_frame(stream, &challenge).await?,
            SaslStep::Done {
                response,
                principal,
            } => {
                write_frame(stream, &response).await?;
                return Ok(principal);
            }
            SaslStep::Failed {
                message,
                user,
                reason,
            } => {
                return Err(AuthClose::Failed {
                    mechanism: mechanism.to_owned(),
                    message,
                    user,
                    reason,
                })
            }
        }
    }
}

/// Handshake v1: every token is a SaslAuthenticate request and gets a response.
async fn authenticate_requests<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    versions: &VersionTable,
    mut session: Box<dyn SaslSession>,
    mechanism: &str,
    lifetime_ms: i64,
    on_failure: &(dyn Fn() -> Duration + Sync),
) -> Result<String, AuthClose> {
    loop {
        let frame = read_frame(stream, MAX_PRE_AUTH_FRAME)
            .await?
            .ok_or(AuthClose::ClientClosed)?;
        let prefix = RequestPrefix::peek(&frame)
            .ok_or_else(|| AuthClose::Protocol("frame too short for a request header".into()))?;
        let accepted = versions
            .range(ApiKey::SaslAuthenticate)
            .is_some_and(|(min, max)| (min..=max).contains(&prefix.api_version));
        if prefix.known_key() != Some(ApiKey::SaslAuthenticate) || !accepted {
            // Kafka's IllegalSaslStateException: the request's own error answer, then close.
            if let Some(answer) =
                crate::error_response::error_response(&prefix, &frame, ILLEGAL_SASL_STATE)
            {
                write_frame(stream, &answer).await?;
            }
            return Err(AuthClose::Protocol(format!(
                "unexpected Kafka request of type {} v{} during SASL authentication",
                api_name(prefix.api_key, prefix.known_key()),
                prefix.api_version
            )));
        }
        let version = prefix.api_version;
        let (_, body) = decode_request_header(ApiKey::SaslAuthenticate, version, &frame)
            .map_err(|e| AuthClose::Protocol(e.to_string()))?;
        let req: SaslAuthenticateRequest = decode_body(ApiKey::SaslAuthenticate, version, body)
            .map_err(|e| AuthClose::Protocol(e.to_string()))?;
        let (back, step) = run_step(session, req.auth_bytes).await?;
        session = back;
        let (resp, outcome) = match step {
            SaslStep::Continue(challenge) => (
                SaslAuthenticateResponse::default().with_auth_bytes(challenge.into()),
                None,
            ),
            SaslStep::Done {
                response,
                principal,
            } => (
                SaslAuthenticateResponse::default()
                    .with_auth_bytes(response.into())
                    .with_session_lifetime_ms(if version >= 1 { lifetime_ms } else { 0 }),
                Some(Ok(principal)),
            ),
            SaslStep::Failed {
                message,
                user,
                reason,
            } => (
                SaslAuthenticateResponse::default()
                    .with_error_code(SASL_AUTHENTICATION_FAILED)
                    .with_error_message(Some(StrBytes::from_string(message.clone()))),
                Some(Err(AuthClose::Failed {
                    mechanism: mechanism.to_owned(),
                    message,
                    user,
                    reason,
                })),
            ),
        };
        let bytes = encode_response(
            ApiKey::SaslAuthenticate,
            version,
            prefix.correlation_id,
            &resp,
        )
        .map_err(|e| AuthClose::Protocol(e.to_string()))?;
        if matches!(outcome, Some(Err(AuthClose::Failed { .. }))) {
            tokio::time::sleep(on_failure()).await;
        }
        write_frame(stream, &bytes).await?;
        if let Some(done) = outcome {
            return done;
        }
    }
}

/// Runs one mechanism step on the blocking pool (PLAIN's PBKDF2 is CPU-heavy).
pub(crate) async fn run_step(
    mut session: Box<dyn SaslSession>,
    token: Bytes,
) -> Result<(Box<dyn SaslSession>, SaslStep), AuthClose> {
    // Password hashing takes at most one thread per core at a time, so a login storm waits
    // its turn instead of starving the data path of blocking threads.
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| AuthClose::Protocol(format!("authentication step failed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let step = session.step(&token);
        (session, step)
    })
    .await
    .map_err(|e| AuthClose::Protocol(format!("authentication step failed: {e}")))
}

/// The bounded pool password hashing runs on: one slot per core.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new(cores)
    })
}

/// A readable API name for logs, also for keys kgate does not know.
pub fn api_name(raw: i16, key: Option<ApiKey>) -> String {
    key.map_or_else(|| format!("unknown API key {raw}"), |k| format!("{k:?}"))
}

/// The response to a SaslHandshake or SaslAuthenticate on an authenticated connection:
/// error 34, as Kafka answers when re-authentication does not apply.
///
/// # Errors
/// Only if the response cannot be encoded (a bug).
pub fn after_authentication(
    prefix: &RequestPrefix,
    mechanisms: Vec<String>,
) -> Result<Bytes, crate::header::EncodeError> {
    match prefix.known_key() {
        Some(ApiKey::SaslHandshake) => encode_response(
            ApiKey::SaslHandshake,
            prefix.api_version,
            prefix.correlation_id,
            &SaslHandshakeResponse::default()
                .with_error_code(ILLEGAL_SASL_STATE)
                .with_mechanisms(mechanisms.into_iter().map(StrBytes::from_string).collect()),
        ),
        _ => encode_response(
            ApiKey::SaslAuthenticate,
            prefix.api_version,
            prefix.correlation_id,
            &SaslAuthenticateResponse::default()
                .with_error_code(ILLEGAL_SASL_STATE)
                .with_error_message(Some(StrBytes::from_static_str(
                    "SaslAuthenticate request received after successful authentication",
                ))),
        ),
    }
}
