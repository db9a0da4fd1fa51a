//! SASL/PLAIN (RFC 4616) as Kafka runs it, checked against the stored SCRAM credentials.
//!
//! # Format
//! ```text
//! [authzid] NUL username NUL password        (UTF-8)
//! ```
//! Exactly three NUL-separated fields; username and password non-empty; the authzid, checked
//! after the password, empty or equal to the username. The server answers success with an
//! empty token. Error texts are Kafka's, verbatim; an unknown user and a wrong password give
//! the same one.
//!
//! # Cost: run it on a blocking thread
//! kgate keeps no passwords, so checking one means re-deriving the SCRAM key with PBKDF2 at
//! the credential's salt and iteration count: ≈1 ms (SHA-256 × 4096) up to ≈20 ms (SHA-512 ×
//! 16384) of CPU. That must not run on an async executor thread. The proxy calls it like this:
//!
//! ```ignore
//! let store = credentials.snapshot();          // Arc<CredentialStore>
//! let token = Zeroizing::new(auth_bytes.to_vec());
//! let outcome = tokio::task::spawn_blocking(move || kgate_auth::plain::authenticate(&store, &token))
//!     .await?;                                 // Result<String, AuthError>
//! ```
//!
//! For an unknown user the same PBKDF2 work is done with the mechanism and iteration count a
//! stored user has ([`CredentialStore::plain_decoy`]: the most common in the store), so the
//! answer takes about as long as for a wrong password.

use crate::{AuthError, CredentialStore, FailureReason};

/// The token's three fields.
struct PlainToken<'a> {
    authzid: &'a [u8],
    username: &'a [u8],
    password: &'a [u8],
}

/// Checks one PLAIN token and returns the authenticated username (the principal is
/// `User:<username>`). The server's reply on success is an empty token.
///
/// Runs PBKDF2: call it from a blocking thread (see the module docs).
///
/// # Errors
/// In Kafka's order: [`AuthError::PlainTokenCount`], [`AuthError::UsernameNotSpecified`],
/// [`AuthError::PasswordNotSpecified`], [`AuthError::InvalidUsernameOrPassword`] (unknown
/// user or wrong password alike), then [`AuthError::AuthorizationIdMismatch`].
pub fn authenticate(store: &CredentialStore, token: &[u8]) -> Result<String, AuthError> {
    let fields = parse(token)?;
    let invalid = |reason| AuthError::InvalidUsernameOrPassword { reason };
    let username = match std::str::from_utf8(fields.username) {
        Ok(name) => name,
        Err(_) => {
            burn_dummy_pbkdf2(store, fields.password);
            return Err(invalid(FailureReason::UnknownUser));
        }
    };
    match store.verify_password(username, fields.password) {
        Some(true) => {}
        Some(false) => return Err(invalid(FailureReason::WrongPassword)),
        None => {
            burn_dummy_pbkdf2(store, fields.password);
            return Err(invalid(FailureReason::UnknownUser));
        }
    }
    if !fields.authzid.is_empty() && fields.authzid != fields.username {
        return Err(AuthError::AuthorizationIdMismatch);
    }
    Ok(username.to_owned())
}

/// Splits and checks the token's shape without touching credentials (cheap).
fn parse(token: &[u8]) -> Result<PlainToken<'_>, AuthError> {
    // Kafka stops counting at 4 fields: "expected 3 tokens, got 4" for any more.
    let parts: Vec<&[u8]> = token.splitn(4, |&b| b == 0).collect();
    let [authzid, username, password] = parts[..] else {
        return Err(AuthError::PlainTokenCount(parts.len()));
    };
    if username.is_empty() {
        return Err(AuthError::UsernameNotSpecified);
    }
    if password.is_empty() {
        return Err(AuthError::PasswordNotSpecified);
    }
    Ok(PlainToken {
        authzid,
        username,
        password,
    })
}

/// Spends the CPU of a real check (the PBKDF2 of a typical stored user, then the same key
/// derivations), so response time does not reveal whether a user exists.
fn burn_dummy_pbkdf2(store: &CredentialStore, password: &[u8]) {
    let (mechanism, iterations) = store.plain_decoy();
    let salted =
        crate::crypto::salted_password(mechanism, password, b"kgate-unknown-user", iterations);
    let client_key = crate::crypto::client_key(mechanism, &salted);
    let _ = std::hint::black_box(crate::crypto::stored_key(mechanism, &client_key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mechanism, DEFAULT_ITERATIONS};

    fn store() -> CredentialStore {
        let mut store = CredentialStore::new();
        store
            .add("alice", Mechanism::ScramSha512, b"alice-secret", 4096)
            .unwrap();
        store
            .add("bob", Mechanism::ScramSha256, b"bob-secret", 8192)
            .unwrap();
        store
    }

    #[test]
    fn accepts_valid_password_for_either_mechanism() {
        let s = store();
        assert_eq!(authenticate(&s, b"\0alice\0alice-secret").unwrap(), "alice");
        assert_eq!(authenticate(&s, b"\0bob\0bob-secret").unwrap(), "bob");
    }

    #[test]
    fn accepts_authzid_equal_to_username() {
        assert_eq!(
            authenticate(&store(), b"alice\0alice\0alice-secret").unwrap(),
            "alice"
        );
    }

    #[test]
    fn rejects_authzid_different_from_username() {
        let err = authenticate(&store(), b"bob\0alice\0alice-secret").unwrap_err();
        assert_eq!(err, AuthError::AuthorizationIdMismatch);
        assert_eq!(
            err.to_string(),
            "Authentication failed: Client requested an authorization id that is different \
             from username"
        );
    }

    #[test]
    fn authzid_is_checked_after_the_password() {
        let err = authenticate(&store(), b"bob\0alice\0wrong").unwrap_err();
        assert!(matches!(err, AuthError::InvalidUsernameOrPassword { .. }));
    }

    #[test]
    fn unknown_user_and_wrong_password_read_the_same() {
        let s = store();
        let unknown = authenticate(&s, b"\0carol\0alice-secret").unwrap_err();
        let wrong = authenticate(&s, b"\0alice\0bob-secret").unwrap_err();
        assert_eq!(unknown.to_string(), wrong.to_string());
        assert_eq!(
            wrong.to_string(),
            "Authentication failed: Invalid username or password"
        );
        assert_eq!(unknown.reason(), Some(FailureReason::UnknownUser));
        assert_eq!(wrong.reason(), Some(FailureReason::WrongPassword));
        assert_eq!(wrong.kafka_error_code(), 58);
    }

    #[test]
    fn the_decoy_work_follows_what_stored_users_have() {
        assert_eq!(
            CredentialStore::new().plain_decoy(),
            (Mechanism::ScramSha256, DEFAULT_ITERATIONS)
        );
        let mut s = CredentialStore::new();
        let cred = |m, i| crate::ScramCredential::from_password(m, b"pw", i).unwrap();
        let strong = cred(Mechanism::ScramSha512, 16384);
        s.insert("a", Mechanism::ScramSha512, strong.clone())
            .unwrap();
        s.insert("b", Mechanism::ScramSha512, strong).unwrap();
        s.insert(
            "c",
            Mechanism::ScramSha256,
            cred(Mechanism::ScramSha256, 4096),
        )
        .unwrap();
        assert_eq!(s.plain_decoy(), (Mechanism::ScramSha512, 16384));
        // A change of users recomputes it; a tie keeps the first shape.
        s.remove("a").unwrap();
        assert_eq!(s.plain_decoy(), (Mechanism::ScramSha256, 4096));
        // A user with both mechanisms is checked (and counted) with SCRAM-SHA-256.
        s.insert(
            "b",
            Mechanism::ScramSha256,
            cred(Mechanism::ScramSha256, 8192),
        )
        .unwrap();
        assert_eq!(s.plain_decoy(), (Mechanism::ScramSha256, 4096));
        s.remove("c").unwrap();
        assert_eq!(s.plain_decoy(), (Mechanism::ScramSha256, 8192));
    }

    #[test]
    fn counts_tokens_like_kafka() {
        let s = store();
        for (token, n) in [
            (&b""[..], 1),
            (b"alice", 1),
            (b"\0alice", 2),
            (b"\0alice\0pw\0", 4),
            (b"\0a\0b\0c\0d\0e", 4),
        ] {
            let err = authenticate(&s, token).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Invalid SASL/PLAIN response: expected 3 tokens, got {n}")
            );
        }
    }

    #[test]
    fn rejects_empty_username_and_password() {
        let s = store();
        assert_eq!(
            authenticate(&s, b"\0\0pw").unwrap_err().to_string(),
            "Authentication failed: username not specified"
        );
        assert_eq!(
            authenticate(&s, b"\0alice\0").unwrap_err().to_string(),
            "Authentication failed: password not specified"
        );
    }

    #[test]
    fn invalid_utf8_username_is_an_unknown_user() {
        let err = authenticate(&store(), b"\0\xff\xfe\0pw").unwrap_err();
        assert_eq!(err.reason(), Some(FailureReason::UnknownUser));
    }
}
