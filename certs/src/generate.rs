//! Generating a private CA, a server certificate and client certificates with rcgen.
//!
//! The layout of a certificate directory is fixed so that the gateway, the CLI and the docs
//! agree on it:
//!
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca-key.pem` | the CA that signs everything else (written by [`init_ca`]) |
//! | `server.pem`, `server-key.pem` | the gateway's certificate chain and key ([`issue_server`]) |
//! | `<name>.pem`, `<name>-key.pem` | a client certificate for mTLS, subject `CN=<name>` ([`issue_client`]) |
//!
//! rcgen's defaults are replaced: it would make certificates valid from 1975 to 4096 with a
//! serial derived from the key. Here the CA is valid for [`DEFAULT_CA_DAYS`], a leaf for
//! [`DEFAULT_LEAF_DAYS`] (both overridable), validity starts five minutes in the past to
//! tolerate clock skew, serials are 128 random bits and keys are ECDSA P-256. Leaf
//! certificates carry the Authority Key Identifier and the extended key usage (server or
//! client authentication) that webpki checks.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, DnsName};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::dn;
use crate::error::CertsError;
use crate::files::{self, Access};

/// File name of the CA certificate inside a certificate directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside a certificate directory.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the server certificate inside a certificate directory.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// File name of the server private key inside a certificate directory.
pub const SERVER_KEY_FILE: &str = "server-key.pem";

/// Validity of a new CA when no number of days is given: ten years.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Validity of a new server or client certificate when no number of days is given: one year.
pub const DEFAULT_LEAF_DAYS: u32 = 365;
/// The longest validity accepted, to catch typos such as `--days 3650000`.
pub const MAX_DAYS: u32 = 36_500;

/// How far in the past validity starts, so that a peer whose clock is a little behind still
/// accepts a certificate generated just now.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Options shared by every generation command.
#[derive(Clone, Debug, Default)]
pub struct GenerateOptions {
    /// Validity in days; `None` means [`DEFAULT_CA_DAYS`] for a CA and [`DEFAULT_LEAF_DAYS`]
    /// for a leaf.
    pub days: Option<u32>,
    /// Overwrite existing files instead of refusing.
    pub force: bool,
}

/// What a generation command wrote, for the CLI to report.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The certificate file (PEM).
    pub cert: PathBuf,
    /// The private key file (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    /// The subject as Kafka prints it (RFC 2253, most specific first), e.g. `CN=alice`.
    pub subject: String,
    /// The serial number in colon-separated hex.
    pub serial: String,
    /// The end of the validity period.
    pub not_after: OffsetDateTime,
}

/// Creates a new CA in `dir` (created if missing): `ca.pem` and `ca-key.pem`.
///
/// # Errors
///
/// [`CertsError::AlreadyExists`] if either file exists and `options.force` is false; I/O and
/// generation errors otherwise. Nothing is written unless everything succeeded up to the write.
pub fn init_ca(dir: &Path, options: &GenerateOptions) -> Result<Generated, CertsError> {
    let days = validity_days(options.days, DEFAULT_CA_DAYS)?;
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    std::fs::create_dir_all(dir).map_err(|err| CertsError::io(dir, err))?;
    files::ensure_writable(&[&cert_path, &key_path], options.force)?;

    let key = new_key("the CA key")?;
    let mut params = base_params(days)?;
    // A random suffix keeps two kgate CAs apart: chain building matches issuers by name, so
    // identical names would turn "unknown CA" into a confusing "bad signature".
    let mut id = [0u8; 4];
    random_bytes(&mut id)?;
    let common_name = format!("kgate CA {}", hex(&id));
    params.distinguished_name = name(&[
        (DnType::OrganizationName, "kgate"),
        (DnType::CommonName, &common_name),
    ]);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params
        .self_signed(&key)
        .map_err(|source| generate_error("the CA certificate", source))?;

    // The certificate first: a crash in between leaves a certificate without its key, which
    // the next `init` refuses to touch without --force rather than a key nobody can use.
    files::write_atomic(
        &key_path,
        key.serialize_pem().as_bytes(),
        Access::Secret,
        options.force,
    )?;
    files::write_atomic(
        &cert_path,
        cert.pem().as_bytes(),
        Access::Public,
        options.force,
    )?;
    described(cert.der(), cert_path, key_path)
}

/// Issues the gateway's certificate, signed by the CA in `dir`: `server.pem` (leaf then CA, so
/// clients that only trust the CA can build the chain) and `server-key.pem`.
///
/// The subject is `CN=<first name>,O=kgate`; every name in `dns` and `ips` becomes a subject
/// alternative name, which is what TLS clients check.
///
/// # Errors
///
/// [`CertsError::InvalidInput`] if no name is given or a DNS name is malformed,
/// [`CertsError::CaMissing`] if the CA has not been created, [`CertsError::AlreadyExists`]
/// without `force`, and I/O or generation errors.
pub fn issue_server(
    dir: &Path,
    dns: &[String],
    ips: &[IpAddr],
    options: &GenerateOptions,
) -> Result<Generated, CertsError> {
    if dns.is_empty() && ips.is_empty() {
        return Err(CertsError::InvalidInput(
            "a server certificate needs at least one name: give --dns NAME or --ip ADDRESS".into(),
        ));
    }
    let mut sans = Vec::with_capacity(dns.len() + ips.len());
    for name in dns {
        if DnsName::try_from(name.as_str()).is_err() || name.parse::<IpAddr>().is_ok() {
            return Err(CertsError::InvalidInput(format!(
                "{name:?} is not a valid DNS name (use --ip for addresses)"
            )));
        }
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| CertsError::InvalidInput(format!("{name:?} is not a valid DNS name")))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.iter().copied().map(SanType::IpAddress));
    let common_name = dns
        .first()
        .cloned()
        .or_else(|| ips.first().map(IpAddr::to_string))
        .unwrap_or_default();

    let mut params = base_params(validity_days(options.days, DEFAULT_LEAF_DAYS)?)?;
    params.distinguished_name = name(&[
        (DnType::OrganizationName, "kgate"),
        (DnType::CommonName, &common_name),
    ]);
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue_leaf(
        dir,
        SERVER_CERT_FILE,
        SERVER_KEY_FILE,
        params,
        true,
        options,
    )
}

/// Issues a client certificate for mTLS, subject `CN=<name>`, signed by the CA in `dir`:
/// `<name>.pem` and `<name>-key.pem`.
///
/// With Kafka's default mapping rule the gateway sees the principal `User:CN=<name>`.
///
/// # Errors
///
/// [`CertsError::InvalidInput`] if `name` cannot be used as a file name or collides with the
/// CA or server files, plus the errors of [`issue_server`].
pub fn issue_client(
    dir: &Path,
    name_: &str,
    options: &GenerateOptions,
) -> Result<Generated, CertsError> {
    check_client_name(name_)?;
    let mut params = base_params(validity_days(options.days, DEFAULT_LEAF_DAYS)?)?;
    params.distinguished_name = name(&[(DnType::CommonName, name_)]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert_file = format!("{name_}.pem");
    let key_file = format!("{name_}-key.pem");
    issue_leaf(dir, &cert_file, &key_file, params, false, options)
}

/// Signs a leaf with the CA in `dir` and writes it.
fn issue_leaf(
    dir: &Path,
    cert_file: &str,
    key_file: &str,
    mut params: CertificateParams,
    with_chain: bool,
    options: &GenerateOptions,
) -> Result<Generated, CertsError> {
    let cert_path = dir.join(cert_file);
    let key_path = dir.join(key_file);
    let ca = LoadedCa::load(dir)?;
    ca.check_covers(params.not_after)?;
    files::ensure_writable(&[&cert_path, &key_path], options.force)?;

    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let key = new_key("the certificate key")?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(|source| generate_error("the certificate", source))?;

    let mut pem = cert.pem();
    if with_chain {
        pem.push_str(&ca.cert_pem);
    }
    files::write_atomic(
        &key_path,
        key.serialize_pem().as_bytes(),
        Access::Secret,
        options.force,
    )?;
    files::write_atomic(&cert_path, pem.as_bytes(), Access::Public, options.force)?;
    described(cert.der(), cert_path, key_path)
}

/// The CA read back from a certificate directory, ready to sign.
struct LoadedCa {
    /// Where the certificate came from, for error messages.
    cert_path: PathBuf,
    /// The CA certificate as written, appended to server chains.
    cert_pem: String,
    /// When the CA stops being valid: a leaf must not outlive it.
    not_after: OffsetDateTime,
    /// rcgen's signer built from the CA certificate and key.
    issuer: Issuer<'static, KeyPair>,
}

impl LoadedCa {
    fn load(dir: &Path) -> Result<Self, CertsError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let read_ca_file = |path: &Path| match files::read(path) {
            Err(CertsError::NotFound { .. }) => Err(CertsError::CaMissing {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
            }),
            other => other,
        };
        let cert_bytes = read_ca_file(&cert_path)?;
        let key_bytes = read_ca_file(&key_path)?;
        let cert_pem = String::from_utf8(cert_bytes)
            .map_err(|_| CertsError::parse(&cert_path, "not a PEM file (not text)"))?;
        let key_pem = String::from_utf8(key_bytes)
            .map_err(|_| CertsError::parse(&key_path, "not a PEM file (not text)"))?;

        let der = crate::load::parse_certs(&cert_path, cert_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or_else(|| CertsError::parse(&cert_path, "no certificate"))?;
        let (_, x509) = X509Certificate::from_der(der.as_ref()).map_err(|err| {
            CertsError::parse(&cert_path, format!("not an X.509 certificate: {err}"))
        })?;
        if !x509.is_ca() {
            return Err(CertsError::CaUnusable {
                path: cert_path,
                reason: "this certificate is not a CA (no basicConstraints cA=true): \
                         run `kgate certs init` to create one"
                    .into(),
            });
        }
        let not_after = x509.validity().not_after.to_datetime();
        let key = KeyPair::from_pem(&key_pem).map_err(|err| {
            CertsError::parse(&key_path, format!("not a usable private key: {err}"))
        })?;
        use rcgen::PublicKeyData;
        if key.subject_public_key_info() != x509.public_key().raw {
            return Err(CertsError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|err| {
            CertsError::parse(&cert_path, format!("cannot sign with this CA: {err}"))
        })?;
        Ok(LoadedCa {
            cert_path,
            cert_pem,
            not_after,
            issuer,
        })
    }

    /// Refuses to issue a certificate that would outlive the CA (or if the CA has expired).
    fn check_covers(&self, leaf_not_after: OffsetDateTime) -> Result<(), CertsError> {
        let now = OffsetDateTime::now_utc();
        if self.not_after <= now {
            return Err(CertsError::CaUnusable {
                path: self.cert_path.clone(),
                reason: format!(
                    "the CA expired on {}: create a new one with `kgate certs init --force`",
                    self.not_after.date()
                ),
            });
        }
        if leaf_not_after > self.not_after {
            let left = (self.not_after - now).whole_days();
            return Err(CertsError::CaUnusable {
                path: self.cert_path.clone(),
                reason: format!(
                    "the CA expires on {}, before this certificate would: pass --days {left} \
                     or less, or create a new CA",
                    self.not_after.date()
                ),
            });
        }
        Ok(())
    }
}

/// Parameters every certificate starts from: validity and a random serial.
fn base_params(days: u32) -> Result<CertificateParams, CertsError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + Duration::days(i64::from(days));
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// 128 random bits, positive and without a leading zero byte (RFC 5280 §4.1.2.2 allows up to
/// 20 octets; DER must stay minimal).
fn random_serial() -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn random_bytes(buf: &mut [u8]) -> Result<(), CertsError> {
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| CertsError::InvalidInput("the system random generator failed".into()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_key(what: &'static str) -> Result<KeyPair, CertsError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| generate_error(what, source))
}

/// A distinguished name from (type, value) pairs, most general first as encoded in DER.
fn name(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in parts {
        dn.push(ty.clone(), *value);
    }
    dn
}

fn validity_days(days: Option<u32>, default: u32) -> Result<u32, CertsError> {
    match days.unwrap_or(default) {
        0 => Err(CertsError::InvalidInput("--days must be at least 1".into())),
        d if d > MAX_DAYS => Err(CertsError::InvalidInput(format!(
            "--days {d} is more than {MAX_DAYS} (100 years)"
        ))),
        d => Ok(d),
    }
}

/// A client name becomes a file name and a CN: keep it to a safe set of characters and away
/// from the CA and server files.
fn check_client_name(name: &str) -> Result<(), CertsError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let invalid = |why: &str| {
        Err(CertsError::InvalidInput(format!(
            "invalid client name {name:?}: {why}"
        )))
    };
    if name.is_empty() || name.len() > 64 {
        return invalid("use 1 to 64 characters");
    }
    if !valid_chars || name.starts_with(['.', '-']) {
        return invalid("use letters, digits, '.', '_' and '-', not starting with '.' or '-'");
    }
    if matches!(name, "ca" | "server") || name.ends_with("-key") {
        return invalid("it would clash with the CA, server or key files; pick another name");
    }
    Ok(())
}

fn generate_error(what: &'static str, source: rcgen::Error) -> CertsError {
    CertsError::Generate { what, source }
}

/// Builds the report of a generation command from the written certificate.
fn described(
    der: &CertificateDer<'_>,
    cert: PathBuf,
    key: PathBuf,
) -> Result<Generated, CertsError> {
    let (_, x509) = X509Certificate::from_der(der.as_ref()).map_err(|err| {
        CertsError::parse(&cert, format!("generated certificate unreadable: {err}"))
    })?;
    Ok(Generated {
        subject: dn::rfc2253(x509.subject()),
        serial: x509.raw_serial_as_string(),
        not_after: x509.validity().not_after.to_datetime(),
        cert,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GenerateOptions {
        GenerateOptions::default()
    }

    #[test]
    fn generates_ca_server_and_client() {
        let dir = tempfile::tempdir().unwrap();
        let ca = init_ca(dir.path(), &opts()).unwrap();
        assert!(ca.subject.starts_with("CN=kgate CA "), "{}", ca.subject);
        assert!(ca.subject.ends_with(",O=kgate"), "{}", ca.subject);
        let days = (ca.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((3649..=3650).contains(&days), "{days}");

        let server = issue_server(
            dir.path(),
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            &opts(),
        )
        .unwrap();
        assert_eq!(server.subject, "CN=localhost,O=kgate");
        // The server file holds the leaf and the CA.
        let chain = crate::load::load_certs(&server.cert).unwrap();
        assert_eq!(chain.len(), 2);

        let client = issue_client(
            dir.path(),
            "alice",
            &GenerateOptions {
                days: Some(30),
                force: false,
            },
        )
        .unwrap();
        assert_eq!(client.subject, "CN=alice");
        assert_eq!(client.cert, dir.path().join("alice.pem"));
        assert_eq!(client.key, dir.path().join("alice-key.pem"));
        let days = (client.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((29..=30).contains(&days), "{days}");
    }

    #[test]
    fn serials_are_random_and_positive() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert_eq!(a[0] & 0x80, 0);
        assert_ne!(a[0], 0);
    }

    #[test]
    fn refuses_to_overwrite_ca_without_force() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), &opts()).unwrap();
        let before = std::fs::read(dir.path().join(CA_KEY_FILE)).unwrap();
        let err = init_ca(dir.path(), &opts()).unwrap_err();
        assert!(
            err.to_string().contains("already exists: pass --force"),
            "{err}"
        );
        assert_eq!(std::fs::read(dir.path().join(CA_KEY_FILE)).unwrap(), before);
        init_ca(
            dir.path(),
            &GenerateOptions {
                days: None,
                force: true,
            },
        )
        .unwrap();
        assert_ne!(std::fs::read(dir.path().join(CA_KEY_FILE)).unwrap(), before);
    }

    #[test]
    fn missing_ca_says_to_run_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = issue_client(dir.path(), "alice", &opts()).unwrap_err();
        let expected = format!(
            "{} not found: run `kgate certs init --dir {}` first",
            dir.path().join("ca.pem").display(),
            dir.path().display()
        );
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn leaf_may_not_outlive_ca() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(
            dir.path(),
            &GenerateOptions {
                days: Some(10),
                force: false,
            },
        )
        .unwrap();
        let err = issue_client(dir.path(), "bob", &opts()).unwrap_err();
        assert!(err.to_string().contains("pass --days 9 or less"), "{err}");
        issue_client(
            dir.path(),
            "bob",
            &GenerateOptions {
                days: Some(5),
                force: false,
            },
        )
        .unwrap();
    }

    #[test]
    fn rejects_bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), &opts()).unwrap();
        for bad in [
            "", "ca", "server", "x-key", "../evil", "a/b", ".hidden", "-x", "a b",
        ] {
            let err = issue_client(dir.path(), bad, &opts()).unwrap_err();
            assert!(matches!(err, CertsError::InvalidInput(_)), "{bad}: {err}");
        }
        assert!(issue_server(dir.path(), &[], &[], &opts()).is_err());
        assert!(issue_server(dir.path(), &["bad name".into()], &[], &opts()).is_err());
        assert!(issue_server(dir.path(), &["10.0.0.1".into()], &[], &opts()).is_err());
        for days in [Some(0), Some(MAX_DAYS + 1)] {
            assert!(init_ca(dir.path(), &GenerateOptions { days, force: true }).is_err());
        }
    }

    #[test]
    fn detects_ca_key_that_does_not_match() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), &opts()).unwrap();
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(dir.path().join(CA_KEY_FILE), other.serialize_pem()).unwrap();
        let err = issue_client(dir.path(), "carol", &opts()).unwrap_err();
        assert!(matches!(err, CertsError::KeyMismatch { .. }), "{err}");
    }
}
