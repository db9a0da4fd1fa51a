//! The key the gateways share to sign state records (`state_key_file`).
//!
//! The upstream cluster has no security of its own: whoever reaches it directly can write to
//! the state topic. Every record therefore carries an HMAC-SHA256 made with a key only the
//! gateways hold, and a record whose MAC does not verify is ignored. The file holds 32 random
//! bytes in Base64 on one line, mode 0600 (a looser file is refused, as ssh refuses a loose
//! private key).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes in a state key.
pub const KEY_LEN: usize = 32;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Missing or unreadable.
    #[error("cannot read the state key file {}: {source}; make one with `kgate state key --out {}` and copy it to every gateway", path.display(), path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Readable by group or others.
    #[error("the state key file {} is readable by others (mode {mode:o}): run `chmod 600 {}`", path.display(), path.display())]
    Loose {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not 32 bytes of Base64.
    #[error("the state key file {}:1 holds {found}; a state key is {KEY_LEN} random bytes in Base64: make one with `kgate state key --out FILE`", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it holds instead.
        found: String,
    },
    /// Cannot be written.
    #[error("cannot write the state key file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// No randomness.
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// The shared signing key. Never printed.
#[derive(Clone)]
pub struct StateKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

impl StateKey {
    /// A key from its bytes (tests, benchmarks).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        StateKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A new random key.
    ///
    /// # Errors
    /// The random source failed.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Reads a key file, refusing one others may read or one that is not 32 bytes.
    ///
    /// # Errors
    /// [`KeyError`] naming the file and the fix.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let read = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Loose {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read)?);
        let malformed = |found: String| KeyError::Malformed {
            path: path.to_owned(),
            found,
        };
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| malformed("text that is not Base64".into()))?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| malformed(format!("{} bytes", decoded.len())))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Writes the key to a new file, mode 0600; an existing file is never overwritten (it
    /// may be the key every gateway uses).
    ///
    /// # Errors
    /// The file exists or cannot be written.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let write = |source| KeyError::Write {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write)?;
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.bytes));
        writeln!(file, "{}", text.as_str()).map_err(write)
    }

    fn hmac(&self, topic: &str, key: &[u8], value: Option<&[u8]>) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        // Lengths first, so that no two (topic, key, value) share an input.
        mac.update(b"kgate-state-v1");
        for part in [Some(topic.as_bytes()), Some(key), value] {
            match part {
                Some(p) => {
                    mac.update(&[1]);
                    mac.update(&(p.len() as u64).to_be_bytes());
                    mac.update(p);
                }
                None => mac.update(&[0]),
            }
        }
        mac
    }

    /// The MAC of a record of `topic` (`value` `None` for a tombstone).
    pub fn sign(&self, topic: &str, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
        self.hmac(topic, key, value)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `mac` is the record's MAC, compared in constant time.
    pub fn verify(&self, topic: &str, key: &[u8], value: Option<&[u8]>, mac: &[u8]) -> bool {
        self.hmac(topic, key, value).verify_slice(mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_loads_and_signs_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        let key = StateKey::generate().unwrap();
        key.write_new(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = StateKey::load(&path).unwrap();
        let mac = key.sign("t", b"k", Some(b"v"));
        assert!(back.verify("t", b"k", Some(b"v"), &mac));
        assert!(matches!(key.write_new(&path), Err(KeyError::Write { .. })));
    }

    #[test]
    fn a_mac_binds_topic_key_value_and_deletion() {
        let key = StateKey::from_bytes([7; KEY_LEN]);
        let mac = key.sign("t", b"k", Some(b"v"));
        assert!(!key.verify("u", b"k", Some(b"v"), &mac));
        assert!(!key.verify("t", b"K", Some(b"v"), &mac));
        assert!(!key.verify("t", b"k", Some(b"w"), &mac));
        assert!(!key.verify("t", b"k", None, &mac));
        assert!(!key.verify("t", b"k", Some(b""), &key.sign("t", b"k", None)));
        assert!(!StateKey::from_bytes([8; KEY_LEN]).verify("t", b"k", Some(b"v"), &mac));
        assert!(!key.verify("t", b"k", Some(b"v"), &mac[..31]));
    }

    #[test]
    fn bad_key_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = StateKey::load(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("kgate state key --out"), "{missing}");

        let short = dir.path().join("short");
        std::fs::write(&short, "c2hvcnQ=\n").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = StateKey::load(&short).unwrap_err().to_string();
        assert!(e.contains("holds 5 bytes") && e.contains(":1 "), "{e}");

        let loose = dir.path().join("loose");
        StateKey::generate().unwrap().write_new(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = StateKey::load(&loose).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
