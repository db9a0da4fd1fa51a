//! The SCRAM key derivations of RFC 5802 §3 on the RustCrypto primitives, for either hash.
//!
//! Everything here is a plain function of bytes so that the SCRAM server, PLAIN verification,
//! the credential store and tests share one definition of each key.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::Mechanism;

/// HMAC(key, data) with the mechanism's hash.
pub fn hmac(mechanism: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC is defined for keys of any length (longer ones are hashed first), so creating it
    // cannot fail; `expect` documents that invariant, no input can reach the panic.
    match mechanism {
        Mechanism::ScramSha256 => {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Mechanism::ScramSha512 => {
            let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// H(data) with the mechanism's hash.
pub fn hash(mechanism: Mechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        Mechanism::ScramSha256 => Sha256::digest(data).to_vec(),
        Mechanism::ScramSha512 => Sha512::digest(data).to_vec(),
    }
}

/// SaltedPassword = Hi(password, salt, iterations), i.e. PBKDF2-HMAC with the mechanism's hash.
///
/// The password is used as raw UTF-8 bytes with no SASLprep, as Kafka does. This is the
/// expensive step (≈1 ms for SHA-256 × 4096, ≈20 ms for SHA-512 × 16384): never run it on an
/// async executor thread; see [`crate::plain`].
pub fn salted_password(
    mechanism: Mechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; mechanism.key_len()]);
    match mechanism {
        Mechanism::ScramSha256 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        }
        Mechanism::ScramSha512 => {
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
        }
    }
    out
}

/// ClientKey = HMAC(SaltedPassword, "Client Key").
pub fn client_key(mechanism: Mechanism, salted_password: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(hmac(mechanism, salted_password, b"Client Key"))
}

/// StoredKey = H(ClientKey): what the server keeps to check a client proof.
pub fn stored_key(mechanism: Mechanism, client_key: &[u8]) -> Vec<u8> {
    hash(mechanism, client_key)
}

/// ServerKey = HMAC(SaltedPassword, "Server Key"): what the server keeps to prove itself.
pub fn server_key(mechanism: Mechanism, salted_password: &[u8]) -> Vec<u8> {
    hmac(mechanism, salted_password, b"Server Key")
}

/// Fills `buf` from the operating system's random source (the OsRng of the rand crates).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

/// 32 random bytes drawn once per process: the key of [`decoy`] values.
///
/// Kept in memory only, so a restart changes every decoy (see [`decoy`]).
fn process_secret() -> Result<&'static [u8; 32], getrandom::Error> {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    if let Some(secret) = SECRET.get() {
        return Ok(secret);
    }
    let mut fresh = [0u8; 32];
    fill_random(&mut fresh)?;
    // Two threads may race here; `get_or_init` keeps the first value for everyone.
    Ok(SECRET.get_or_init(|| fresh))
}

/// A value that looks random but is fixed for one `purpose` and `name` within this process:
/// HMAC(process secret, purpose ‖ 0 ‖ name) with the mechanism's hash, `key_len` bytes.
///
/// The SCRAM server answers a user it does not know with a salt and keys made from this
/// (RFC 5802 §5.1: "the server SHOULD ... fake a salt"), so an unknown user fails at the same
/// step, with the same message, as a wrong password, and asking twice gives the same salt.
/// The secret is drawn at start and never stored: after a restart the decoy salt of an
/// unknown name changes while a real user's stays, which only someone watching across the
/// restart can notice.
///
/// # Errors
/// The operating system's random source failed the first time it was needed.
pub(crate) fn decoy(
    mechanism: Mechanism,
    purpose: &str,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, getrandom::Error> {
    let secret = process_secret()?;
    let mut data = Vec::with_capacity(purpose.len() + 1 + name.len());
    data.extend_from_slice(purpose.as_bytes());
    data.push(0);
    data.extend_from_slice(name.as_bytes());
    Ok(Zeroizing::new(hmac(mechanism, secret, &data)))
}

/// The decoy salt of `name` for `mechanism`: shaped like the salts kgate makes (the UTF-8 of
/// a base-36 number of 130 bits, as Kafka makes them), so it cannot be told apart by form.
///
/// # Errors
/// As [`decoy`].
pub(crate) fn decoy_salt(mechanism: Mechanism, name: &str) -> Result<Vec<u8>, getrandom::Error> {
    let bits = decoy(mechanism, &format!("salt {}", mechanism.name()), name)?;
    // Both hashes give at least 32 bytes; take 17 and keep 130 bits, as random_base36_130.
    let mut bytes = Zeroizing::new([0u8; 17]);
    for (out, b) in bytes.iter_mut().zip(bits.iter()) {
        *out = *b;
    }
    bytes[0] &= 0b11;
    Ok(base36(bytes.as_ref()).into_bytes())
}

/// A random base-36 string (digits and lower-case letters) made from 130 random bits, exactly
/// like Java's `new BigInteger(130, random).toString(36)` that Kafka uses for server nonces and
/// salts: 25 or 26 characters, rarely fewer.
pub(crate) fn random_base36_130() -> Result<String, getrandom::Error> {
    // 17 bytes = 136 bits; keep the low 2 bits of the top byte to get exactly 130.
    let mut bytes = Zeroizing::new([0u8; 17]);
    fill_random(bytes.as_mut())?;
    bytes[0] &= 0b11;
    Ok(base36(bytes.as_ref()))
}

/// Big-endian unsigned integer to base 36 by repeated long division; "0" for zero.
fn base36(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut number: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            // acc < 36 * 256, so the quotient fits a byte.
            *byte = (acc / 36) as u8;
            remainder = acc % 36;
        }
        digits.push(DIGITS[remainder as usize]);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    // Only ASCII digits and letters were pushed.
    digits.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_known_values() {
        assert_eq!(base36(&[0]), "0");
        assert_eq!(base36(&[35]), "z");
        assert_eq!(base36(&[36]), "10");
        assert_eq!(base36(&[0x01, 0x00]), "74");
        assert_eq!(base36(&[0xff; 8]), "3w5e11264sgsf");
    }

    #[test]
    fn random_base36_has_kafka_length_and_alphabet() {
        for _ in 0..50 {
            let s = random_base36_130().unwrap();
            assert!(s.len() <= 26 && s.len() >= 20, "{s}");
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        }
    }

    #[test]
    fn pbkdf2_matches_rfc_7677_salted_password() {
        // RFC 7677 §3: user/pencil, salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
        use base64::Engine as _;
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        let sp = salted_password(Mechanism::ScramSha256, b"pencil", &salt, 4096);
        assert_eq!(sp.len(), 32);
    }
}
