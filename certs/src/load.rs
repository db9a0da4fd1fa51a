//! Loading PEM certificate chains, private keys and trusted CAs into rustls types.
//!
//! Each function reads one file and names it in every error, because "no certificate found"
//! without a file name is useless to someone with five PEM files in a directory.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use crate::error::CertsError;
use crate::files;

/// Reads every certificate of a PEM file, leaf first.
///
/// # Errors
///
/// [`CertsError::NotFound`]/[`CertsError::Io`] if the file cannot be read,
/// [`CertsError::Parse`] if the PEM is malformed and [`CertsError::NoPemItem`] if it holds no
/// `CERTIFICATE` block.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertsError> {
    parse_certs(path, &files::read(path)?)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
///
/// # Errors
///
/// As [`load_certs`], with [`CertsError::NoPemItem`] when the file has no private key.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertsError> {
    let bytes = files::read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        pem::Error::NoItemsFound => CertsError::NoPemItem {
            path: path.to_path_buf(),
            what: "private key",
            label: "PRIVATE KEY",
        },
        other => CertsError::parse(path, format!("invalid PEM: {other}")),
    })
}

/// Reads a certificate chain and its key and checks that they belong together.
///
/// The result is what a rustls server presents; the key is loaded with `provider`, so a key
/// type the provider cannot sign with is reported here, at load time, and not at the first
/// handshake.
///
/// # Errors
///
/// The errors of [`load_certs`] and [`load_private_key`], [`CertsError::KeyMismatch`] if the
/// key is not the certificate's, and [`CertsError::Tls`] if the provider refuses the key.
pub fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, CertsError> {
    let chain = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(certified) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(CertsError::KeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        }),
        Err(source) => Err(CertsError::Tls {
            context: format!("{} with {}", cert_path.display(), key_path.display()),
            source,
        }),
    }
}

/// Reads the CA certificates that client certificates must chain to (mTLS).
///
/// # Errors
///
/// The errors of [`load_certs`], and [`CertsError::Parse`] if a certificate cannot be used as
/// a trust anchor.
pub fn load_client_roots(path: &Path) -> Result<RootCertStore, CertsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in load_certs(path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|err| {
            CertsError::parse(
                path,
                format!("certificate #{}: not a usable CA: {err}", i + 1),
            )
        })?;
    }
    Ok(roots)
}

/// Parses every `CERTIFICATE` block of `bytes`, read from `path`.
pub(crate) fn parse_certs(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, CertsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| CertsError::parse(path, format!("invalid PEM: {err}")))?;
    if certs.is_empty() {
        return Err(CertsError::NoPemItem {
            path: path.to_path_buf(),
            what: "certificate",
            label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{init_ca, issue_client, GenerateOptions};

    #[test]
    fn loads_generated_files_and_names_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ca = init_ca(dir.path(), &GenerateOptions::default()).unwrap();
        let alice = issue_client(dir.path(), "alice", &GenerateOptions::default()).unwrap();
        let provider = crate::provider();

        assert_eq!(load_certs(&ca.cert).unwrap().len(), 1);
        load_private_key(&ca.key).unwrap();
        load_certified_key(&alice.cert, &alice.key, &provider).unwrap();
        assert_eq!(load_client_roots(&ca.cert).unwrap().len(), 1);

        // A key from another certificate.
        let err = load_certified_key(&alice.cert, &ca.key, &provider).unwrap_err();
        assert!(matches!(err, CertsError::KeyMismatch { .. }), "{err}");

        // A key file given as certificate and the other way round.
        let err = load_certs(&ca.key).unwrap_err();
        assert!(err.to_string().contains("no certificate found"), "{err}");
        assert!(err.to_string().contains("ca-key.pem"), "{err}");
        let err = load_private_key(&ca.cert).unwrap_err();
        assert!(err.to_string().contains("no private key found"), "{err}");

        // Garbage inside a PEM block.
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = load_certs(&bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: invalid PEM", bad.display())),
            "{err}"
        );

        let missing = dir.path().join("nope.pem");
        let err = load_certs(&missing).unwrap_err();
        assert_eq!(err.to_string(), format!("{} not found", missing.display()));
    }
}
