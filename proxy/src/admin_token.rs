//! The admin endpoint's bearer token: a file only its owner can read, written by the gateway
//! and read by `kgate fault`.
//!
//! A secret in a 0600 file is what separates the operator from a web page open in a browser
//! on the same machine (which can send requests to loopback but cannot read files) and from
//! other local users. Without `admin_token_file`, kgate keeps the token in a per-port file
//! under `$XDG_RUNTIME_DIR/kgate/` (or `~/.cache/kgate/`), where `kgate fault --admin
//! HOST:PORT` finds it without being told. The lab's live view keeps its token the same way.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file or its directory cannot be read or written.
    #[error("admin token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Group or others may read the file.
    #[error("{path}: readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    Loose {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not one word of at least [`MIN_TOKEN`] characters.
    #[error("{path}: the token must be one word of at least {MIN_TOKEN} characters (delete the file and kgate writes a new one)")]
    Weak {
        /// The file.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shortest token kgate accepts from a file someone wrote by hand.
pub const MIN_TOKEN: usize = 16;

/// Where the token of the admin endpoint on `port` lives unless configured otherwise.
pub fn default_path(port: u16) -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kgate").join(format!("admin-{port}.token"))
}

/// A new random token (32 bytes, hex).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the token in `path`, refusing a file others may read or a token too short to guess.
///
/// # Errors
/// A missing or unreadable file, a file readable by group or others, or a short token.
pub fn read(path: &Path) -> Result<String, TokenError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.mode() & 0o077 != 0 {
        return Err(TokenError::Loose {
            path: path.to_path_buf(),
            mode: meta.mode() & 0o777,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let token = text.trim().to_owned();
    if token.len() < MIN_TOKEN || token.chars().any(char::is_whitespace) {
        return Err(TokenError::Weak {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

/// Reads the token in `path`, or writes a new one there (mode 0600, never through a link).
///
/// # Errors
/// As [`read`], or the file cannot be created.
pub fn load_or_create(path: &Path) -> Result<String, TokenError> {
    if path.exists() {
        return read(path);
    }
    let token = generate();
    write_new(path, &token)?;
    Ok(token)
}

/// Writes `token` to `path` (replacing what is there), mode 0600, directory 0700.
///
/// # Errors
/// The directory or the file cannot be written.
pub fn store(path: &Path, token: &str) -> Result<(), TokenError> {
    let tmp = path.with_extension(format!("token.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, token)?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// A token file kgate wrote for itself at its default place ([`default_path`]): removed when
/// dropped, so that a stopped gateway, demo or lab leaves none behind. (A killed process
/// leaves its file; the next one on that port replaces it.)
pub struct StoredToken {
    path: PathBuf,
    token: String,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("StoredToken")
            .field("path", &self.path)
            .finish()
    }
}

impl StoredToken {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoredToken {
    fn drop(&mut self) {
        // Only the file this process wrote: another process on the same port (after this
        // one's listener closed) may have replaced it with its own token.
        if std::fs::read_to_string(&self.path).is_ok_and(|t| t.trim() == self.token) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `token` to `path` as [`store`] does, and removes the file when the returned guard is
/// dropped.
///
/// # Errors
/// As [`store`].
pub fn store_owned(path: &Path, token: &str) -> Result<StoredToken, TokenError> {
    store(path, token)?;
    Ok(StoredToken {
        path: path.to_path_buf(),
        token: token.to_owned(),
    })
}

fn write_new(path: &Path, token: &str) -> Result<(), TokenError> {
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    writeln!(file, "{token}").map_err(io(path))
}

/// Whether an HTTP request head carries `Authorization: Bearer <token>`, compared in time
/// that depends only on the lengths.
pub fn bearer_matches(head: &str, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .filter_map(|(_, v)| v.trim().strip_prefix("Bearer "))
        .any(|given| {
            let (a, b) = (given.trim().as_bytes(), token.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.token");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create(&path).unwrap(), first);
        store(&path, "another-token-of-some-length").unwrap();
        assert_eq!(read(&path).unwrap(), "another-token-of-some-length");
    }

    #[test]
    fn a_stored_token_file_goes_with_its_guard_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kgate/admin-1.token");
        let guard = store_owned(&path, "first-token-of-some-length").unwrap();
        assert_eq!(read(&path).unwrap(), "first-token-of-some-length");
        assert!(
            !format!("{guard:?}").contains("first-token"),
            "no token in Debug"
        );
        drop(guard);
        assert!(!path.exists(), "removed with its guard");
        // A later process on the same port replaced it: the earlier guard leaves it alone.
        let earlier = store_owned(&path, "first-token-of-some-length").unwrap();
        store(&path, "second-token-of-some-length").unwrap();
        drop(earlier);
        assert_eq!(read(&path).unwrap(), "second-token-of-some-length");
    }

    #[test]
    fn loose_files_and_short_tokens_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&path).is_ok());
        std::fs::write(&path, "short\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("at least"));
    }
}
