//! One SCRAM credential: what the server keeps instead of a password.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::crypto;
use crate::{Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

/// A salted SCRAM credential (RFC 5802 §3): salt, StoredKey, ServerKey and iteration count.
///
/// This is exactly what Kafka keeps (`UserScramCredentialRecord`, or the ZooKeeper string
/// `salt=…,stored_key=…,server_key=…,iterations=…`), so credentials move between Kafka and
/// kgate unchanged. It is enough to run SCRAM as a server and to check a PLAIN password, but
/// not to log in as the user: the password and the salted password are never kept.
///
/// `Debug` shows only the iteration count and the salt length: the keys are secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// Per-credential random bytes mixed into PBKDF2, sent to the client in server-first.
    salt: Vec<u8>,
    /// H(ClientKey): checks the client's proof without knowing ClientKey.
    stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key"): signs server-final so the client knows we hold it.
    server_key: Vec<u8>,
    /// PBKDF2 rounds, sent in server-first; within [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
    iterations: u32,
}

/// Why a credential (or its Kafka string form) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialFormatError {
    /// The iteration count is outside what Kafka accepts.
    #[error("iterations {0} out of range; Kafka accepts {MIN_ITERATIONS} to {MAX_ITERATIONS}")]
    Iterations(u32),
    /// The salt is empty.
    #[error("the salt is empty")]
    EmptySalt,
    /// A key does not have the hash length of the mechanism.
    #[error("{field} is {actual} bytes long; {mechanism} needs {expected}")]
    KeyLength {
        /// `stored_key`, `server_key` or `salted_password`.
        field: &'static str,
        /// The mechanism whose hash length applies.
        mechanism: Mechanism,
        /// The hash length.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A field is not standard Base64 with padding.
    #[error("{0} is not valid Base64 (standard alphabet, with padding)")]
    Base64(&'static str),
    /// The credential string is not `salt=…,stored_key=…,server_key=…,iterations=…`.
    #[error("expected salt=<base64>,stored_key=<base64>,server_key=<base64>,iterations=<n>: {0}")]
    Syntax(&'static str),
}

impl ScramCredential {
    /// Builds a credential from its parts, checking lengths and the iteration range.
    ///
    /// # Errors
    /// [`CredentialFormatError`] when the salt is empty, a key has the wrong length for
    /// `mechanism`, or `iterations` is outside 4096..=16384.
    pub fn from_parts(
        mechanism: Mechanism,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
        iterations: u32,
    ) -> Result<Self, CredentialFormatError> {
        check_iterations(iterations)?;
        if salt.is_empty() {
            return Err(CredentialFormatError::EmptySalt);
        }
        for (field, key) in [("stored_key", &stored_key), ("server_key", &server_key)] {
            if key.len() != mechanism.key_len() {
                return Err(CredentialFormatError::KeyLength {
                    field,
                    mechanism,
                    expected: mechanism.key_len(),
                    actual: key.len(),
                });
            }
        }
        Ok(ScramCredential {
            salt,
            stored_key,
            server_key,
            iterations,
        })
    }

    /// Derives a credential from a password and a salt (runs PBKDF2: CPU-heavy).
    ///
    /// # Errors
    /// [`CredentialFormatError`] for an empty salt or iterations outside 4096..=16384.
    pub fn from_password_and_salt(
        mechanism: Mechanism,
        password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Result<Self, CredentialFormatError> {
        check_iterations(iterations)?;
        let salted = crypto::salted_password(mechanism, password, &salt, iterations);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// Derives a credential from a password with a fresh random salt (runs PBKDF2).
    ///
    /// The salt is chosen as Kafka chooses it: the UTF-8 bytes of a random base-36 string made
    /// from 130 bits of the operating system's random source (25 or 26 ASCII characters).
    /// Keeping Kafka's form means a credential exported from kgate looks like one made by
    /// `kafka-configs`, and clients that print the salt show readable text.
    ///
    /// # Errors
    /// [`crate::StoreError::Random`] when the OS random source fails, or a format error for
    /// iterations outside 4096..=16384.
    pub fn from_password(
        mechanism: Mechanism,
        password: &[u8],
        iterations: u32,
    ) -> Result<Self, crate::StoreError> {
        let salt = crypto::random_base36_130().map_err(crate::StoreError::Random)?;
        Ok(Self::from_password_and_salt(
            mechanism,
            password,
            salt.into_bytes(),
            iterations,
        )?)
    }

    /// Derives StoredKey and ServerKey from a salted password, as Kafka's controller does
    /// with what AlterUserScramCredentials carries (the client ran PBKDF2).
    ///
    /// # Errors
    /// [`CredentialFormatError`] for an empty salt, a salted password that is not the hash
    /// length, or iterations outside 4096..=16384.
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> Result<Self, CredentialFormatError> {
        if salted_password.len() != mechanism.key_len() {
            return Err(CredentialFormatError::KeyLength {
                field: "salted_password",
                mechanism,
                expected: mechanism.key_len(),
                actual: salted_password.len(),
            });
        }
        let client_key = crypto::client_key(mechanism, salted_password);
        let stored_key = crypto::stored_key(mechanism, &client_key);
        let server_key = crypto::server_key(mechanism, salted_password);
        Self::from_parts(mechanism, salt, stored_key, server_key, iterations)
    }

    /// Parses Kafka's credential string `salt=<b64>,stored_key=<b64>,server_key=<b64>,
    /// iterations=<n>` (ScramCredentialUtils): exactly these four keys, standard Base64.
    ///
    /// # Errors
    /// [`CredentialFormatError`] naming what is wrong.
    pub fn from_kafka_string(
        mechanism: Mechanism,
        text: &str,
    ) -> Result<Self, CredentialFormatError> {
        let mut salt = None;
        let mut stored_key = None;
        let mut server_key = None;
        let mut iterations = None;
        for pair in text.trim().split(',') {
            let (key, value) = pair
                .split_once('=')
                .ok_or(CredentialFormatError::Syntax("a field has no '='"))?;
            let slot = match key {
                "salt" => &mut salt,
                "stored_key" => &mut stored_key,
                "server_key" => &mut server_key,
                "iterations" => &mut iterations,
                _ => return Err(CredentialFormatError::Syntax("unknown key")),
            };
            if slot.replace(value).is_some() {
                return Err(CredentialFormatError::Syntax("a key appears twice"));
            }
        }
        let (Some(salt), Some(stored_key), Some(server_key), Some(iterations)) =
            (salt, stored_key, server_key, iterations)
        else {
            return Err(CredentialFormatError::Syntax("a key is missing"));
        };
        let iterations = iterations
            .parse::<u32>()
            .map_err(|_| CredentialFormatError::Syntax("iterations is not a number"))?;
        Self::from_parts(
            mechanism,
            decode_b64("salt", salt)?,
            decode_b64("stored_key", stored_key)?,
            decode_b64("server_key", server_key)?,
            iterations,
        )
    }

    /// Kafka's credential string for this credential (it contains no password, but StoredKey
    /// and ServerKey are secrets: whoever holds them can impersonate the server).
    pub fn to_kafka_string(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key),
            self.iterations
        )
    }

    /// The salt sent to clients in server-first.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// H(ClientKey).
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// HMAC(SaltedPassword, "Server Key").
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The same credential claiming another iteration count, bypassing the range check:
    /// only to test that the server refuses such credentials.
    #[cfg(test)]
    pub(crate) fn with_iterations_unchecked(mut self, iterations: u32) -> Self {
        self.iterations = iterations;
        self
    }

    /// Whether `password` is this credential's password: runs PBKDF2 (CPU-heavy, up to
    /// ≈20 ms), then compares StoredKey in constant time.
    pub fn verify_password(&self, mechanism: Mechanism, password: &[u8]) -> bool {
        let salted = crypto::salted_password(mechanism, password, &self.salt, self.iterations);
        let client_key = crypto::client_key(mechanism, &salted);
        let stored_key = crypto::stored_key(mechanism, &client_key);
        stored_key.ct_eq(&self.stored_key).into()
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt", &format_args!("<{} bytes>", self.salt.len()))
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .field("iterations", &self.iterations)
            .finish()
    }
}

impl Drop for ScramCredential {
    fn drop(&mut self) {
        self.stored_key.zeroize();
        self.server_key.zeroize();
    }
}

/// Refuses iteration counts outside Kafka's accepted range.
pub(crate) fn check_iterations(iterations: u32) -> Result<(), CredentialFormatError> {
    if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        Ok(())
    } else {
        Err(CredentialFormatError::Iterations(iterations))
    }
}

fn decode_b64(field: &'static str, value: &str) -> Result<Vec<u8>, CredentialFormatError> {
    BASE64
        .decode(value)
        .map_err(|_| CredentialFormatError::Base64(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_string_round_trips() {
        let c = ScramCredential::from_password_and_salt(
            Mechanism::ScramSha512,
            b"secret",
            b"salty".to_vec(),
            4096,
        )
        .unwrap();
        let s = c.to_kafka_string();
        assert!(s.starts_with("salt=c2FsdHk=,stored_key="));
        assert!(s.ends_with(",iterations=4096"));
        let back = ScramCredential::from_kafka_string(Mechanism::ScramSha512, &s).unwrap();
        assert_eq!(back, c);
        // The wrong mechanism has the wrong key length.
        assert!(matches!(
            ScramCredential::from_kafka_string(Mechanism::ScramSha256, &s),
            Err(CredentialFormatError::KeyLength { .. })
        ));
    }

    #[test]
    fn kafka_string_errors_are_specific() {
        let m = Mechanism::ScramSha256;
        for bad in [
            "",
            "salt=YQ==",
            "salt=YQ==,stored_key=,server_key=,iterations=4096,extra=1",
            "salt=YQ==,salt=YQ==,server_key=,iterations=4096",
            "salt=!!,stored_key=YQ==,server_key=YQ==,iterations=4096",
            "salt=YQ==,stored_key=YQ==,server_key=YQ==,iterations=x",
            "salt=YQ==,stored_key=YQ==,server_key=YQ==,iterations=4096",
        ] {
            assert!(ScramCredential::from_kafka_string(m, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iterations_outside_kafka_range_are_refused() {
        for it in [0, 4095, 16385] {
            assert_eq!(
                ScramCredential::from_password_and_salt(
                    Mechanism::ScramSha256,
                    b"p",
                    b"s".to_vec(),
                    it
                ),
                Err(CredentialFormatError::Iterations(it))
            );
        }
    }

    #[test]
    fn debug_hides_keys() {
        let c = ScramCredential::from_password(Mechanism::ScramSha256, b"pw", 4096).unwrap();
        let text = format!("{c:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains(&BASE64.encode(c.stored_key())));
        assert!(c.verify_password(Mechanism::ScramSha256, b"pw"));
        assert!(!c.verify_password(Mechanism::ScramSha256, b"pW"));
    }
}
