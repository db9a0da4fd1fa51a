//! Writing generated files safely.
//!
//! Every file is written to a temporary file in the same directory, flushed to disk and then
//! moved into place, so a crash or a full disk never leaves half a key behind and a reader
//! (for example a gateway reloading its certificate) never sees a partial file. Private keys
//! are created with mode 0600 from the first byte, never `chmod`ed after the fact.
//!
//! Without `force`, the final step is a hard link, which fails if the target exists: the
//! "refuse to overwrite" check cannot race with another writer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::CertsError;

/// Who may read a file that is about to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Certificates: public data, mode 0644.
    Public,
    /// Private keys: owner only, mode 0600.
    Secret,
}

/// Fails with [`CertsError::AlreadyExists`] for the first of `paths` that exists, unless
/// `force` is set.
///
/// Checked before any key is generated so that a refused run changes nothing.
pub(crate) fn ensure_writable(paths: &[&Path], force: bool) -> Result<(), CertsError> {
    if force {
        return Ok(());
    }
    for path in paths {
        match fs::symlink_metadata(path) {
            Ok(_) => {
                return Err(CertsError::AlreadyExists {
                    path: path.to_path_buf(),
                })
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(CertsError::io(path, err)),
        }
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with the permissions of `access`.
///
/// # Errors
///
/// [`CertsError::AlreadyExists`] if `path` exists and `force` is false; [`CertsError::Io`]
/// naming the file for any other failure. The temporary file is removed on every error.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    access: Access,
    force: bool,
) -> Result<(), CertsError> {
    let tmp = temp_path(path);
    let result = write_new(&tmp, contents, access).and_then(|()| {
        if force {
            fs::rename(&tmp, path)
        } else {
            // A hard link never replaces an existing file.
            fs::hard_link(&tmp, path).and_then(|()| fs::remove_file(&tmp))
        }
    });
    match result {
        Ok(()) => Ok(()),
        Err(err) => {
            // Best effort: the temporary file may not exist, or may already be renamed.
            let _ = fs::remove_file(&tmp);
            if err.kind() == io::ErrorKind::AlreadyExists {
                Err(CertsError::AlreadyExists {
                    path: path.to_path_buf(),
                })
            } else {
                Err(CertsError::Io {
                    path: path.to_path_buf(),
                    source: err,
                })
            }
        }
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CertsError> {
    fs::read(path).map_err(|err| CertsError::io(path, err))
}

/// Creates `tmp` (which must not exist), writes and syncs it.
fn write_new(tmp: &Path, contents: &[u8], access: Access) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match access {
            Access::Public => 0o644,
            Access::Secret => 0o600,
        });
    }
    #[cfg(not(unix))]
    let _ = access;
    let mut file: File = options.open(tmp)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A fresh, hidden temporary name beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_secret_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_atomic(&path, b"secret", Access::Secret, false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pem");
        write_atomic(&path, b"one", Access::Public, false).unwrap();
        let err = write_atomic(&path, b"two", Access::Public, false).unwrap_err();
        assert!(matches!(err, CertsError::AlreadyExists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(ensure_writable(&[&path], false).is_err());
        assert!(ensure_writable(&[&path], true).is_ok());
    }

    #[test]
    fn overwrites_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pem");
        write_atomic(&path, b"one", Access::Public, false).unwrap();
        write_atomic(&path, b"two", Access::Public, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }
}
