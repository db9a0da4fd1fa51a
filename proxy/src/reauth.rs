//! Session lifetime and re-authentication on an open connection (KIP-368).
//!
//! A SASL session lasts `session_lifetime` (Kafka's `connections.max.reauth.ms`); the client
//! learns it from SaslAuthenticate v1+ and, before it ends, sends SaslHandshake and
//! SaslAuthenticate again on the same connection while its other requests are in flight.
//! kgate answers those itself, in request order with everything else, and:
//! - the mechanism and the principal must stay the same, or the connection closes;
//! - a failed re-authentication (a removed user, a changed password) closes the connection;
//! - any other request after the session expired closes the connection (KAFKA-9190), so a
//!   client that never re-authenticates keeps a revoked credential for one lifetime at most.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::header::{decode_body, decode_request_header, encode_response, RequestPrefix};
use crate::log_safe;
use crate::sasl::{
    run_step, SaslSession, SaslStep, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED,
    UNSUPPORTED_SASL_MECHANISM,
};
use crate::server::Shared;

/// Kafka accepts a new re-authentication only this long after the previous one began.
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// The user name of a SASL principal (`User:alice` → `alice`).
fn user_of(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

/// How the connection logged in, as re-authentication must repeat it.
#[derive(Debug, Clone)]
pub struct SaslLogin {
    /// `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.
    pub mechanism: String,
    /// `User:alice`.
    pub principal: String,
}

/// What the connection does with one client frame.
pub enum Intercept {
    /// Not a re-authentication frame: handle it as usual.
    Pass,
    /// kgate's answer (header and body), queued in order with the other responses.
    Answer(Bytes),
    /// Answer, then close the connection once earlier responses are written.
    AnswerAndClose(Bytes, String),
    /// Close at once (the session expired).
    Close(String),
}

/// The re-authentication state of one connection.
pub struct Reauth {
    login: Option<SaslLogin>,
    /// With `revoke_sessions_on_change`: the credential generation last checked and the
    /// fingerprint of the credential the session stands on.
    revoke: Option<(u64, Option<u64>)>,
    lifetime: Duration,
    expires_at: Option<Instant>,
    last_start: Option<Instant>,
    exchange: Option<Box<dyn SaslSession>>,
}

impl Reauth {
    /// The state right after login; `login` is `None` for connections without SASL (mTLS,
    /// anonymous), which never expire.
    pub fn new(shared: &Shared, login: Option<SaslLogin>) -> Self {
        let lifetime = shared.config.sasl.session_lifetime;
        let expires_at =
            (login.is_some() && !lifetime.is_zero()).then(|| Instant::now() + lifetime);
        let revoke = match (&login, &shared.config.sasl.authenticator) {
            (Some(l), Some(a)) if shared.config.sasl.revoke_sessions_on_change => Some((
                a.generation(),
                a.fingerprint(user_of(&l.principal), &l.mechanism),
            )),
            _ => None,
        };
        Self {
            login,
            revoke,
            lifetime,
            expires_at,
            // The login itself counts as the previous authentication: a handshake within
            // the next second is an ordinary request (ILLEGAL_SASL_STATE), as in Kafka.
            last_start: Some(Instant::now()),
            exchange: None,
        }
    }

    /// Looks at one client frame (header and body) before anything else does.
    pub async fn intercept(&mut self, shared: &Shared, frame: &Bytes) -> Intercept {
        let Some(prefix) = RequestPrefix::peek(frame) else {
            return Intercept::Pass;
        };
        if let Some(exchange) = self.exchange.take() {
            return self.step(shared, &prefix, frame, exchange).await;
        }
        if let Some(why) = self.credentials_changed(shared) {
            shared.metrics.session_expired();
            return Intercept::Close(why);
        }
        let (Some(login), Some(_)) = (&self.login, self.expires_at) else {
            return Intercept::Pass;
        };
        let due = self
            .last_start
            .is_none_or(|t| t.elapsed() >= MIN_REAUTH_INTERVAL);
        if prefix.known_key() == Some(ApiKey::SaslHandshake) && prefix.api_version >= 1 && due {
            let login = login.clone();
            return self.handshake(shared, &prefix, frame, &login);
        }
        if self.expires_at.is_some_and(|t| Instant::now() >= t) {
            shared.metrics.session_expired();
            return Intercept::Close(format!(
                "session expired after {} ms without re-authentication (KIP-368)",
                self.lifetime.as_millis()
            ));
        }
        Intercept::Pass
    }

    /// With `revoke_sessions_on_change`: why the session ends because the credential it
    /// logged in with was changed or removed since (checked when the credentials change).
    fn credentials_changed(&mut self, shared: &Shared) -> Option<String> {
        let (seen, fingerprint) = self.revoke.as_mut()?;
        let authenticator = shared.config.sasl.authenticator.as_ref()?;
        let now = authenticator.generation();
        if now == *seen {
            return None;
        }
        *seen = now;
        let login = self.login.as_ref()?;
        let current = authenticator.fingerprint(user_of(&login.principal), &login.mechanism);
        (current != *fingerprint || current.is_none()).then(|| {
            format!(
                "the credentials of {} changed (revoke_sessions_on_change)",
                log_safe::log_safe(&login.principal)
            )
        })
    }

    fn handshake(
        &mut self,
        shared: &Shared,
        prefix: &RequestPrefix,
        frame: &Bytes,
        login: &SaslLogin,
    ) -> Intercept {
        let version = prefix.api_version;
        let req: SaslHandshakeRequest =
            match decode_request_header(ApiKey::SaslHandshake, version, frame)
                .map_err(|e| e.to_string())
                .and_then(|(_, body)| {
                    decode_body(ApiKey::SaslHandshake, version, body).map_err(|e| e.to_string())
                }) {
                Ok(r) => r,
                Err(e) => {
                    return Intercept::Close(format!("malformed re-authentication handshake: {e}"))
                }
            };
        let answer = |code: i16, mechanisms: Vec<String>| {
            encode_response(
                ApiKey::SaslHandshake,
                version,
                prefix.correlation_id,
                &SaslHandshakeResponse::default()
                    .with_error_code(code)
                    .with_mechanisms(mechanisms.into_iter().map(StrBytes::from_string).collect()),
            )
        };
        self.last_start = Some(Instant::now());
        let asked = req.mechanism.to_string();
        let session = shared
            .config
            .sasl
            .authenticator
            .as_ref()
            .filter(|_| asked == login.mechanism)
            .and_then(|a| a.start(&asked));
        match (session, answer(0, shared.mechanisms())) {
            (Some(session), Ok(bytes)) => {
                self.exchange = Some(session);
                Intercept::Answer(bytes)
            }
            (None, _) => {
                shared.metrics.reauth_failure();
                match answer(UNSUPPORTED_SASL_MECHANISM, vec![login.mechanism.clone()]) {
                    Ok(bytes) => Intercept::AnswerAndClose(
                        bytes,
                        format!(
                            "re-authentication with {} after logging in with {}: the mechanism \
                             must stay the same",
                            log_safe::log_safe(&asked),
                            login.mechanism
                        ),
                    ),
                    Err(e) => Intercept::Close(e.to_string()),
                }
            }
            (Some(_), Err(e)) => Intercept::Close(e.to_string()),
        }
    }

    async fn step(
        &mut self,
        shared: &Shared,
        prefix: &RequestPrefix,
        frame: &Bytes,
        exchange: Box<dyn SaslSession>,
    ) -> Intercept {
        let version = prefix.api_version;
        let accepted = shared
            .versions()
            .range(ApiKey::SaslAuthenticate)
            .is_some_and(|(min, max)| (min..=max).contains(&version));
        if prefix.known_key() != Some(ApiKey::SaslAuthenticate) || !accepted {
            shared.metrics.reauth_failure();
            let reason = format!(
                "{} during re-authentication (only SaslAuthenticate may follow SaslHandshake)",
                crate::sasl::api_name(prefix.api_key, prefix.known_key())
            );
            return match crate::error_response::error_response(prefix, frame, ILLEGAL_SASL_STATE) {
                Some(bytes) => Intercept::AnswerAndClose(bytes, reason),
                None => Intercept::Close(reason),
            };
        }
        let req: SaslAuthenticateRequest =
            match decode_request_header(ApiKey::SaslAuthenticate, version, frame)
                .map_err(|e| e.to_string())
                .and_then(|(_, body)| {
                    decode_body(ApiKey::SaslAuthenticate, version, body).map_err(|e| e.to_string())
                }) {
                Ok(r) => r,
                Err(e) => return Intercept::Close(format!("malformed re-authentication: {e}")),
            };
        let (exchange, step) = match run_step(exchange, req.auth_bytes).await {
            Ok(done) => done,
            Err(e) => return Intercept::Close(e.to_string()),
        };
        let respond = |resp: SaslAuthenticateResponse| {
            encode_response(
                ApiKey::SaslAuthenticate,
                version,
                prefix.correlation_id,
                &resp,
            )
            .map_err(|e| e.to_string())
        };
        let refuse = |message: String, reason: String| {
            shared.metrics.reauth_failure();
            match respond(
                SaslAuthenticateResponse::default()
                    .with_error_code(SASL_AUTHENTICATION_FAILED)
                    .with_error_message(Some(StrBytes::from_string(message))),
            ) {
                Ok(bytes) => Intercept::AnswerAndClose(bytes, reason),
                Err(e) => Intercept::Close(e),
            }
        };
        match step {
            SaslStep::Continue(challenge) => {
                self.exchange = Some(exchange);
                match respond(SaslAuthenticateResponse::default().with_auth_bytes(challenge.into()))
                {
                    Ok(bytes) => Intercept::Answer(bytes),
                    Err(e) => Intercept::Close(e),
                }
            }
            SaslStep::Done {
                response,
                principal,
            } => {
                let expected = self
                    .login
                    .as_ref()
                    .map(|l| l.principal.clone())
                    .unwrap_or_default();
                if principal != expected {
                    return refuse(
                        "Cannot change principals during re-authentication".into(),
                        format!(
                            "re-authentication as {} on a connection of {expected}",
                            log_safe::log_safe(&principal)
                        ),
                    );
                }
                self.expires_at = Some(Instant::now() + self.lifetime);
                if let (Some((seen, fingerprint)), Some(a), Some(l)) = (
                    self.revoke.as_mut(),
                    shared.config.sasl.authenticator.as_ref(),
                    self.login.as_ref(),
                ) {
                    *seen = a.generation();
                    *fingerprint = a.fingerprint(user_of(&l.principal), &l.mechanism);
                }
                shared.metrics.reauth_success();
                tracing::debug!(target: "kgate::auth", %principal, "re-authenticated");
                let lifetime_ms = if version >= 1 {
                    shared.config.sasl.session_lifetime_ms()
                } else {
                    0
                };
                match respond(
                    SaslAuthenticateResponse::default()
                        .with_auth_bytes(response.into())
                        .with_session_lifetime_ms(lifetime_ms),
                ) {
                    Ok(bytes) => Intercept::Answer(bytes),
                    Err(e) => Intercept::Close(e),
                }
            }
            SaslStep::Failed {
                message, reason, ..
            } => {
                tokio::time::sleep(shared.config.sasl.failure_delay).await;
                refuse(
                    message,
                    format!(
                        "re-authentication failed: {}",
                        reason
                            .as_deref()
                            .map_or("refused".into(), log_safe::log_safe)
                    ),
                )
            }
        }
    }
}
