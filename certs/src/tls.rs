//! The gateway's rustls `ServerConfig`, and reloading it without dropping connections.
//!
//! Two things can change at run time, and they are swapped in two different ways:
//!
//! - **The server certificate and key** live in a [`ReloadableCertResolver`], which every
//!   `ServerConfig` built here points to. Swapping its content takes effect for the next
//!   handshake even on listeners that kept an old `Arc<ServerConfig>`.
//! - **The trusted client CAs** (mTLS) are baked into the `ServerConfig`'s verifier, so a new
//!   config is built and swapped into the [`TlsConfigHandle`]. Listeners should therefore take
//!   [`TlsConfigHandle::current`] for each accepted connection (an atomic pointer load).
//!
//! [`TlsConfigHandle::reload`] reads and checks every file before changing anything: a missing,
//! corrupt or mismatched new file is reported and the configuration in force stays as it was.
//!
//! Settings: TLS 1.2 and 1.3 only, the aws-lc-rs provider passed explicitly (the process-wide
//! default provider is never consulted or installed), no ALPN (Kafka clients do not send it),
//! and with a client CA configured a client certificate is **required** and must chain to it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::error::CertsError;
use crate::load::{load_certified_key, load_certs, load_client_roots};

/// The crypto provider kgate uses everywhere: aws-lc-rs with its default cipher suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Where the gateway's TLS material comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first (`server.pem`).
    pub cert: PathBuf,
    /// PEM private key of the leaf (`server-key.pem`).
    pub key: PathBuf,
    /// PEM file of the CAs that client certificates must chain to; `Some` turns on mTLS with
    /// the client certificate required.
    pub client_ca: Option<PathBuf>,
}

/// Builds a one-off `ServerConfig` from `settings` (no reloading).
///
/// # Errors
///
/// Any load error naming the file, [`CertsError::Verifier`] if the client CA file cannot be
/// used, [`CertsError::Tls`] if rustls refuses the combination.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, CertsError> {
    Ok(TlsConfigHandle::load(settings.clone())?.current())
}

// === impl ReloadableCertResolver ===

/// A `ResolvesServerCert` that always presents one certificate, which can be replaced while
/// the server runs.
///
/// SNI is ignored on purpose: clients that connect by IP address send none, and kgate has one
/// identity per listener.
#[derive(Debug)]
pub struct ReloadableCertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadableCertResolver {
    /// A resolver presenting `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        ReloadableCertResolver {
            current: ArcSwap::new(key),
        }
    }

    /// The certificate presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Presents `key` from the next handshake on; handshakes in progress keep the old one.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }
}

impl ResolvesServerCert for ReloadableCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

// === impl TlsConfigHandle ===

/// The gateway's live TLS configuration: the `ServerConfig` in force plus what is needed to
/// reload it from the same files.
///
/// Share it in an `Arc`; take [`current`](Self::current) for each accepted connection and
/// call [`reload`](Self::reload) on SIGHUP, on a file change or from the admin endpoint.
#[derive(Debug)]
pub struct TlsConfigHandle {
    /// The files to (re)load.
    settings: TlsSettings,
    /// The explicit aws-lc-rs provider, shared by every config built here.
    provider: Arc<CryptoProvider>,
    /// Holds the server certificate; shared by every config built here.
    resolver: Arc<ReloadableCertResolver>,
    /// The config handed to new connections.
    config: ArcSwap<ServerConfig>,
    /// The client CA certificates the config in force trusts; also serialises reloads, so two
    /// concurrent reloads cannot interleave their swaps.
    trusted_client_cas: Mutex<Option<Vec<CertificateDer<'static>>>>,
}

/// What a successful [`TlsConfigHandle::reload`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The server certificate chain differs from the one presented before.
    pub certificate_changed: bool,
    /// The trusted client CAs differ, so a new `ServerConfig` was swapped in.
    pub client_ca_changed: bool,
}

impl TlsConfigHandle {
    /// Loads the files named in `settings` and builds the first configuration.
    ///
    /// # Errors
    ///
    /// As [`server_config`].
    pub fn load(settings: TlsSettings) -> Result<Self, CertsError> {
        Self::load_with_provider(settings, provider())
    }

    /// As [`load`](Self::load), with a caller-chosen provider (for example one restricted to
    /// fewer cipher suites).
    ///
    /// # Errors
    ///
    /// As [`server_config`].
    pub fn load_with_provider(
        settings: TlsSettings,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, CertsError> {
        let key = load_certified_key(&settings.cert, &settings.key, &provider)?;
        let client_cas = settings.client_ca.as_deref().map(load_certs).transpose()?;
        let resolver = Arc::new(ReloadableCertResolver::new(key));
        let config = build_config(&settings, &provider, &resolver, client_cas.as_deref())?;
        Ok(TlsConfigHandle {
            settings,
            provider,
            resolver,
            config: ArcSwap::from_pointee(config),
            trusted_client_cas: Mutex::new(client_cas),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// The files this handle loads from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Whether clients must present a certificate (a client CA is configured).
    pub fn requires_client_certificate(&self) -> bool {
        self.settings.client_ca.is_some()
    }

    /// The certificate chain presented now, leaf first.
    pub fn certificate_chain(&self) -> Vec<CertificateDer<'static>> {
        self.resolver.current().cert.clone()
    }

    /// Re-reads the certificate, key and client CA files and swaps in what changed.
    ///
    /// Connections already established are untouched; new handshakes use the new material.
    ///
    /// # Errors
    ///
    /// Any load or build error, naming the file. On error nothing changes: the old
    /// certificate and client CAs stay in force.
    pub fn reload(&self) -> Result<ReloadOutcome, CertsError> {
        let mut trusted = self
            .trusted_client_cas
            .lock()
            .unwrap_or_else(PoisonError::into_inner);

        // Read and check everything first.
        let key = load_certified_key(&self.settings.cert, &self.settings.key, &self.provider)?;
        let client_cas = self
            .settings
            .client_ca
            .as_deref()
            .map(load_certs)
            .transpose()?;
        let client_ca_changed = client_cas != *trusted;
        let new_config = if client_ca_changed {
            Some(build_config(
                &self.settings,
                &self.provider,
                &self.resolver,
                client_cas.as_deref(),
            )?)
        } else {
            None
        };

        // Then commit.
        let certificate_changed = self.resolver.current().cert != key.cert;
        self.resolver.set(key);
        if let Some(config) = new_config {
            self.config.store(Arc::new(config));
            *trusted = client_cas;
        }
        Ok(ReloadOutcome {
            certificate_changed,
            client_ca_changed,
        })
    }
}

/// One `ServerConfig` around the shared resolver.
fn build_config(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<ReloadableCertResolver>,
    client_cas: Option<&[CertificateDer<'static>]>,
) -> Result<ServerConfig, CertsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| CertsError::Tls {
            context: "choosing TLS 1.2 and 1.3".into(),
            source,
        })?;
    let builder = match (&settings.client_ca, client_cas) {
        (Some(path), Some(cas)) => {
            let mut roots = RootCertStore::empty();
            for (i, cert) in cas.iter().enumerate() {
                roots.add(cert.clone()).map_err(|err| {
                    CertsError::parse(
                        path,
                        format!("certificate #{}: not a usable CA: {err}", i + 1),
                    )
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|source| CertsError::Verifier {
                        path: path.clone(),
                        source,
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    // Kafka clients negotiate no application protocol.
    config.alpn_protocols = Vec::new();
    Ok(config)
}

/// Checks that `path` is usable as a client CA file without building a config (for
/// `kgate config check`).
///
/// # Errors
///
/// As [`load_client_roots`].
pub fn check_client_ca(path: &std::path::Path) -> Result<usize, CertsError> {
    Ok(load_client_roots(path)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{init_ca, issue_server, GenerateOptions};

    fn settings(dir: &std::path::Path, mtls: bool) -> TlsSettings {
        TlsSettings {
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
            client_ca: mtls.then(|| dir.join("ca.pem")),
        }
    }

    fn pki(dir: &std::path::Path) {
        init_ca(dir, &GenerateOptions::default()).unwrap();
        issue_server(dir, &["localhost".into()], &[], &GenerateOptions::default()).unwrap();
    }

    #[test]
    fn builds_with_and_without_client_auth() {
        let dir = tempfile::tempdir().unwrap();
        pki(dir.path());
        let plain = TlsConfigHandle::load(settings(dir.path(), false)).unwrap();
        assert!(!plain.requires_client_certificate());
        assert!(plain.current().alpn_protocols.is_empty());
        let mtls = TlsConfigHandle::load(settings(dir.path(), true)).unwrap();
        assert!(mtls.requires_client_certificate());
        assert_eq!(mtls.certificate_chain().len(), 2);
        assert_eq!(check_client_ca(&dir.path().join("ca.pem")).unwrap(), 1);
    }

    #[test]
    fn reload_keeps_old_material_on_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        pki(dir.path());
        let handle = TlsConfigHandle::load(settings(dir.path(), true)).unwrap();
        let before = handle.certificate_chain();
        let config_before = handle.current();

        assert_eq!(handle.reload().unwrap(), ReloadOutcome::default());
        assert!(Arc::ptr_eq(&config_before, &handle.current()));

        std::fs::write(dir.path().join("server.pem"), "garbage").unwrap();
        let err = handle.reload().unwrap_err();
        assert!(err.to_string().contains("server.pem"), "{err}");
        assert_eq!(handle.certificate_chain(), before);

        // A new server certificate and a corrupt CA file: still nothing changes.
        issue_server(
            dir.path(),
            &["localhost".into()],
            &[],
            &GenerateOptions {
                days: None,
                force: true,
            },
        )
        .unwrap();
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = handle.reload().unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
        assert_eq!(handle.certificate_chain(), before);

        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        let outcome = handle.reload().unwrap();
        assert!(outcome.certificate_changed);
        assert!(!outcome.client_ca_changed);
        assert_ne!(handle.certificate_chain(), before);
    }

    #[test]
    fn reload_swaps_config_when_client_ca_changes() {
        let dir = tempfile::tempdir().unwrap();
        pki(dir.path());
        let other = tempfile::tempdir().unwrap();
        init_ca(other.path(), &GenerateOptions::default()).unwrap();
        let mut s = settings(dir.path(), true);
        s.client_ca = Some(dir.path().join("clients-ca.pem"));
        std::fs::copy(dir.path().join("ca.pem"), dir.path().join("clients-ca.pem")).unwrap();
        let handle = TlsConfigHandle::load(s).unwrap();
        let before = handle.current();
        std::fs::copy(
            other.path().join("ca.pem"),
            dir.path().join("clients-ca.pem"),
        )
        .unwrap();
        let outcome = handle.reload().unwrap();
        assert!(outcome.client_ca_changed);
        assert!(!outcome.certificate_changed);
        assert!(!Arc::ptr_eq(&before, &handle.current()));
    }
}
