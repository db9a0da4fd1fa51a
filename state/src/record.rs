//! What one record of the state topic holds, and its bytes.
//!
//! The key names the thing (a binding, a membership, a credential) so that compaction keeps
//! the latest record of each; the value is the thing's content, or nothing (a tombstone) once
//! it is deleted. Keys are JSON arrays of strings, `["acl", principal, permission, operation,
//! resource type, pattern type, name, host]`: unambiguous whatever the names contain, and
//! readable with any Kafka tool.

use kgate_auth::{Mechanism, ScramCredential};
use kgate_policies::{
    AclBinding, Host, Operation, PatternType, Permission, Principal, ResourcePattern, ResourceType,
    Role, RoleBinding,
};

/// One thing the state topic holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An ACL binding.
    Acl(AclBinding),
    /// A role binding.
    Role(RoleBinding),
    /// `member` belongs to `group`.
    Member {
        /// A `Group:` principal.
        group: Principal,
        /// A user.
        member: Principal,
    },
    /// A principal that bypasses every ACL.
    SuperUser(Principal),
    /// Kafka's `allow.everyone.if.no.acl.found`.
    AllowEveryoneIfNoAclFound(bool),
    /// One SCRAM credential of a user (salted keys only, never a password).
    Scram {
        /// The username.
        user: String,
        /// Which SCRAM.
        mechanism: Mechanism,
        /// Salt, StoredKey, ServerKey and iterations.
        credential: ScramCredential,
    },
}

/// A record as it goes to and comes from the topic: `value` is `None` for a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// What the record is about.
    pub key: Vec<u8>,
    /// Its content, or `None` when it was deleted.
    pub value: Option<Vec<u8>>,
}

/// A record kgate cannot read (written by another version, or by hand).
#[derive(Debug, thiserror::Error)]
#[error("unreadable state record {key}: {reason}")]
pub struct RecordError {
    /// The key, printable.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// The value of entries whose key says everything.
const PRESENT: &[u8] = b"1";

impl Entry {
    /// Whether the entry belongs to the policy (else to the credentials).
    pub fn is_policy(&self) -> bool {
        !matches!(self, Entry::Scram { .. })
    }

    /// The record key.
    pub fn key(&self) -> Vec<u8> {
        let parts: Vec<String> = match self {
            Entry::Acl(a) => vec![
                "acl".into(),
                a.principal.as_str().into(),
                a.permission.name().into(),
                a.operation.name().into(),
                a.pattern.resource_type().name().into(),
                a.pattern.pattern_type().name().into(),
                a.pattern.name().into(),
                a.host.to_string(),
            ],
            Entry::Role(b) => {
                let mut v = vec![
                    "role".into(),
                    b.principal().as_str().into(),
                    b.role().name().into(),
                ];
                if let Some(p) = b.resource() {
                    v.push(p.resource_type().name().into());
                    v.push(p.pattern_type().name().into());
                    v.push(p.name().into());
                }
                v
            }
            Entry::Member { group, member } => {
                vec![
                    "member".into(),
                    group.as_str().into(),
                    member.as_str().into(),
                ]
            }
            Entry::SuperUser(p) => vec!["super".into(), p.as_str().into()],
            Entry::AllowEveryoneIfNoAclFound(_) => {
                vec!["setting".into(), "allow_everyone_if_no_acl_found".into()]
            }
            Entry::Scram {
                user, mechanism, ..
            } => vec!["scram".into(), user.clone(), mechanism.name().into()],
        };
        // A Vec<String> always serializes.
        serde_json::to_vec(&parts).unwrap_or_default()
    }

    /// The record value.
    pub fn value(&self) -> Vec<u8> {
        match self {
            Entry::AllowEveryoneIfNoAclFound(b) => b.to_string().into_bytes(),
            Entry::Scram { credential, .. } => credential.to_kafka_string().into_bytes(),
            _ => PRESENT.to_vec(),
        }
    }

    /// The record that puts this entry in the topic.
    pub fn record(&self) -> Record {
        Record {
            key: self.key(),
            value: Some(self.value()),
        }
    }

    /// Reads a record back.
    ///
    /// # Errors
    /// A key or value kgate does not know how to read.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Entry, RecordError> {
        let printable = String::from_utf8_lossy(key).into_owned();
        let fail = |reason: String| RecordError {
            key: printable.chars().take(200).collect(),
            reason,
        };
        let parts: Vec<String> = serde_json::from_slice(key)
            .map_err(|e| fail(format!("key is not a JSON list: {e}")))?;
        let text = std::str::from_utf8(value).map_err(|_| fail("value is not UTF-8".into()))?;
        let p: Vec<&str> = parts.iter().map(String::as_str).collect();
        let parse = |e: kgate_policies::ParseError| fail(e.to_string());
        let entry = match p.as_slice() {
            ["acl", principal, permission, operation, rtype, ptype, name, host] => {
                let pattern = ResourcePattern::new(
                    rtype.parse::<ResourceType>().map_err(parse)?,
                    ptype.parse::<PatternType>().map_err(parse)?,
                    name,
                )
                .map_err(parse)?;
                Entry::Acl(AclBinding {
                    pattern,
                    principal: principal.parse().map_err(parse)?,
                    host: host.parse::<Host>().map_err(parse)?,
                    operation: operation.parse::<Operation>().map_err(parse)?,
                    permission: permission.parse::<Permission>().map_err(parse)?,
                })
            }
            ["role", principal, role, rest @ ..] => {
                let resource = match rest {
                    [] => None,
                    [rtype, ptype, name] => Some(
                        ResourcePattern::new(
                            rtype.parse::<ResourceType>().map_err(parse)?,
                            ptype.parse::<PatternType>().map_err(parse)?,
                            name,
                        )
                        .map_err(parse)?,
                    ),
                    _ => return Err(fail("a role binding's resource has 3 parts".into())),
                };
                Entry::Role(
                    RoleBinding::new(
                        principal.parse().map_err(parse)?,
                        role.parse::<Role>().map_err(parse)?,
                        resource,
                    )
                    .map_err(parse)?,
                )
            }
            ["member", group, member] => Entry::Member {
                group: group.parse().map_err(parse)?,
                member: member.parse().map_err(parse)?,
            },
            ["super", principal] => Entry::SuperUser(principal.parse().map_err(parse)?),
            ["setting", "allow_everyone_if_no_acl_found"] => match text {
                "true" => Entry::AllowEveryoneIfNoAclFound(true),
                "false" => Entry::AllowEveryoneIfNoAclFound(false),
                other => {
                    return Err(fail(format!(
                        "setting value {other:?} is not true or false"
                    )))
                }
            },
            ["scram", user, mechanism] => {
                let mechanism = Mechanism::from_name(mechanism)
                    .ok_or_else(|| fail(format!("unknown mechanism {mechanism:?}")))?;
                let credential = ScramCredential::from_kafka_string(mechanism, text)
                    .map_err(|e| fail(e.to_string()))?;
                Entry::Scram {
                    user: (*user).to_owned(),
                    mechanism,
                    credential,
                }
            }
            _ => return Err(fail("unknown kind of record".into())),
        };
        if !matches!(
            entry,
            Entry::AllowEveryoneIfNoAclFound(_) | Entry::Scram { .. }
        ) && value != PRESENT
        {
            return Err(fail("value is not the presence mark".into()));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(name: &str) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern::new(ResourceType::Topic, PatternType::Prefixed, name)
                .unwrap(),
            principal: "User:al\"ice,".parse().unwrap(),
            host: "10.0.0.1".parse().unwrap(),
            operation: Operation::Read,
            permission: Permission::Deny,
        }
    }

    #[test]
    fn every_kind_of_entry_reads_back_as_written() {
        let cred = ScramCredential::from_password(Mechanism::ScramSha256, b"pw", 4096).unwrap();
        let entries = [
            Entry::Acl(acl("a\",b]")),
            Entry::Role(
                RoleBinding::new(
                    "Group:ops".parse().unwrap(),
                    "Operator".parse().unwrap(),
                    None,
                )
                .unwrap(),
            ),
            Entry::Role(
                RoleBinding::new(
                    "User:bob".parse().unwrap(),
                    "DeveloperRead".parse().unwrap(),
                    Some(
                        ResourcePattern::new(ResourceType::Topic, PatternType::Literal, "t")
                            .unwrap(),
                    ),
                )
                .unwrap(),
            ),
            Entry::Member {
                group: "Group:ops".parse().unwrap(),
                member: "User:carol".parse().unwrap(),
            },
            Entry::SuperUser("User:admin".parse().unwrap()),
            Entry::AllowEveryoneIfNoAclFound(true),
            Entry::Scram {
                user: "dave".into(),
                mechanism: Mechanism::ScramSha256,
                credential: cred,
            },
        ];
        for e in entries {
            let r = e.record();
            let back = Entry::decode(&r.key, r.value.as_deref().unwrap()).unwrap();
            assert_eq!(back, e);
            assert_eq!(back.key(), r.key, "the key is canonical");
        }
    }

    #[test]
    fn different_bindings_have_different_keys() {
        assert_ne!(Entry::Acl(acl("x")).key(), Entry::Acl(acl("y")).key());
        let mut a = acl("x");
        a.permission = Permission::Allow;
        assert_ne!(Entry::Acl(a).key(), Entry::Acl(acl("x")).key());
    }

    #[test]
    fn unreadable_records_say_why() {
        for (key, value, want) in [
            (&b"not json"[..], &b"1"[..], "not a JSON list"),
            (br#"["acl","User:a"]"#, b"1", "unknown kind"),
            (
                br#"["acl","User:a","Allow","Fly","Topic","Literal","t","*"]"#,
                b"1",
                "unknown operation",
            ),
            (
                br#"["setting","allow_everyone_if_no_acl_found"]"#,
                b"yes",
                "not true or false",
            ),
            (br#"["scram","u","SCRAM-SHA-256"]"#, b"salt=", "salt"),
            (br#"["super","User:a"]"#, b"2", "presence"),
        ] {
            let e = Entry::decode(key, value).unwrap_err().to_string();
            assert!(e.to_lowercase().contains(&want.to_lowercase()), "{e}");
        }
    }
}
