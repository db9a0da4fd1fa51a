//! Kafka principals: `User:alice`, `User:*`, `Group:marketing`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// A Kafka principal, `Type:name`, exactly as Kafka writes it.
///
/// Kafka splits the string at the first `:` (so names may contain `:`) and compares type and
/// name case-sensitively. The only wildcard is `User:*`, which matches every session principal
/// whatever its type. `Group:name` names a group whose members the policy file lists.
///
/// A `Principal` is always well-formed: a non-empty type made of letters, digits and `_`, and a
/// non-empty name. `user:alice` is refused (it would silently never match `User:alice`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// The whole `Type:name` string: the form ACLs store and super users compare.
    text: Box<str>,
    /// Byte index of the first `:`, so that type and name are slices of `text`.
    colon: usize,
}

/// The principal type of users.
pub const USER_TYPE: &str = "User";
/// The principal type of groups.
pub const GROUP_TYPE: &str = "Group";

impl Principal {
    /// A principal from its parts, as authentication produces it (a SASL username, a mapped
    /// certificate subject); the name may contain `:`.
    ///
    /// # Errors
    /// An empty name or one with surrounding whitespace (it could not be written in a policy
    /// file, so no ACL could name it), or a type that is empty, not alphanumeric, or
    /// `user`/`group` in the wrong case.
    pub fn new(kind: &str, name: &str) -> Result<Self, ParseError> {
        let text = format!("{kind}:{name}");
        check_kind(kind, name, &text)?;
        if name.is_empty() || name.trim() != name {
            return Err(ParseError::PrincipalShape(text));
        }
        Ok(Principal {
            text: text.into(),
            colon: kind.len(),
        })
    }

    /// `User:<name>` (see [`Principal::new`]).
    ///
    /// # Errors
    /// When `name` is empty.
    pub fn user(name: &str) -> Result<Self, ParseError> {
        Self::new(USER_TYPE, name)
    }

    /// `Group:<name>` (see [`Principal::new`]).
    ///
    /// # Errors
    /// When `name` is empty.
    pub fn group(name: &str) -> Result<Self, ParseError> {
        Self::new(GROUP_TYPE, name)
    }

    /// `User:*`, the wildcard principal.
    pub fn wildcard() -> Self {
        Principal {
            text: "User:*".into(),
            colon: USER_TYPE.len(),
        }
    }

    /// The principal type, e.g. `User`.
    pub fn kind(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The name after the first `:`.
    pub fn name(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The `Type:name` string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is `User:*`.
    pub fn is_wildcard(&self) -> bool {
        &*self.text == "User:*"
    }

    /// Whether this is a `Group:` principal.
    pub fn is_group(&self) -> bool {
        self.kind() == GROUP_TYPE
    }
}

fn check_kind(kind: &str, name: &str, text: &str) -> Result<(), ParseError> {
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ParseError::PrincipalShape(text.to_owned()));
    }
    for expected in [USER_TYPE, GROUP_TYPE] {
        if kind != expected && kind.eq_ignore_ascii_case(expected) {
            return Err(ParseError::PrincipalCase {
                given: text.to_owned(),
                expected: format!("{expected}:{name}"),
            });
        }
    }
    Ok(())
}

/// Parses `Type:name` as written in policy files, the CLI and ACL admin requests: split at
/// the first `:`; surrounding spaces in the name are refused as a likely typo.
impl FromStr for Principal {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shape = || ParseError::PrincipalShape(s.to_owned());
        let colon = s.find(':').ok_or_else(shape)?;
        let (kind, name) = (&s[..colon], &s[colon + 1..]);
        check_kind(kind, name, s)?;
        if name.is_empty() || name.trim() != name {
            return Err(shape());
        }
        Ok(Principal {
            text: s.into(),
            colon,
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Principal({})", self.text)
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_colon() {
        let p: Principal = "User:CN=a:b,O=x".parse().unwrap();
        assert_eq!(p.kind(), "User");
        assert_eq!(p.name(), "CN=a:b,O=x");
        assert_eq!(p.to_string(), "User:CN=a:b,O=x");
    }

    #[test]
    fn recognises_the_wildcard_and_groups() {
        assert!("User:*".parse::<Principal>().unwrap().is_wildcard());
        assert!(!"Group:*".parse::<Principal>().unwrap().is_wildcard());
        assert!(Principal::group("marketing").unwrap().is_group());
        assert_eq!(Principal::wildcard(), "User:*".parse().unwrap());
    }

    #[test]
    fn accepts_custom_principal_types() {
        let p: Principal = "Service_1:billing".parse().unwrap();
        assert_eq!(p.kind(), "Service_1");
    }

    #[test]
    fn rejects_malformed_principals_with_a_fix() {
        for bad in ["alice", ":alice", "User:", "", "Us er:alice", "User: alice"] {
            let err = bad.parse::<Principal>().unwrap_err();
            assert!(err.to_string().contains("User:alice"), "{err}");
        }
    }

    #[test]
    fn rejects_a_wrongly_cased_type() {
        let err = "user:alice".parse::<Principal>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed principal `user:alice`: principal types are case-sensitive, write User:alice"
        );
        assert!("GROUP:x".parse::<Principal>().is_err());
    }

    #[test]
    fn built_principals_round_trip_through_their_text() {
        let p = Principal::user("CN=a b,O=c").unwrap();
        assert_eq!(p.as_str().parse::<Principal>().unwrap(), p);
        assert!(Principal::user(" spaced").is_err());
        assert!(Principal::user("").is_err());
        assert!(Principal::new("user", "a").is_err());
        assert_eq!(Principal::new("User", "a:b").unwrap().name(), "a:b");
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_ne!(
            "User:alice".parse::<Principal>().unwrap(),
            "User:Alice".parse::<Principal>().unwrap()
        );
    }
}
