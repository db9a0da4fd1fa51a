//! The committed test PKI (`testdata/`, see its README) loads, builds a server configuration
//! and yields the principals Java would.

use std::path::PathBuf;

use kgate_certs::{load_certs, PrincipalMapper, TlsConfigHandle, TlsSettings};

fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(file)
}

#[test]
fn committed_pki_builds_an_mtls_server_config() {
    let handle = TlsConfigHandle::load(TlsSettings {
        cert: testdata("server.pem"),
        key: testdata("server-key.pem"),
        client_ca: Some(testdata("ca.pem")),
    })
    .unwrap();
    assert!(handle.requires_client_certificate());
    assert_eq!(handle.certificate_chain().len(), 2);
}

#[test]
fn principals_of_committed_client_certificates() {
    let mapper = PrincipalMapper::default();
    let principal = |file: &str| {
        mapper
            .principal(&load_certs(&testdata(file)).unwrap()[0])
            .unwrap()
    };
    assert_eq!(principal("alice.pem"), "CN=alice");
    assert_eq!(principal("server.pem"), "CN=localhost,O=kgate");
    // The string OpenJDK 17's X500Principal.getName() gives for this certificate.
    assert_eq!(
        principal("tricky.pem"),
        r"1.2.840.113549.1.9.1=#1611736d697468406578616d706c652e636f6d,CN=Smith\+Jones\ ,OU=\#ops,O=Example\, Ltd,C=GB"
    );
    let rules: PrincipalMapper = r"RULE:^.*CN=((\\.|[^,\\])*),OU=.*$/$1/L,DEFAULT"
        .parse()
        .unwrap();
    let tricky = load_certs(&testdata("tricky.pem")).unwrap();
    assert_eq!(rules.principal(&tricky[0]).unwrap(), r"smith\+jones\ ");
}
