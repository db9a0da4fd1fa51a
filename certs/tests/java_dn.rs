//! Cross-check of the RFC 2253 rendering against Java itself.
//!
//! Kafka's principal is `X500Principal.getName()`; the surest test of "byte for byte" is to ask
//! a JVM. This test hands tricky DER names to `tests/java/DnCheck.java` (run with `java` as a
//! single-file program) and compares its output with `kgate_certs::rfc2253`. Without a `java`
//! on the PATH it says so and passes: the same expectations are pinned in `src/dn.rs`.
//!
//! Checked with OpenJDK 17. One known difference with JDK 25: it decodes BMPString values as
//! UTF-16, where JDK 17 (and kgate) read their bytes as UTF-8; that case is left out here.

use std::io::Write;
use std::process::{Command, Stdio};

use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        len @ 0..=0x7f => out.push(len as u8),
        len @ 0x80..=0xff => out.extend([0x81, len as u8]),
        len => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        body.extend(groups.iter().rev());
    }
    tlv(0x06, &body)
}

/// A Name from RDNs in DER order (most general first); each RDN is (OID, tag, value)s.
fn name(rdns: &[&[(&str, u8, &[u8])]]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (o, tag, value) in rdn.iter() {
            let mut atv = oid(o);
            atv.extend(tlv(*tag, value));
            set.extend(tlv(0x30, &atv));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const T61: u8 = 0x14;
const IA5: u8 = 0x16;
const UNIVERSAL: u8 = 0x1c;

fn cases() -> Vec<Vec<u8>> {
    let long = vec![b'x'; 200];
    vec![
        name(&[
            &[("2.5.4.6", PRINTABLE, b"GB")],
            &[("2.5.4.8", UTF8, b"Unknown")],
            &[("2.5.4.7", UTF8, b"London")],
            &[("2.5.4.10", UTF8, b"Example")],
            &[("2.5.4.11", UTF8, b"Ops")],
            &[("2.5.4.3", UTF8, b"writeuser")],
        ]),
        name(&[
            &[("2.5.4.10", UTF8, b"Sue, Grabbit and Runn")],
            &[("2.5.4.3", UTF8, b"a+b=c<d>e#f;g\"h\\i")],
        ]),
        name(&[&[("2.5.4.3", UTF8, b"#x")]]),
        name(&[&[("2.5.4.3", UTF8, b"  two  ")]]),
        name(&[&[("2.5.4.3", UTF8, b"\rx\r")]]),
        name(&[&[("2.5.4.3", UTF8, b"   ")]]),
        name(&[&[("2.5.4.3", UTF8, b"")]]),
        name(&[&[("2.5.4.3", UTF8, b"a\0b")]]),
        name(&[&[("2.5.4.3", UTF8, "Jürgen Müller 😀\ttab\nnl".as_bytes())]]),
        name(&[&[("2.5.4.3", UTF8, &[0x61, 0xff, 0x62])]]),
        name(&[
            &[("2.5.4.10", UTF8, b"Example")],
            &[("2.5.4.11", UTF8, b"Sales"), ("2.5.4.3", UTF8, b"J. Smith")],
        ]),
        name(&[&[("2.5.4.3", UTF8, b" lead"), ("2.5.4.3", UTF8, b"trail ")]]),
        name(&[
            &[("2.5.4.3", UTF8, b"alice")],
            &[("1.2.840.113549.1.9.1", IA5, b"alice@example.com")],
        ]),
        name(&[
            &[("2.5.4.5", PRINTABLE, b"42")],
            &[("2.5.4.12", UTF8, b"Dr")],
            &[("2.5.4.4", UTF8, b"Sur")],
            &[("2.5.4.42", UTF8, b"Given")],
            &[("2.5.4.9", UTF8, b"1 Main St")],
        ]),
        name(&[
            &[("0.9.2342.19200300.100.1.25", IA5, b"com")],
            &[("0.9.2342.19200300.100.1.25", IA5, b"example")],
            &[("0.9.2342.19200300.100.1.1", UTF8, b"jdoe")],
        ]),
        name(&[
            &[("2.5.4.3", T61, b"t61")],
            &[("2.5.4.3", UNIVERSAL, &[0, 0, 0, 0x41])],
            &[("2.5.4.3", 0x12, b"123")],
            &[("2.5.4.3", 0x1a, b"visible")],
            &[("2.5.4.3", 0x1b, b"general")],
            &[("2.5.4.3", 0x04, &[0xab, 0xcd])],
        ]),
        name(&[&[("1.2.3.4", UTF8, &long)]]),
        name(&[]),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rfc2253_matches_java_x500principal() {
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("skipped: no `java` on the PATH");
        return;
    }
    let cases = cases();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java/DnCheck.java");
    let mut child = Command::new("java")
        .arg(source)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for der in &cases {
            writeln!(stdin, "{}", hex(der)).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "java failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let java: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(java.len(), cases.len());
    for (der, java_hex) in cases.iter().zip(&java) {
        let (_, parsed) = X509Name::from_der(der).unwrap();
        let ours = kgate_certs::rfc2253(&parsed);
        assert_eq!(
            hex(ours.as_bytes()),
            *java_hex,
            "ours {ours:?} for DER {}",
            hex(der)
        );
    }
}
