//! The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka runs it.
//!
//! # Exchange
//! ```text
//! client-first   n,[a=<authzid>],n=<user>,r=<client nonce>[,<ext>=<value>…]
//! server-first   r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//! client-final   c=<base64 gs2 header>,r=<nonce>[,<ext>…],p=<base64 proof>
//! server-final   v=<base64 ServerSignature>
//! ```
//! [`ScramServer::step`] takes each client message and returns the server's answer. The
//! Kafka framing (SaslHandshake v0 raw tokens, or SaslAuthenticate `auth_bytes`) is the
//! proxy's business; this module only sees the mechanism bytes.
//!
//! # Kafka's rules, kept here
//! * The gs2 header must be `n` (no channel binding): `y` and `p=` fail.
//! * An authzid (`a=`) must equal the username, else the one specific error
//!   [`AuthError::AuthorizationIdMismatch`]; every other failure gives the generic
//!   [`AuthError::ScramFailed`] message, so a client cannot tell an unknown user from a
//!   wrong password.
//! * Names use RFC 5802 escaping: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
//! * Extensions after the nonce are ignored, except `tokenauth=true` (a delegation token
//!   login), which fails cleanly: kgate has no delegation tokens.
//! * An unknown user, or a user without a credential for this mechanism, is answered with a
//!   decoy credential (RFC 5802 §5.1): a salt and keys derived from a per-process secret and
//!   the name, with the iteration count most stored credentials of that mechanism use
//!   ([`crate::DEFAULT_ITERATIONS`] when there are none). The exchange then
//!   fails at client-final with the same message as a wrong password, and the same name
//!   always gets the same salt, so neither the step nor the salt tells whether a user exists.
//!   Kafka, unlike kgate, fails an unknown user at client-first. A restart draws a new
//!   secret, so decoy salts change across restarts while real ones do not.
//! * Credentials with iterations outside 4096..=16384 are refused.
//! * client-final's nonce must *end with* the combined nonce (Kafka's check), and the
//!   channel binding `c=` must be the Base64 of the client's own gs2 header.
//! * The proof check is H(ClientSignature XOR ClientProof) == StoredKey, in constant time.
//! * AuthMessage is built from the raw bytes the client sent (RFC style).
//!
//! The server never runs PBKDF2: one exchange costs a few HMACs (≈10 µs), so it can run on
//! the async executor directly.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::credential::check_iterations;
use crate::{crypto, AuthError, CredentialStore, FailureReason, Mechanism, ScramCredential};

/// What the server says after one client message.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the client and wait for its next message.
    Continue(Vec<u8>),
    /// Authentication succeeded: send `response` (server-final) to the client; the connection
    /// now belongs to `principal`.
    Done {
        /// The server-final message `v=…`.
        response: Vec<u8>,
        /// The authenticated username; Kafka's principal is `User:<principal>`.
        principal: String,
    },
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The messages hold no secret (salt and signature are public), but printing them as
        // text keeps test failures readable.
        match self {
            Step::Continue(bytes) => f
                .debug_tuple("Continue")
                .field(&String::from_utf8_lossy(bytes))
                .finish(),
            Step::Done {
                response,
                principal,
            } => f
                .debug_struct("Done")
                .field("response", &String::from_utf8_lossy(response))
                .field("principal", principal)
                .finish(),
        }
    }
}

/// One SCRAM exchange on the server side: a state machine fed with client messages.
///
/// Create one per authentication attempt with [`ScramServer::new`], then call
/// [`ScramServer::step`] with each client message: the first returns [`Step::Continue`] with
/// server-first, the second [`Step::Done`] with server-final. Any error ends the exchange:
/// the proxy sends the error's message and closes the connection; later calls fail too.
///
/// The server holds the credential store snapshot only until client-first has been
/// answered, so a reload during the exchange does not change the salt or keys in use.
pub struct ScramServer {
    /// Which hash, and which credential of the user, this exchange uses.
    mechanism: Mechanism,
    /// The username the client claimed, kept for the connection's log line.
    username: Option<String>,
    /// Where the exchange is.
    state: State,
    /// Set only by tests, to replay a published exchange.
    #[cfg(test)]
    fixed_server_nonce: Option<String>,
}

/// The exchange's progress; named after what the server expects next.
enum State {
    /// Waiting for client-first; the store is needed to find the user's credential.
    ExpectClientFirst { store: Arc<CredentialStore> },
    /// server-first was sent; everything client-final is checked against.
    ExpectClientFinal(Box<Pending>),
    /// Authentication succeeded.
    Authenticated,
    /// Authentication failed; every later step fails.
    Failed,
}

/// What the server remembers between server-first and client-final.
struct Pending {
    credential: ScramCredential,
    /// Set when `credential` is a decoy: why the exchange fails at client-final, whatever
    /// the proof.
    decoy: Option<FailureReason>,
    /// The authenticated name if the proof checks out.
    username: String,
    /// `n,,` or `n,a=…,`: client-final's `c=` must be its Base64.
    gs2_header: String,
    /// client-first without the gs2 header, verbatim: the start of AuthMessage.
    client_first_bare: String,
    /// server-first, verbatim.
    server_first: String,
    /// Client nonce + server nonce.
    combined_nonce: String,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::ExpectClientFirst { .. } => "ExpectClientFirst",
            State::ExpectClientFinal(_) => "ExpectClientFinal",
            State::Authenticated => "Authenticated",
            State::Failed => "Failed",
        };
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("state", &state)
            .finish()
    }
}

impl ScramServer {
    /// Starts an exchange for `mechanism`, looking users up in `store` (a snapshot, e.g.
    /// [`crate::SharedCredentials::snapshot`]).
    pub fn new(mechanism: Mechanism, store: Arc<CredentialStore>) -> Self {
        ScramServer {
            mechanism,
            username: None,
            state: State::ExpectClientFirst { store },
            #[cfg(test)]
            fixed_server_nonce: None,
        }
    }

    /// A server whose nonce is fixed, to replay published test vectors. Tests only: a fixed
    /// nonce makes replay attacks possible.
    #[cfg(test)]
    pub(crate) fn with_fixed_nonce(
        mechanism: Mechanism,
        store: Arc<CredentialStore>,
        nonce: &str,
    ) -> Self {
        let mut server = Self::new(mechanism, store);
        server.fixed_server_nonce = Some(nonce.to_owned());
        server
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The username the client claimed in client-first, once parsed (even if the exchange
    /// then failed): for logging failed attempts. It is not authenticated until
    /// [`Step::Done`].
    pub fn attempted_username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether the exchange has ended, successfully or not.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Authenticated | State::Failed)
    }

    /// Feeds one client message and returns the server's answer.
    ///
    /// # Errors
    /// [`AuthError::AuthorizationIdMismatch`] when `a=` differs from the username, otherwise
    /// [`AuthError::ScramFailed`] with the cause in its `reason`: malformed input of any kind,
    /// unknown user, no credential for this mechanism, `tokenauth=true`, nonce mismatch,
    /// wrong proof, or a call after the exchange ended. Never panics, whatever the bytes.
    pub fn step(&mut self, client_message: &[u8]) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let result = match state {
            State::ExpectClientFirst { store } => self.client_first(&store, client_message),
            State::ExpectClientFinal(pending) => self.client_final(*pending, client_message),
            State::Authenticated | State::Failed => {
                Err(Failure::Generic(FailureReason::ExchangeFinished))
            }
        };
        match result {
            Ok((step, next)) => {
                self.state = next;
                Ok(step)
            }
            Err(Failure::Generic(reason)) => Err(AuthError::ScramFailed {
                mechanism: self.mechanism.name(),
                reason,
            }),
            Err(Failure::AuthorizationId) => Err(AuthError::AuthorizationIdMismatch),
        }
    }

    fn client_first(
        &mut self,
        store: &CredentialStore,
        message: &[u8],
    ) -> Result<(Step, State), Failure> {
        let first = ClientFirst::parse(message)?;
        self.username = Some(first.username.clone());
        if first.token_auth {
            return Err(Failure::Generic(FailureReason::DelegationTokenNotSupported));
        }
        let (credential, decoy) = match store.user(&first.username) {
            Some(user) => match user.credential(self.mechanism) {
                Some(credential) => (credential.clone(), None),
                None => (
                    self.decoy_credential(store, &first.username)?,
                    Some(FailureReason::NoCredentialForMechanism),
                ),
            },
            None => (
                self.decoy_credential(store, &first.username)?,
                Some(FailureReason::UnknownUser),
            ),
        };
        if let Some(authzid) = &first.authzid {
            if *authzid != first.username {
                return Err(Failure::AuthorizationId);
            }
        }
        check_iterations(credential.iterations())
            .map_err(|_| Failure::Generic(FailureReason::IterationsOutOfRange))?;

        let server_nonce = self.server_nonce()?;
        let combined_nonce = format!("{}{}", first.nonce, server_nonce);
        let server_first = format!(
            "r={},s={},i={}",
            combined_nonce,
            BASE64.encode(credential.salt()),
            credential.iterations()
        );
        let step = Step::Continue(server_first.clone().into_bytes());
        let pending = Pending {
            credential,
            decoy,
            username: first.username,
            gs2_header: first.gs2_header.to_owned(),
            client_first_bare: first.bare.to_owned(),
            server_first,
            combined_nonce,
        };
        Ok((step, State::ExpectClientFinal(Box::new(pending))))
    }

    fn client_final(&mut self, pending: Pending, message: &[u8]) -> Result<(Step, State), Failure> {
        let last = ClientFinal::parse(message)?;
        let gs2_header = BASE64
            .decode(last.channel_binding)
            .map_err(|_| malformed("c= is not Base64"))?;
        if gs2_header != pending.gs2_header.as_bytes() {
            return Err(malformed("c= is not the client-first gs2 header"));
        }
        if !last.nonce.ends_with(&pending.combined_nonce) {
            return Err(Failure::Generic(FailureReason::NonceMismatch));
        }
        let proof = Zeroizing::new(
            BASE64
                .decode(last.proof)
                .map_err(|_| malformed("p= is not Base64"))?,
        );
        let mechanism = self.mechanism;
        if proof.len() != mechanism.key_len() {
            return Err(malformed("p= has the wrong length"));
        }

        let auth_message = format!(
            "{},{},{}",
            pending.client_first_bare, pending.server_first, last.without_proof
        );
        let credential = &pending.credential;
        let client_signature = Zeroizing::new(crypto::hmac(
            mechanism,
            credential.stored_key(),
            auth_message.as_bytes(),
        ));
        let client_key: Zeroizing<Vec<u8>> = Zeroizing::new(
            client_signature
                .iter()
                .zip(proof.iter())
                .map(|(s, p)| s ^ p)
                .collect(),
        );
        let stored_key = crypto::stored_key(mechanism, &client_key);
        let proof_ok = bool::from(stored_key.ct_eq(credential.stored_key()));
        // A decoy fails here, after the same work as a real credential, whatever the proof.
        if let Some(reason) = pending.decoy {
            return Err(Failure::Generic(reason));
        }
        if !proof_ok {
            return Err(Failure::Generic(FailureReason::WrongPassword));
        }

        let server_signature =
            crypto::hmac(mechanism, credential.server_key(), auth_message.as_bytes());
        let response = format!("v={}", BASE64.encode(server_signature)).into_bytes();
        Ok((
            Step::Done {
                response,
                principal: pending.username,
            },
            State::Authenticated,
        ))
    }

    /// The credential `username` would have if it existed: see [`crypto::decoy`].
    fn decoy_credential(
        &self,
        store: &CredentialStore,
        username: &str,
    ) -> Result<ScramCredential, Failure> {
        let mechanism = self.mechanism;
        let unavailable = |_| Failure::Generic(FailureReason::RandomUnavailable);
        let salt = crypto::decoy_salt(mechanism, username).map_err(unavailable)?;
        let stored_key = crypto::decoy(mechanism, "stored key", username).map_err(unavailable)?;
        let server_key = crypto::decoy(mechanism, "server key", username).map_err(unavailable)?;
        ScramCredential::from_parts(
            mechanism,
            salt,
            stored_key.to_vec(),
            server_key.to_vec(),
            store.usual_iterations(mechanism),
        )
        .map_err(|_| malformed("decoy credential"))
    }

    fn server_nonce(&self) -> Result<String, Failure> {
        #[cfg(test)]
        if let Some(nonce) = &self.fixed_server_nonce {
            return Ok(nonce.clone());
        }
        crypto::random_base36_130().map_err(|_| Failure::Generic(FailureReason::RandomUnavailable))
    }
}

/// Internal failure before it is turned into the client-visible [`AuthError`].
enum Failure {
    Generic(FailureReason),
    AuthorizationId,
}

fn malformed(what: &'static str) -> Failure {
    Failure::Generic(FailureReason::Malformed(what))
}

/// A parsed client-first message; the `&str` fields borrow from the raw message.
struct ClientFirst<'a> {
    /// `n,,` or `n,a=<authzid>,` verbatim.
    gs2_header: &'a str,
    /// The unescaped authzid, if one was given.
    authzid: Option<String>,
    /// The unescaped username.
    username: String,
    nonce: &'a str,
    /// Everything after the gs2 header, verbatim.
    bare: &'a str,
    /// `tokenauth=true` was among the extensions.
    token_auth: bool,
}

impl<'a> ClientFirst<'a> {
    fn parse(message: &'a [u8]) -> Result<Self, Failure> {
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let after_flag = if let Some(rest) = text.strip_prefix("n,") {
            rest
        } else if text.starts_with('y') || text.starts_with('p') {
            return Err(Failure::Generic(FailureReason::UnsupportedChannelBinding));
        } else {
            return Err(malformed("gs2 header must start with n,"));
        };
        let (authzid_field, bare) = after_flag
            .split_once(',')
            .ok_or(malformed("gs2 header has no authzid field"))?;
        // "n," + authzid field + "," — all ASCII delimiters, so the index is a char boundary.
        let gs2_header = text
            .get(..2 + authzid_field.len() + 1)
            .ok_or(malformed("gs2 header"))?;
        let authzid = if authzid_field.is_empty() {
            None
        } else {
            let raw = authzid_field
                .strip_prefix("a=")
                .ok_or(malformed("authzid must be a=<name>"))?;
            Some(unescape_saslname(raw)?)
        };

        let mut fields = bare.split(',');
        let mut field = fields.next().unwrap_or_default();
        if field.starts_with("m=") {
            // RFC 5802: a server that does not support a mandatory extension must fail.
            return Err(malformed("mandatory extension m= is not supported"));
        }
        let raw_name = field
            .strip_prefix("n=")
            .ok_or(malformed("username n= missing"))?;
        let username = unescape_saslname(raw_name)?;
        field = fields.next().ok_or(malformed("nonce r= missing"))?;
        let nonce = field
            .strip_prefix("r=")
            .ok_or(malformed("nonce r= missing"))?;
        check_nonce(nonce)?;
        let mut token_auth = false;
        for extension in fields {
            let (key, value) = extension
                .split_once('=')
                .ok_or(malformed("extension without '='"))?;
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(malformed("extension name"));
            }
            if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
                token_auth = true;
            }
        }
        Ok(ClientFirst {
            gs2_header,
            authzid,
            username,
            nonce,
            bare,
            token_auth,
        })
    }
}

/// A parsed client-final message, borrowing from the raw message.
struct ClientFinal<'a> {
    /// The Base64 text of `c=`.
    channel_binding: &'a str,
    nonce: &'a str,
    /// The Base64 text of `p=`.
    proof: &'a str,
    /// Everything before `,p=`, verbatim: the end of AuthMessage.
    without_proof: &'a str,
}

impl<'a> ClientFinal<'a> {
    fn parse(message: &'a [u8]) -> Result<Self, Failure> {
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(malformed("proof p= missing"))?;
        if proof.is_empty() || proof.contains(',') {
            return Err(malformed("proof p= must be the last field"));
        }
        let mut fields = without_proof.split(',');
        let channel_binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or(malformed("channel binding c= missing"))?;
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(malformed("nonce r= missing"))?;
        check_nonce(nonce)?;
        for extension in fields {
            if !extension.contains('=') {
                return Err(malformed("extension without '='"));
            }
        }
        Ok(ClientFinal {
            channel_binding,
            nonce,
            proof,
            without_proof,
        })
    }
}

/// A nonce is printable ASCII other than `,` (RFC 5802 `printable`), and not empty.
fn check_nonce(nonce: &str) -> Result<(), Failure> {
    if !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        Ok(())
    } else {
        Err(malformed("nonce must be printable ASCII"))
    }
}

/// Undoes RFC 5802 name escaping: `=2C` → `,`, `=3D` → `=`; any other `=` is malformed, and
/// so are an empty name and control characters.
fn unescape_saslname(raw: &str) -> Result<String, Failure> {
    if raw.is_empty() {
        return Err(malformed("empty name"));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if c == '=' {
            if let Some(after) = rest.strip_prefix("=2C") {
                out.push(',');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("=3D") {
                out.push('=');
                rest = after;
            } else {
                return Err(malformed("'=' in a name must be =2C or =3D"));
            }
        } else if c.is_control() {
            return Err(malformed("control character in a name"));
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

/// RFC 5802 name escaping, for clients (and tests): `,` → `=2C`, `=` → `=3D`.
pub fn escape_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests;
