//! The lock every writer of a kgate data file takes (`kgate users`, `kgate acl`, `kgate role`
//! and the gateway answering Kafka's admin APIs): each reads, changes and writes the whole
//! file, and without a lock two of them at once would lose one change.
//!
//! The lock is on `<file>.lock` beside the file, not on the file itself, because every write
//! replaces the file with a new one (write a temporary file, rename it over). The lock file
//! stays after use: removing it would let a writer that already opened it and one that
//! creates a new one both hold "the" lock.

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An exclusive lock on the changes of one file, across processes; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    /// `None` where nobody can create the lock file, and so nobody can write the data file
    /// either (a read-only directory): there is nothing to serialize.
    _file: Option<File>,
}

/// Where the lock of `data` lives: `<data>.lock`.
pub fn lock_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl FileLock {
    /// Takes the lock of `data`'s changes, waiting at most `limit` (`None`: as long as it
    /// takes, for the CLI; the gateway passes a limit so that a stopped CLI cannot hold its
    /// requests forever).
    ///
    /// # Errors
    /// The lock file cannot be opened (other than for lack of permission), locking fails, or
    /// `limit` passes (`TimedOut`). The caller names [`lock_path`] in its message.
    pub fn acquire(data: &Path, limit: Option<Duration>) -> io::Result<Self> {
        let lock = lock_path(data);
        let mut options = fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = match options.open(&lock) {
            Ok(f) => f,
            // Another user's lock file, or a read-only directory: a read-only handle locks
            // just as well; with no lock file at all, nobody can write here.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                match File::open(&lock) {
                    Ok(f) => f,
                    Err(_) => return Ok(Self { _file: None }),
                }
            }
            Err(e) => return Err(e),
        };
        match limit {
            None => file.lock()?,
            Some(limit) => {
                let deadline = Instant::now() + limit;
                loop {
                    match file.try_lock() {
                        Ok(()) => break,
                        Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(TryLockError::WouldBlock) => {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!(
                                    "another process has been changing it for over {} ms",
                                    limit.as_millis()
                                ),
                            ))
                        }
                        Err(TryLockError::Error(e)) => return Err(e),
                    }
                }
            }
        }
        Ok(Self { _file: Some(file) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_makes_a_bounded_wait_time_out_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("policy.toml");
        assert_eq!(lock_path(&data), dir.path().join("policy.toml.lock"));
        let held = FileLock::acquire(&data, None).unwrap();
        let started = Instant::now();
        let err = FileLock::acquire(&data, Some(Duration::from_millis(100))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(held);
        FileLock::acquire(&data, Some(Duration::from_millis(100))).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("missing/users.toml");
        assert!(FileLock::acquire(&data, None).is_err());
    }
}
