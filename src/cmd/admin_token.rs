//! The admin endpoint's bearer token: a file only its owner can read, written by the gateway
//! and read by `kgate fault`.
//!
//! A secret in a 0600 file is what separates the operator from a web page open in a browser
//! on the same machine (which can send requests to loopback but cannot read files) and from
//! other local users. Without `admin_token_file`, kgate keeps the token in a per-port file
//! under `$XDG_RUNTIME_DIR/kgate/` (or `~/.cache/kgate/`), where `kgate fault --admin
//! HOST:PORT` finds it without being told.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;

/// Shortest token kgate accepts from a file someone wrote by hand.
const MIN_TOKEN: usize = 16;

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
pub fn read(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        bail!(
            "{}: readable by others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    let token = text.trim().to_owned();
    if token.len() < MIN_TOKEN || token.chars().any(char::is_whitespace) {
        bail!(
            "{}: the token must be one word of at least {MIN_TOKEN} characters \
             (delete the file and kgate writes a new one)",
            path.display()
        );
    }
    Ok(token)
}

/// Reads the token in `path`, or writes a new one there (mode 0600, never through a link).
///
/// # Errors
/// As [`read`], or the file cannot be created.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
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
pub fn store(path: &Path, token: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("token.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, token)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write the admin token file {}", path.display()))
}

fn write_new(path: &Path, token: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the admin token file {}", path.display()))?;
    writeln!(file, "{token}")
        .with_context(|| format!("cannot write the admin token file {}", path.display()))
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
