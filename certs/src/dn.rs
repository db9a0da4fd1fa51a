//! The subject of a certificate as the string Kafka uses for principals.
//!
//! Kafka's `DefaultKafkaPrincipalBuilder` takes `X500Principal.getName()`, Java's RFC 2253
//! rendering, and feeds it to the `ssl.principal.mapping.rules`. ACLs written against Kafka
//! therefore name principals such as `User:CN=alice,OU=Ops,O=Example,C=GB`, and kgate must
//! produce the very same bytes or those ACLs silently stop matching. x509-parser's own
//! `Display` differs (other order, `, ` separators, other keywords), so the string is built
//! here following Java's rules (`sun.security.x509.AVA.toRFC2253String`):
//!
//! - RDNs from the most specific (last in the DER) to the most general, joined by `,` with
//!   no space; the values of a multi-valued RDN joined by `+` in their encoded order.
//! - Keywords only for CN, C, L, ST, O, OU, STREET, DC and UID; any other type (emailAddress,
//!   serialNumber, title, ...) as its dotted OID with the value as `#` plus the lowercase hex
//!   of its DER encoding (tag, length, content).
//! - A keyword value is shown as text when its ASN.1 type is PrintableString, T61String,
//!   IA5String, GeneralString, BMPString or UTF8String; its content bytes are decoded as
//!   UTF-8 whatever the type (Java does the same), invalid sequences becoming U+FFFD. Other
//!   types (for example a UniversalString) fall back to `#hex`.
//! - In text values, each of `, = + < > # ; " \` is preceded by a backslash (anywhere in the
//!   value, which is more than RFC 2253 requires but what Java prints), NUL becomes `\00`,
//!   and leading or trailing spaces and carriage returns are each preceded by a backslash.
//!
//! `tests/java_dn.rs` compares this rendering with a JVM's `X500Principal.getName()` byte for
//! byte (OpenJDK 17). Newer JDKs (25) decode BMPString values as UTF-16 instead; such subjects
//! are rare and follow the JDK 17 behaviour here.

use rustls::pki_types::CertificateDer;
use x509_parser::der_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Attribute types that Java prints with a keyword in RFC 2253 form, by dotted OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.25", "DC"),
];

/// Characters Java escapes with a backslash wherever they occur in a value.
const ESCAPED: &[char] = &[',', '=', '+', '<', '>', '#', ';', '"', '\\'];

/// Why a peer certificate yields no distinguished name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrincipalError {
    /// The peer presented no certificate (only possible when client auth is optional).
    #[error("the client presented no certificate")]
    NoCertificate,
    /// The certificate is not parseable X.509 (cannot happen after rustls verified it, but
    /// the bytes came from the network, so it is an error rather than a panic).
    #[error("the client certificate cannot be parsed: {0}")]
    Unparseable(String),
    /// No mapping rule matched the distinguished name; Kafka rejects the connection.
    #[error("no ssl.principal.mapping.rules rule matches {dn:?}")]
    NoMatchingRule {
        /// The distinguished name that no rule matched.
        dn: String,
    },
}

/// The RFC 2253 subject of a DER certificate, as Java's `X500Principal.getName()` prints it.
///
/// # Errors
///
/// [`PrincipalError::Unparseable`] if the bytes are not an X.509 certificate.
pub fn subject_rfc2253(cert: &CertificateDer<'_>) -> Result<String, PrincipalError> {
    let (_, x509) = X509Certificate::from_der(cert.as_ref())
        .map_err(|err| PrincipalError::Unparseable(err.to_string()))?;
    Ok(rfc2253(x509.subject()))
}

/// Renders a parsed X.500 name as Java's `X500Principal.getName()` does (see the module doc).
pub fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::with_capacity(name.as_raw().len() + 16);
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, ava) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            push_ava(&mut out, ava);
        }
    }
    out
}

/// Appends one `type=value`.
fn push_ava(out: &mut String, ava: &AttributeTypeAndValue<'_>) {
    let oid = ava.attr_type().to_id_string();
    let keyword = KEYWORDS
        .iter()
        .find(|(known, _)| *known == oid)
        .map(|(_, keyword)| *keyword);
    let value = ava.attr_value();
    match keyword {
        Some(keyword) if is_text(value) => {
            out.push_str(keyword);
            out.push('=');
            push_escaped(out, &String::from_utf8_lossy(value.data));
        }
        Some(keyword) => {
            out.push_str(keyword);
            out.push('=');
            push_hex_der(out, value);
        }
        None => {
            out.push_str(&oid);
            out.push('=');
            push_hex_der(out, value);
        }
    }
}

/// The string types Java renders as text in RFC 2253 (non-canonical) form.
fn is_text(value: &Any<'_>) -> bool {
    value.header.class() == Class::Universal
        && matches!(
            value.header.tag(),
            Tag::PrintableString
                | Tag::T61String
                | Tag::Ia5String
                | Tag::GeneralString
                | Tag::BmpString
                | Tag::Utf8String
        )
}

/// Appends a text value with Java's escaping.
fn push_escaped(out: &mut String, value: &str) {
    let is_blank = |c: char| c == ' ' || c == '\r';
    let chars: Vec<char> = value.chars().collect();
    // Escaped characters count as non-blank, so only literal blanks at either end get a
    // backslash (Java escapes first, then looks for leading and trailing blanks).
    let lead = chars.iter().take_while(|c| is_blank(**c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| is_blank(**c)).count();
    for (i, c) in chars.iter().copied().enumerate() {
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if ESCAPED.contains(&c) || i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends `#` and the lowercase hex of the value's DER encoding, as Java's
/// `DerValue.toByteArray()` re-encodes it (minimal length form).
fn push_hex_der(out: &mut String, value: &Any<'_>) {
    use std::fmt::Write as _;
    out.push('#');
    let mut der = Vec::with_capacity(value.data.len() + 6);
    let class_bits: u8 = match value.header.class() {
        Class::Universal => 0x00,
        Class::Application => 0x40,
        Class::ContextSpecific => 0x80,
        Class::Private => 0xc0,
    };
    let constructed: u8 = if value.header.is_constructed() {
        0x20
    } else {
        0
    };
    let tag = value.header.tag().0;
    if tag < 31 {
        der.push(class_bits | constructed | tag as u8);
    } else {
        der.push(class_bits | constructed | 0x1f);
        let mut groups = Vec::new();
        let mut t = tag;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (k, g) in groups.iter().rev().enumerate() {
            der.push(if k + 1 < groups.len() { g | 0x80 } else { *g });
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        der.push(0x80 | (bytes.len() - skip) as u8);
        der.extend_from_slice(&bytes[skip..]);
    }
    der.extend_from_slice(value.data);
    for b in der {
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny DER writer for hand-made names: the cases rcgen cannot produce (multi-valued
    /// RDNs, arbitrary string types) are exactly the interesting ones.
    pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    pub(crate) fn oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
        let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &arc in &arcs[2..] {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut a = arc >> 7;
            while a > 0 {
                groups.push((a & 0x7f) as u8 | 0x80);
                a >>= 7;
            }
            body.extend(groups.iter().rev());
        }
        tlv(0x06, &body)
    }

    /// One attribute: (dotted OID, string tag, raw value bytes).
    pub(crate) type Ava<'a> = (&'a str, u8, &'a [u8]);

    /// DER of a Name: RDNs in DER order (most general first), each a set of attributes.
    pub(crate) fn name_der(rdns: &[&[Ava<'_>]]) -> Vec<u8> {
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
    const IA5: u8 = 0x16;
    const BMP: u8 = 0x1e;

    fn render(rdns: &[&[Ava<'_>]]) -> String {
        let der = name_der(rdns);
        let (rest, name) = X509Name::from_der(&der).unwrap();
        assert!(rest.is_empty());
        rfc2253(&name)
    }

    #[test]
    fn orders_most_specific_first_without_spaces() {
        let dn = render(&[
            &[("2.5.4.6", PRINTABLE, b"Unknown")],
            &[("2.5.4.8", UTF8, b"Unknown")],
            &[("2.5.4.7", UTF8, b"Unknown")],
            &[("2.5.4.10", UTF8, b"Unknown")],
            &[("2.5.4.11", UTF8, b"Unknown")],
            &[("2.5.4.3", UTF8, b"writeuser")],
        ]);
        assert_eq!(
            dn,
            "CN=writeuser,OU=Unknown,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"
        );
    }

    #[test]
    fn escapes_specials_anywhere_in_value() {
        let dn = render(&[
            &[("2.5.4.10", UTF8, b"Sue, Grabbit and Runn")],
            &[("2.5.4.3", UTF8, b"a+b=c<d>e#f;g\"h\\i")],
        ]);
        assert_eq!(
            dn,
            r#"CN=a\+b\=c\<d\>e\#f\;g\"h\\i,O=Sue\, Grabbit and Runn"#
        );
    }

    #[test]
    fn escapes_leading_hash_and_blanks_at_both_ends() {
        assert_eq!(render(&[&[("2.5.4.3", UTF8, b"#x")]]), r"CN=\#x");
        assert_eq!(
            render(&[&[("2.5.4.3", UTF8, b"  two  ")]]),
            r"CN=\ \ two\ \ "
        );
        assert_eq!(render(&[&[("2.5.4.3", UTF8, b"in side")]]), "CN=in side");
        assert_eq!(render(&[&[("2.5.4.3", UTF8, b"\rx\r")]]), "CN=\\\rx\\\r");
        assert_eq!(render(&[&[("2.5.4.3", UTF8, b"   ")]]), r"CN=\ \ \ ");
        assert_eq!(render(&[&[("2.5.4.3", UTF8, b"")]]), "CN=");
        assert_eq!(render(&[&[("2.5.4.3", UTF8, b"a\0b")]]), r"CN=a\00b");
    }

    #[test]
    fn keeps_non_ascii_text_as_is() {
        let dn = render(&[&[("2.5.4.3", UTF8, "Jürgen Müller".as_bytes())]]);
        assert_eq!(dn, "CN=Jürgen Müller");
    }

    #[test]
    fn joins_multi_valued_rdn_with_plus_in_encoded_order() {
        let dn = render(&[
            &[("2.5.4.10", UTF8, b"Example")],
            &[("2.5.4.11", UTF8, b"Sales"), ("2.5.4.3", UTF8, b"J. Smith")],
        ]);
        assert_eq!(dn, "OU=Sales+CN=J. Smith,O=Example");
    }

    #[test]
    fn renders_unknown_types_as_oid_and_hex_der() {
        // emailAddress (IA5String) is not an RFC 2253 keyword.
        let dn = render(&[
            &[("2.5.4.3", UTF8, b"alice")],
            &[("1.2.840.113549.1.9.1", IA5, b"a@b.c")],
        ]);
        assert_eq!(dn, "1.2.840.113549.1.9.1=#16056140622e63,CN=alice");
        // serialNumber and title also have no RFC 2253 keyword.
        let dn = render(&[
            &[("2.5.4.5", PRINTABLE, b"42")],
            &[("2.5.4.12", UTF8, b"Dr")],
        ]);
        assert_eq!(dn, "2.5.4.12=#0c024472,2.5.4.5=#13023432");
    }

    #[test]
    fn renders_dc_and_uid_with_keywords() {
        let dn = render(&[
            &[("0.9.2342.19200300.100.1.25", IA5, b"com")],
            &[("0.9.2342.19200300.100.1.25", IA5, b"example")],
            &[("0.9.2342.19200300.100.1.1", UTF8, b"jdoe")],
        ]);
        assert_eq!(dn, "UID=jdoe,DC=example,DC=com");
    }

    #[test]
    fn decodes_bmp_string_bytes_as_utf8_like_java() {
        // Java decodes the content bytes of every string type as UTF-8: "A" in UCS-2 is 00 41.
        assert_eq!(render(&[&[("2.5.4.3", BMP, &[0x00, 0x41])]]), r"CN=\00A");
    }

    #[test]
    fn renders_keyword_with_non_string_value_as_hex() {
        // An OCTET STRING in a CN is not text for Java.
        assert_eq!(
            render(&[&[("2.5.4.3", 0x04, &[0xab, 0xcd])]]),
            "CN=#0402abcd"
        );
    }

    #[test]
    fn hex_uses_long_form_length_when_needed() {
        let long = vec![b'x'; 200];
        let dn = render(&[&[("1.2.3.4", UTF8, &long)]]);
        assert_eq!(dn, format!("1.2.3.4=#0c81c8{}", "78".repeat(200)));
    }

    #[test]
    fn empty_name_is_empty_string() {
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn reads_subject_of_a_certificate() {
        assert!(matches!(
            subject_rfc2253(&CertificateDer::from(vec![1, 2, 3])),
            Err(PrincipalError::Unparseable(_))
        ));
    }
}
