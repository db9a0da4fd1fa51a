//! Regenerates the committed test PKI in `certs/testdata/` (see `certs/testdata/README.md`).
//!
//! ```text
//! cargo run -p kgate-certs --example gen_test_pki
//! ```
//!
//! It writes what `kgate certs init|server|client` would (CA, server for localhost, client
//! `alice`), plus a second, unrelated CA with its own `alice` (`rogue/`), and a client whose
//! subject exercises RFC 2253 escaping (`tricky.pem`). Validity is as long as the crate allows so
//! that tests using these files do not start failing one day.

use std::path::{Path, PathBuf};

use kgate_certs::generate::{self, GenerateOptions, MAX_DAYS};
use rcgen::{CertificateParams, DnType, DnValue, ExtendedKeyUsagePurpose, Issuer, KeyPair};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata"));
    let ca_days = GenerateOptions {
        days: Some(MAX_DAYS),
        force: true,
    };
    let leaf_days = GenerateOptions {
        days: Some(MAX_DAYS - 1),
        force: true,
    };

    generate::init_ca(&dir, &ca_days)?;
    generate::issue_server(
        &dir,
        &["localhost".into()],
        &["127.0.0.1".parse()?, "::1".parse()?],
        &leaf_days,
    )?;
    generate::issue_client(&dir, "alice", &leaf_days)?;
    tricky_client(&dir)?;

    let rogue = dir.join("rogue");
    generate::init_ca(&rogue, &ca_days)?;
    generate::issue_client(&rogue, "alice", &leaf_days)?;

    println!("wrote the test PKI to {}", dir.display());
    Ok(())
}

/// A client certificate whose subject needs escaping and has a non-keyword attribute:
/// DER order C, O, OU, CN, emailAddress.
fn tricky_client(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca-key.pem"))?)?;
    let ca = Issuer::from_ca_cert_pem(&std::fs::read_to_string(dir.join("ca.pem"))?, ca_key)?;

    let mut params = CertificateParams::default();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(MAX_DAYS - 1));
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let dn = &mut params.distinguished_name;
    dn.remove(DnType::CommonName);
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("GB".try_into()?),
    );
    dn.push(DnType::OrganizationName, "Example, Ltd");
    dn.push(DnType::OrganizationalUnitName, "#ops");
    dn.push(DnType::CommonName, "Smith+Jones ");
    dn.push(
        DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
        DnValue::Ia5String("smith@example.com".try_into()?),
    );
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, &ca)?;
    std::fs::write(dir.join("tricky.pem"), cert.pem())?;
    std::fs::write(dir.join("tricky-key.pem"), key.serialize_pem())?;
    Ok(())
}
