//! The state as records, and back: a policy and a credential store become entries, a set of
//! entries becomes a policy and a credential store, and a change becomes the records that
//! make it (upserts for what is new or different, tombstones for what went).

use std::collections::BTreeMap;

use kgate_auth::CredentialStore;
use kgate_policies::Policy;
use tracing::warn;

use crate::record::{Entry, Record};

/// The entries of a policy.
pub fn policy_entries(policy: &Policy) -> Vec<Entry> {
    let mut out = Vec::with_capacity(policy.acls().len() + policy.role_bindings().len() + 1);
    out.push(Entry::AllowEveryoneIfNoAclFound(
        policy.allow_everyone_if_no_acl_found(),
    ));
    out.extend(policy.super_users().cloned().map(Entry::SuperUser));
    for (group, members) in policy.groups() {
        out.extend(members.iter().map(|m| Entry::Member {
            group: group.clone(),
            member: m.clone(),
        }));
    }
    out.extend(policy.acls().iter().cloned().map(Entry::Acl));
    out.extend(policy.role_bindings().iter().cloned().map(Entry::Role));
    out
}

/// The entries of a credential store.
pub fn credential_entries(store: &CredentialStore) -> Vec<Entry> {
    let mut out = Vec::with_capacity(store.len());
    for summary in store.list() {
        if let Some(user) = store.user(&summary.name) {
            out.extend(user.iter().map(|(mechanism, credential)| Entry::Scram {
                user: summary.name.clone(),
                mechanism,
                credential: credential.clone(),
            }));
        }
    }
    out
}

/// The records that turn `before` into `after`.
pub fn diff(before: &[Entry], after: &[Entry]) -> Vec<Record> {
    let old: BTreeMap<Vec<u8>, Vec<u8>> = before.iter().map(|e| (e.key(), e.value())).collect();
    let new: BTreeMap<Vec<u8>, Vec<u8>> = after.iter().map(|e| (e.key(), e.value())).collect();
    let mut out = Vec::new();
    for (k, v) in &new {
        if old.get(k) != Some(v) {
            out.push(Record {
                key: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.push(Record {
                key: k.clone(),
                value: None,
            });
        }
    }
    out
}

/// The entries read from the topic so far: the latest of each key.
#[derive(Debug, Default)]
pub struct State {
    entries: BTreeMap<Vec<u8>, Entry>,
}

impl State {
    /// Applies one record; returns whether it touched the policy (else the credentials).
    pub fn apply(&mut self, key: Vec<u8>, entry: Option<Entry>) -> bool {
        match entry {
            Some(e) => {
                let policy = e.is_policy();
                self.entries.insert(key, e);
                policy
            }
            None => self.entries.remove(&key).is_none_or(|e| e.is_policy()),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The policy the entries make. A membership the policy refuses is left out and logged
    /// (a record is checked when read, so this only happens with records of a newer kgate).
    pub fn policy(&self) -> Policy {
        let mut allow_everyone = false;
        let mut supers = Vec::new();
        let mut members = Vec::new();
        let mut acls = Vec::new();
        let mut roles = Vec::new();
        for e in self.entries.values() {
            match e {
                Entry::AllowEveryoneIfNoAclFound(b) => allow_everyone = *b,
                Entry::SuperUser(p) => supers.push(p.clone()),
                Entry::Member { group, member } => members.push((group.clone(), member.clone())),
                Entry::Acl(a) => acls.push(a.clone()),
                Entry::Role(r) => roles.push(r.clone()),
                Entry::Scram { .. } => {}
            }
        }
        // Memberships are checked on their own first, so that one bad record costs only them.
        if let Err(e) = Policy::from_parts(false, [], members.clone(), [], []) {
            warn!(error = %e, "a group membership in the state topic is invalid; memberships left out");
            members.clear();
        }
        Policy::from_parts(allow_everyone, supers, members, acls, roles).unwrap_or_default()
    }

    /// The credentials the entries make.
    pub fn credentials(&self) -> CredentialStore {
        let mut store = CredentialStore::new();
        for e in self.entries.values() {
            if let Entry::Scram {
                user,
                mechanism,
                credential,
            } = e
            {
                if let Err(error) = store.insert(user, *mechanism, credential.clone()) {
                    warn!(%error, "a user in the state topic has an invalid name; left out");
                }
            }
        }
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_auth::Mechanism;
    use kgate_policies::{AclBinding, AclBindingFilter};

    fn sample() -> (Policy, CredentialStore) {
        let policy = Policy::parse(
            r#"
version = 1
allow_everyone_if_no_acl_found = false
super_users = ["User:admin"]
[groups]
ops = ["User:alice", "User:bob"]
[[acl]]
principal = "Group:ops"
permission = "Allow"
operation = "Read"
resource_type = "Topic"
name = "orders"
[[role_binding]]
principal = "User:carol"
role = "DeveloperRead"
resource_type = "Topic"
pattern_type = "Prefixed"
name = "logs."
"#,
            std::path::Path::new("p.toml"),
        )
        .unwrap();
        let mut users = CredentialStore::new();
        users
            .set("alice", Mechanism::ScramSha512, b"pw", 4096)
            .unwrap();
        (policy, users)
    }

    fn replay(records: &[Record], state: &mut State) {
        for r in records {
            let entry = r
                .value
                .as_deref()
                .map(|v| Entry::decode(&r.key, v).unwrap());
            state.apply(r.key.clone(), entry);
        }
    }

    #[test]
    fn a_policy_and_users_survive_the_trip_through_records() {
        let (policy, users) = sample();
        let mut state = State::default();
        replay(&diff(&[], &policy_entries(&policy)), &mut state);
        replay(&diff(&[], &credential_entries(&users)), &mut state);
        assert_eq!(state.policy(), policy);
        assert_eq!(state.credentials(), users);
    }

    #[test]
    fn a_change_writes_only_what_changed_and_tombstones_what_went() {
        let (before, _) = sample();
        let mut after = before.clone();
        let removed = after.remove_acls(&AclBindingFilter::any());
        assert_eq!(removed.len(), 1);
        let extra: AclBinding =
            AclBinding::from_wire(2, "payments", 3, "User:dan", "*", 3, 3).unwrap();
        after.add_acl(extra);
        let records = diff(&policy_entries(&before), &policy_entries(&after));
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records.iter().filter(|r| r.value.is_none()).count(), 1);

        let mut state = State::default();
        replay(&diff(&[], &policy_entries(&before)), &mut state);
        replay(&records, &mut state);
        assert_eq!(state.policy(), after);
    }

    #[test]
    fn the_later_record_of_a_key_wins() {
        let (policy, _) = sample();
        let entries = policy_entries(&policy);
        let mut state = State::default();
        replay(&diff(&[], &entries), &mut state);
        replay(&diff(&entries, &[]), &mut state);
        assert_eq!(state.policy(), Policy::new());
        replay(&diff(&[], &entries), &mut state);
        assert_eq!(state.policy(), policy);
    }
}
