//! The crate's error type.
//!
//! Every error that concerns a file names that file, and where there is an obvious fix the
//! message says it (`run kgate certs init --dir certs first`, `pass --force`), because these
//! messages end up in front of an operator as the one line `kgate` prints before it exits.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while generating, loading or configuring certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A file that generation would write exists already and `force` was not set.
    #[error("{} already exists: pass --force to overwrite it", .path.display())]
    AlreadyExists {
        /// The file that would have been overwritten.
        path: PathBuf,
    },

    /// The CA certificate or key needed to sign a leaf certificate is missing.
    #[error(
        "{} not found: run `kgate certs init --dir {}` first",
        .path.display(),
        .dir.display()
    )]
    CaMissing {
        /// The missing file (`ca.pem` or `ca-key.pem`).
        path: PathBuf,
        /// The directory that was searched.
        dir: PathBuf,
    },

    /// The CA certificate cannot sign anything any more, or would expire before the leaf.
    #[error("{}: {reason}", .path.display())]
    CaUnusable {
        /// The CA certificate.
        path: PathBuf,
        /// What is wrong and what to do about it.
        reason: String,
    },

    /// rcgen refused the parameters or failed to sign.
    #[error("generating {what}: {source}")]
    Generate {
        /// What was being generated (`the CA certificate`, ...).
        what: &'static str,
        /// rcgen's own error.
        source: rcgen::Error,
    },

    /// A command-line style input (a client name, a DNS name, a number of days) is not usable.
    #[error("{0}")]
    InvalidInput(String),

    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// The private key does not belong to the first certificate of the chain.
    #[error(
        "{} does not match the certificate in {}: give the key that was generated with it",
        .key.display(),
        .cert.display()
    )]
    KeyMismatch {
        /// The certificate chain file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },

    /// A PEM file has no section of the expected kind.
    #[error("{}: no {what} found (expected a PEM block `-----BEGIN {label}-----`)", .path.display())]
    NoPemItem {
        /// The file that was read.
        path: PathBuf,
        /// Human name of what was looked for.
        what: &'static str,
        /// The PEM label that was expected.
        label: &'static str,
    },

    /// A file that must exist does not.
    #[error("{} not found", .path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },

    /// A PEM file is malformed, or its DER content is not what it should be.
    #[error("{}: {detail}", .path.display())]
    Parse {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// rustls refused the configuration (for example a key type the provider cannot use).
    #[error("{context}: {source}")]
    Tls {
        /// The file or step concerned.
        context: String,
        /// rustls's own error.
        source: rustls::Error,
    },

    /// The trusted client CA file could not be turned into a client-certificate verifier.
    #[error("{}: cannot verify client certificates with it: {source}", .path.display())]
    Verifier {
        /// The client CA file.
        path: PathBuf,
        /// rustls's own error.
        source: rustls::server::VerifierBuilderError,
    },
}

impl CertsError {
    /// Wraps an I/O error on `path`, turning "not found" into [`CertsError::NotFound`].
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            CertsError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            CertsError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Wraps a parse problem in `path`.
    pub(crate) fn parse(path: &Path, detail: impl Into<String>) -> Self {
        CertsError::Parse {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_message_names_file_and_fix() {
        let err = CertsError::CaMissing {
            path: PathBuf::from("certs/ca.pem"),
            dir: PathBuf::from("certs"),
        };
        assert_eq!(
            err.to_string(),
            "certs/ca.pem not found: run `kgate certs init --dir certs` first"
        );
    }

    #[test]
    fn not_found_io_error_becomes_not_found() {
        let err = CertsError::io(Path::new("x.pem"), io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(err, CertsError::NotFound { .. }));
        assert_eq!(err.to_string(), "x.pem not found");
    }
}
