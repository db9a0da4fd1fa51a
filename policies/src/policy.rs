//! The policy: ACL bindings, role bindings, group membership, super users and the
//! no-ACL default, and its one human-readable TOML file.
//!
//! # Format
//! ```toml
//! version = 1
//! allow_everyone_if_no_acl_found = false   # Kafka's allow.everyone.if.no.acl.found
//! super_users = ["User:admin"]             # bypass every ACL, DENY included
//!
//! [groups]                                 # Group:marketing has these members
//! marketing = ["User:alice", "User:carol"]
//!
//! [[acl]]                                  # one Kafka ACL binding
//! principal = "Group:marketing"
//! permission = "Allow"                     # Allow | Deny
//! operation = "Read"                       # Read, Write, ..., All
//! resource_type = "Topic"                  # Topic, Group, Cluster, TransactionalId, ...
//! pattern_type = "Literal"                 # Literal (default) | Prefixed
//! name = "customer_feedback"               # `*` (literal) is every name
//! host = "*"                               # default `*`; else one exact IP
//!
//! [[role_binding]]                         # a role from roles.toml
//! principal = "Group:admins"
//! role = "SystemAdmin"                     # no resource: the whole cluster
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::{
    AclBinding, AclBindingFilter, Host, Operation, ParseError, PatternType, Permission,
    PolicyError, Principal, ResourcePattern, ResourceType, Role, RoleBinding, CLUSTER_NAME,
};

/// The file format version kgate writes.
pub const FORMAT_VERSION: i64 = 1;

/// Everything that decides authorization. Kept valid by its methods: groups are `Group:`
/// principals whose members are neither groups nor `User:*`; no binding appears twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Kafka's `allow.everyone.if.no.acl.found`: allow when no rule at all covers the resource.
    allow_everyone_if_no_acl_found: bool,
    /// Principals (or groups) that bypass every rule, DENY included.
    super_users: BTreeSet<Principal>,
    /// Group → members.
    groups: BTreeMap<Principal, BTreeSet<Principal>>,
    /// ACL bindings in file order.
    acls: Vec<AclBinding>,
    /// Role bindings in file order.
    role_bindings: Vec<RoleBinding>,
}

impl Policy {
    /// An empty policy: everything denied but to super users.
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy from all its parts at once, in linear time (the shared state topic holds
    /// 100,000 bindings; adding them one by one checks each against all before it).
    /// Duplicates are dropped; ACL and role bindings keep the order given.
    ///
    /// # Errors
    /// A membership whose group is not a `Group:` principal or whose member is a group or
    /// `User:*`.
    pub fn from_parts(
        allow_everyone_if_no_acl_found: bool,
        super_users: impl IntoIterator<Item = Principal>,
        memberships: impl IntoIterator<Item = (Principal, Principal)>,
        acls: impl IntoIterator<Item = AclBinding>,
        role_bindings: impl IntoIterator<Item = RoleBinding>,
    ) -> Result<Policy, ParseError> {
        let mut groups: BTreeMap<Principal, BTreeSet<Principal>> = BTreeMap::new();
        for (group, member) in memberships {
            check_membership(&group, &member)?;
            groups.entry(group).or_default().insert(member);
        }
        let mut seen = std::collections::HashSet::new();
        let acls = acls
            .into_iter()
            .filter(|a| seen.insert(a.clone()))
            .collect();
        let mut seen_roles = std::collections::HashSet::new();
        let role_bindings = role_bindings
            .into_iter()
            .filter(|b| seen_roles.insert(b.clone()))
            .collect();
        Ok(Policy {
            allow_everyone_if_no_acl_found,
            super_users: super_users.into_iter().collect(),
            groups,
            acls,
            role_bindings,
        })
    }

    /// Kafka's `allow.everyone.if.no.acl.found`.
    pub fn allow_everyone_if_no_acl_found(&self) -> bool {
        self.allow_everyone_if_no_acl_found
    }

    /// Sets Kafka's `allow.everyone.if.no.acl.found`.
    pub fn set_allow_everyone_if_no_acl_found(&mut self, allow: bool) {
        self.allow_everyone_if_no_acl_found = allow;
    }

    /// The super users.
    pub fn super_users(&self) -> impl Iterator<Item = &Principal> {
        self.super_users.iter()
    }

    /// Adds a super user; `false` if it already was one.
    pub fn add_super_user(&mut self, principal: Principal) -> bool {
        self.super_users.insert(principal)
    }

    /// Removes a super user; `false` if it was not one.
    pub fn remove_super_user(&mut self, principal: &Principal) -> bool {
        self.super_users.remove(principal)
    }

    /// Groups and their members.
    pub fn groups(&self) -> impl Iterator<Item = (&Principal, &BTreeSet<Principal>)> {
        self.groups.iter()
    }

    /// The groups `member` belongs to.
    pub fn groups_of<'a>(&'a self, member: &'a Principal) -> impl Iterator<Item = &'a Principal> {
        self.groups
            .iter()
            .filter(move |(_, m)| m.contains(member))
            .map(|(g, _)| g)
    }

    /// Adds `member` to `group`; `Ok(false)` if it already was a member.
    ///
    /// # Errors
    /// When `group` is not a `Group:` principal, or `member` is a group or `User:*`.
    pub fn add_member(&mut self, group: Principal, member: Principal) -> Result<bool, ParseError> {
        check_membership(&group, &member)?;
        Ok(self.groups.entry(group).or_default().insert(member))
    }

    /// Removes `member` from `group`; `false` if it was not a member. An emptied group goes.
    pub fn remove_member(&mut self, group: &Principal, member: &Principal) -> bool {
        let Some(members) = self.groups.get_mut(group) else {
            return false;
        };
        let removed = members.remove(member);
        if members.is_empty() {
            self.groups.remove(group);
        }
        removed
    }

    /// The ACL bindings.
    pub fn acls(&self) -> &[AclBinding] {
        &self.acls
    }

    /// Adds an ACL binding; `false` if it already existed (a no-op, as in Kafka).
    pub fn add_acl(&mut self, acl: AclBinding) -> bool {
        if self.acls.contains(&acl) {
            return false;
        }
        self.acls.push(acl);
        true
    }

    /// The ACL bindings `filter` matches, in file order.
    pub fn matching_acls<'a>(
        &'a self,
        filter: &'a AclBindingFilter,
    ) -> impl Iterator<Item = &'a AclBinding> {
        self.acls.iter().filter(move |a| filter.matches(a))
    }

    /// Removes and returns the ACL bindings `filter` matches.
    pub fn remove_acls(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let (removed, kept) = std::mem::take(&mut self.acls)
            .into_iter()
            .partition(|a| filter.matches(a));
        self.acls = kept;
        removed
    }

    /// The role bindings.
    pub fn role_bindings(&self) -> &[RoleBinding] {
        &self.role_bindings
    }

    /// Adds a role binding; `false` if it already existed.
    pub fn bind_role(&mut self, binding: RoleBinding) -> bool {
        if self.role_bindings.contains(&binding) {
            return false;
        }
        self.role_bindings.push(binding);
        true
    }

    /// Removes a role binding; `false` if there was none.
    pub fn unbind_role(&mut self, binding: &RoleBinding) -> bool {
        let before = self.role_bindings.len();
        self.role_bindings.retain(|b| b != binding);
        before != self.role_bindings.len()
    }

    // === file ===

    /// Reads and parses a policy file.
    ///
    /// # Errors
    /// [`PolicyError::Io`] when unreadable, [`PolicyError::Invalid`] with line, column and
    /// reason when any value is wrong. Nothing is half-loaded.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = fs::read_to_string(path).map_err(|source| PolicyError::Io {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses policy text; `file` only names it in errors.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] with the place of the first wrong value.
    pub fn parse(text: &str, file: &Path) -> Result<Policy, PolicyError> {
        let invalid = |span: Option<Range<usize>>, reason: String| {
            let (line, column) = line_column(text, span.map_or(0, |s| s.start));
            PolicyError::Invalid {
                file: file.to_owned(),
                line,
                column,
                reason,
            }
        };
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim().to_owned()))?;
        let at = |span: Range<usize>| move |e: ParseError| invalid(Some(span), e.to_string());

        if let Some(v) = &raw.version {
            if *v.get_ref() != FORMAT_VERSION {
                return Err(invalid(
                    Some(v.span()),
                    format!("unsupported policy file version {}: this kgate reads version {FORMAT_VERSION}", v.get_ref()),
                ));
            }
        }
        let mut policy = Policy::new();
        policy.allow_everyone_if_no_acl_found = raw.allow_everyone_if_no_acl_found;
        for s in raw.super_users {
            policy
                .super_users
                .insert(s.get_ref().parse().map_err(at(s.span()))?);
        }
        for (name, members) in raw.groups {
            let group = group_from_key(&name).map_err(at(members.span()))?;
            let span = members.span();
            let members = members.into_inner();
            if members.is_empty() {
                policy.groups.entry(group.clone()).or_default();
            }
            for m in members {
                let member: Principal = m.get_ref().parse().map_err(at(m.span()))?;
                policy
                    .add_member(group.clone(), member)
                    .map_err(at(span.clone()))?;
            }
        }
        for acl in raw.acl {
            let span = acl.span();
            let acl = acl.into_inner();
            let resource_type: ResourceType = parse_field(&acl.resource_type, &invalid)?;
            let pattern_type = match &acl.pattern_type {
                Some(p) => parse_field(p, &invalid)?,
                None => PatternType::Literal,
            };
            let pattern = resource_pattern(resource_type, pattern_type, acl.name.as_ref())
                .map_err(|e| {
                    invalid(
                        Some(acl.name.as_ref().map_or(span.clone(), Spanned::span)),
                        e,
                    )
                })?;
            let binding = AclBinding {
                pattern,
                principal: parse_field(&acl.principal, &invalid)?,
                host: match &acl.host {
                    Some(h) => parse_field(h, &invalid)?,
                    None => Host::Any,
                },
                operation: parse_field::<Operation>(&acl.operation, &invalid)?,
                permission: parse_field::<Permission>(&acl.permission, &invalid)?,
            };
            policy.add_acl(binding);
        }
        for rb in raw.role_binding {
            let span = rb.span();
            let rb = rb.into_inner();
            let role: Role = parse_field(&rb.role, &invalid)?;
            let principal: Principal = parse_field(&rb.principal, &invalid)?;
            let resource = match &rb.resource_type {
                None => {
                    if let Some(n) = rb.name.as_ref().or(rb.pattern_type.as_ref()) {
                        return Err(invalid(
                            Some(n.span()),
                            "a role binding with a name or pattern_type needs a resource_type (or drop them to bind on the whole cluster)".into(),
                        ));
                    }
                    None
                }
                Some(t) => {
                    let resource_type: ResourceType = parse_field(t, &invalid)?;
                    let pattern_type = match &rb.pattern_type {
                        Some(p) => parse_field(p, &invalid)?,
                        None => PatternType::Literal,
                    };
                    Some(
                        resource_pattern(resource_type, pattern_type, rb.name.as_ref()).map_err(
                            |e| {
                                invalid(
                                    Some(rb.name.as_ref().map_or(span.clone(), Spanned::span)),
                                    e,
                                )
                            },
                        )?,
                    )
                }
            };
            let binding = RoleBinding::new(principal, role, resource).map_err(at(span))?;
            policy.bind_role(binding);
        }
        Ok(policy)
    }

    /// Writes the policy atomically: a temporary file in the same directory, fsync, rename
    /// over `path`, fsync of the directory. Readers see the old file or the new one, never a
    /// mix. Comments at the top of the old file and above `[groups]` and above each table
    /// still in the policy are kept; comments at the end of a line are not.
    ///
    /// # Errors
    /// [`PolicyError::Io`]; `path` is then unchanged.
    pub fn save(&self, path: &Path) -> Result<(), PolicyError> {
        // Comments an operator wrote are kept: those at the top, above [groups], and above
        // each [[acl]] and [[role_binding]] that is still there.
        let comments = fs::read_to_string(path)
            .map(|old| Comments::of(&old))
            .unwrap_or_default();
        write_atomically(path, self.to_toml_with(comments).as_bytes()).map_err(|source| {
            PolicyError::Io {
                file: path.to_owned(),
                source,
            }
        })
    }

    /// The policy as file text, in a stable order.
    pub fn to_toml(&self) -> String {
        self.to_toml_with(Comments::default())
    }

    fn to_toml_with(&self, mut comments: Comments) -> String {
        let mut s = String::new();
        if comments.header.is_empty() {
            s.push_str("# kgate policy: Kafka ACL bindings, role bindings and group membership.\n");
            s.push_str(
                "# Written by kgate; edit freely (comments at the top and above each table are kept).\n",
            );
        } else {
            s.push_str(&comments.header);
        }
        let _ = writeln!(s, "version = {FORMAT_VERSION}");
        let _ = writeln!(
            s,
            "allow_everyone_if_no_acl_found = {}",
            self.allow_everyone_if_no_acl_found
        );
        let supers: Vec<String> = self.super_users.iter().map(|p| quote(p.as_str())).collect();
        let _ = writeln!(s, "super_users = [{}]", supers.join(", "));
        if !self.groups.is_empty() {
            s.push('\n');
            s.push_str(&comments.groups);
            s.push_str("[groups]\n");
            for (g, members) in &self.groups {
                let m: Vec<String> = members.iter().map(|p| quote(p.as_str())).collect();
                let _ = writeln!(s, "{} = [{}]", quote(g.name()), m.join(", "));
            }
        }
        for a in &self.acls {
            s.push('\n');
            s.push_str(&comments.take_acl(a));
            s.push_str("[[acl]]\n");
            let _ = writeln!(s, "principal = {}", quote(a.principal.as_str()));
            let _ = writeln!(s, "permission = {}", quote(a.permission.name()));
            let _ = writeln!(s, "operation = {}", quote(a.operation.name()));
            write_pattern(&mut s, &a.pattern);
            let _ = writeln!(s, "host = {}", quote(&a.host.to_string()));
        }
        for b in &self.role_bindings {
            s.push('\n');
            s.push_str(&comments.take_role(b));
            s.push_str("[[role_binding]]\n");
            let _ = writeln!(s, "principal = {}", quote(b.principal().as_str()));
            let _ = writeln!(s, "role = {}", quote(b.role().name()));
            if let Some(p) = b.resource() {
                write_pattern(&mut s, p);
            }
        }
        if !comments.footer.is_empty() {
            s.push('\n');
            s.push_str(&comments.footer);
        }
        s
    }
}

fn write_pattern(s: &mut String, p: &ResourcePattern) {
    let _ = writeln!(s, "resource_type = {}", quote(p.resource_type().name()));
    let _ = writeln!(s, "pattern_type = {}", quote(p.pattern_type().name()));
    let _ = writeln!(s, "name = {}", quote(p.name()));
}

fn check_membership(group: &Principal, member: &Principal) -> Result<(), ParseError> {
    if !group.is_group() {
        return Err(ParseError::Group(format!(
            "`{group}` is not a group: write Group:name"
        )));
    }
    if member.is_group() || member.is_wildcard() {
        return Err(ParseError::Group(format!(
            "`{member}` cannot be a member of {group}: members are users (groups do not nest; User:* already matches everyone)"
        )));
    }
    Ok(())
}

/// A `[groups]` key: `marketing` or `Group:marketing`.
fn group_from_key(key: &str) -> Result<Principal, ParseError> {
    let name = key.strip_prefix("Group:").unwrap_or(key);
    Principal::group(name).map_err(|_| ParseError::Group(format!("`{key}` is not a group name")))
}

/// A pattern from file fields; a cluster pattern may omit its name.
fn resource_pattern(
    t: ResourceType,
    p: PatternType,
    name: Option<&Spanned<String>>,
) -> Result<ResourcePattern, String> {
    match (name, t) {
        (Some(n), _) => ResourcePattern::new(t, p, n.get_ref()).map_err(|e| e.to_string()),
        (None, ResourceType::Cluster) => {
            ResourcePattern::new(t, p, CLUSTER_NAME).map_err(|e| e.to_string())
        }
        (None, _) => Err(format!(
            "missing field `name`: the {t} name (or prefix) this rule is about"
        )),
    }
}

fn parse_field<T: std::str::FromStr<Err = ParseError>>(
    field: &Spanned<String>,
    invalid: &impl Fn(Option<Range<usize>>, String) -> PolicyError,
) -> Result<T, PolicyError> {
    field
        .get_ref()
        .parse()
        .map_err(|e: ParseError| invalid(Some(field.span()), e.to_string()))
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An exclusive lock on a policy file's changes, across processes: `kgate acl`, `kgate role`
/// and the gateway (CreateAcls, DeleteAcls) each read, change and write the whole file, and
/// without the lock two of them at once would lose one change. Held until dropped.
///
/// The lock is on `<file>.lock` beside the policy, not on the policy itself, because every
/// write replaces the policy file with a new one.
#[derive(Debug)]
pub struct PolicyLock {
    _lock: kgate_fsutil::FileLock,
}

impl PolicyLock {
    /// Waits for the lock of `policy`'s changes (the CLI: as long as it takes).
    ///
    /// # Errors
    /// [`PolicyError::Io`] naming the lock file when it cannot be opened or locked.
    pub fn acquire(policy: &Path) -> Result<Self, PolicyError> {
        Self::acquire_within(policy, None)
    }

    /// Waits at most `limit` for the lock (the gateway: a request must not wait on a stopped
    /// `kgate acl` forever).
    ///
    /// # Errors
    /// [`PolicyError::Io`] naming the lock file, also when `limit` passes.
    pub fn acquire_within(policy: &Path, limit: Option<Duration>) -> Result<Self, PolicyError> {
        kgate_fsutil::FileLock::acquire(policy, limit)
            .map(|lock| Self { _lock: lock })
            .map_err(|source| PolicyError::Io {
                file: kgate_fsutil::lock_path(policy),
                source,
            })
    }
}

/// The comments of a policy file, found again by what they sit above.
#[derive(Debug, Default)]
struct Comments {
    /// The comment lines at the top, before the first setting.
    header: String,
    /// Above `[groups]`.
    groups: String,
    /// Above each `[[acl]]`, with the binding it describes.
    acls: Vec<(AclBinding, String)>,
    /// Above each `[[role_binding]]`.
    roles: Vec<(RoleBinding, String)>,
    /// After the last table (e.g. bindings an operator parked as comments).
    footer: String,
}

impl Comments {
    /// Reads the comments of `old`, a policy file's text; what cannot be read is left out.
    fn of(old: &str) -> Comments {
        let mut out = Comments::default();
        let mut pending = String::new();
        let mut seen_setting = false;
        // (header line, body, comments above)
        let mut tables: Vec<(String, String, String)> = Vec::new();
        for line in old.lines() {
            let t = line.trim();
            if t.starts_with('#') || t.is_empty() {
                if !t.is_empty() || !pending.is_empty() {
                    pending.push_str(line);
                    pending.push('\n');
                }
                continue;
            }
            if t.starts_with('[') {
                let above = std::mem::take(&mut pending).trim_end().to_owned();
                let above = if above.is_empty() {
                    above
                } else {
                    above + "\n"
                };
                // `[[ acl ]]  # note` is the same table as `[[acl]]`.
                let head: String = t
                    .split('#')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                tables.push((head, String::new(), above));
                seen_setting = true;
                continue;
            }
            if !seen_setting {
                out.header = std::mem::take(&mut pending);
                seen_setting = true;
                if out.header.contains("kgate rewrites it without comments") {
                    // The header older kgate versions wrote: replaced by today's.
                    out.header.clear();
                }
            }
            pending.clear();
            if let Some((_, body, _)) = tables.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let footer = pending.trim_end();
        if !footer.is_empty() && seen_setting {
            out.footer = format!("{footer}\n");
        }
        for (head, body, above) in tables {
            if above.is_empty() {
                // Nothing to put back: skip the parse (a large policy has few comments).
                continue;
            }
            let one = format!("version = {FORMAT_VERSION}\n{head}\n{body}");
            let parsed = Policy::parse(&one, Path::new(""));
            match (head.as_str(), parsed) {
                ("[groups]", _) => out.groups = above,
                ("[[acl]]", Ok(p)) if p.acls.len() == 1 => {
                    out.acls
                        .extend(p.acls.into_iter().map(|a| (a, above.clone())));
                }
                ("[[role_binding]]", Ok(p)) if p.role_bindings.len() == 1 => {
                    out.roles
                        .extend(p.role_bindings.into_iter().map(|b| (b, above.clone())));
                }
                _ => {}
            }
        }
        out
    }

    /// The comment that sat above this binding, once.
    fn take_acl(&mut self, acl: &AclBinding) -> String {
        match self.acls.iter().position(|(a, _)| a == acl) {
            Some(i) => self.acls.remove(i).1,
            None => String::new(),
        }
    }

    /// The comment that sat above this role binding, once.
    fn take_role(&mut self, binding: &RoleBinding) -> String {
        match self.roles.iter().position(|(b, _)| b == binding) {
            Some(i) => self.roles.remove(i).1,
            None => String::new(),
        }
    }
}

/// How many temporary names [`write_atomically`] tries before it gives up: each is new, so
/// only files planted at every one of them (a local attacker guessing the names) can make it
/// fail, and even then nothing is followed or overwritten.
const TEMP_NAME_ATTEMPTS: u32 = 8;

/// Replaces `path` with `bytes` so that readers see the old file or the new one, never a mix:
/// write a temporary file beside it, fsync, rename it over `path`, fsync the directory.
///
/// The temporary file is created with `create_new` (a file or symlink planted at its name is
/// never opened, so never followed) and mode 0600, like the credential file: the policy says
/// who may do what and is nobody else's to read. A name that is taken is skipped for another.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    // The clock makes the names harder to guess ahead; uniqueness comes from pid + counter.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let candidates = (0..TEMP_NAME_ATTEMPTS).map(|_| {
        dir.join(format!(
            ".{name}.tmp-{}-{}-{nanos:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    });
    write_through_temp(path, &dir, bytes, candidates)
}

/// [`write_atomically`] with the temporary names to try, in order.
fn write_through_temp(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    candidates: impl IntoIterator<Item = PathBuf>,
) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut taken = Vec::new();
    let (tmp, mut f) = 'found: {
        for tmp in candidates {
            match options.open(&tmp) {
                Ok(f) => break 'found (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => taken.push(tmp),
                Err(e) => return Err(e),
            }
        }
        let names: Vec<String> = taken.iter().map(|t| t.display().to_string()).collect();
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "every temporary file name for the rewrite already exists ({}): something \
                 else created them, perhaps as symlinks; remove them and retry",
                names.join(", ")
            ),
        ));
    };
    let result = (|| {
        // The umask cannot widen 0600, but it can narrow it; set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable; not every platform lets a directory be opened.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

// === the file's raw shape ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    version: Option<Spanned<i64>>,
    #[serde(default)]
    allow_everyone_if_no_acl_found: bool,
    #[serde(default)]
    super_users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    acl: Vec<Spanned<RawAcl>>,
    #[serde(default)]
    role_binding: Vec<Spanned<RawRoleBinding>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcl {
    principal: Spanned<String>,
    permission: Spanned<String>,
    operation: Spanned<String>,
    resource_type: Spanned<String>,
    #[serde(default)]
    pattern_type: Option<Spanned<String>>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    host: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleBinding {
    principal: Spanned<String>,
    role: Spanned<String>,
    #[serde(default)]
    resource_type: Option<Spanned<String>>,
    #[serde(default)]
    pattern_type: Option<Spanned<String>>,
    #[serde(default)]
    name: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "policy.toml";

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new(FILE))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_section() {
        let p = parse(
            r#"
version = 1
allow_everyone_if_no_acl_found = true
super_users = ["User:admin"]
[groups]
marketing = ["User:alice", "User:carol"]
"Group:eng" = ["User:bob"]
[[acl]]
principal = "Group:marketing"
permission = "allow"
operation = "READ"
resource_type = "topic"
name = "customer_feedback"
[[acl]]
principal = "User:*"
permission = "Deny"
operation = "All"
resource_type = "Cluster"
host = "::1"
[[role_binding]]
principal = "Group:eng"
role = "DeveloperWrite"
resource_type = "Topic"
pattern_type = "Prefixed"
name = "system_"
[[role_binding]]
principal = "User:admin"
role = "SystemAdmin"
"#,
        )
        .unwrap();
        assert!(p.allow_everyone_if_no_acl_found());
        assert_eq!(p.super_users().count(), 1);
        let alice = Principal::user("alice").unwrap();
        assert_eq!(
            p.groups_of(&alice).collect::<Vec<_>>(),
            vec![&Principal::group("marketing").unwrap()]
        );
        assert_eq!(p.acls().len(), 2);
        assert_eq!(p.acls()[1].pattern, ResourcePattern::cluster());
        assert_eq!(p.acls()[1].host.to_string(), "0:0:0:0:0:0:0:1");
        assert_eq!(p.role_bindings().len(), 2);
        assert_eq!(p.role_bindings()[1].resource(), None);
        // Round trip through the writer.
        let again = parse(&p.to_toml()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn a_bad_value_names_file_line_column_and_fix() {
        let text = "[[acl]]\nprincipal = \"alice\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\nname = \"t\"\n";
        assert_eq!(
            error(text),
            "policy.toml:2:13: malformed principal `alice`: write Type:name, e.g. User:alice or Group:marketing"
        );
        let text = "[[acl]]\nprincipal = \"User:a\"\npermission = \"Allow\"\noperation = \"Reed\"\nresource_type = \"Topic\"\nname = \"t\"\n";
        assert!(
            error(text).starts_with("policy.toml:4:13: unknown operation `Reed`"),
            "{}",
            error(text)
        );
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_a_place() {
        assert!(error("allow_everyone_if_no_acl_found = maybe\n").starts_with("policy.toml:1:"));
        let e = error("\n\nsuper_user = []\n");
        assert!(
            e.starts_with("policy.toml:3:1: unknown field `super_user`"),
            "{e}"
        );
        let e = error("[[acl]]\nprincipal = \"User:a\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\n");
        assert!(e.contains("missing field `name`"), "{e}");
        let e = error("version = 2\n");
        assert!(
            e.starts_with("policy.toml:1:11: unsupported policy file version 2"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_have_a_place() {
        let e = error("[[role_binding]]\nprincipal = \"User:a\"\nrole = \"SecurityAdmin\"\nresource_type = \"Topic\"\nname = \"t\"\n");
        assert!(
            e.starts_with("policy.toml:1:1: role SecurityAdmin grants nothing on Topic"),
            "{e}"
        );
        let e = error("[groups]\nops = [\"Group:x\"]\n");
        assert!(
            e.starts_with("policy.toml:2:7: bad group membership"),
            "{e}"
        );
        let e = error("[[acl]]\nprincipal = \"User:a\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Cluster\"\nname = \"c\"\n");
        assert!(
            e.ends_with("The only valid name for the CLUSTER resource is kafka-cluster"),
            "{e}"
        );
        let e = error("[[acl]]\nprincipal = \"User:a\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\nname = \"\"\n");
        assert!(e.ends_with("Invalid empty resource name"), "{e}");
        let e = error("[[acl]]\nprincipal = \"User:a\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\nname = \"t\"\nhost = \"web1\"\n");
        assert!(e.starts_with("policy.toml:7:8: bad host `web1`"), "{e}");
    }

    #[test]
    fn duplicates_are_kept_once() {
        let one = "[[acl]]\nprincipal = \"User:a\"\npermission = \"Allow\"\noperation = \"Read\"\nresource_type = \"Topic\"\nname = \"t\"\n";
        let p = parse(&format!("{one}{one}")).unwrap();
        assert_eq!(p.acls().len(), 1);
    }

    #[test]
    fn strings_with_quotes_round_trip() {
        let mut p = Policy::new();
        p.add_acl(AclBinding {
            pattern: ResourcePattern::literal(ResourceType::Topic, "we\"ird\\name\n").unwrap(),
            principal: "User:CN=a,O=\"b\"".parse().unwrap(),
            host: Host::Any,
            operation: Operation::Read,
            permission: Permission::Allow,
        });
        assert_eq!(parse(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let mut p = Policy::new();
        p.add_super_user(Principal::user("admin").unwrap());
        p.save(&path).unwrap();
        p.add_member(
            Principal::group("g").unwrap(),
            Principal::user("u").unwrap(),
        )
        .unwrap();
        p.save(&path).unwrap();
        assert_eq!(Policy::load(&path).unwrap(), p);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let missing = Policy::load(&dir.path().join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none.toml"), "{missing}");
    }

    #[cfg(unix)]
    #[test]
    fn the_rewrite_never_follows_a_planted_symlink_and_writes_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        fs::write(&path, "# old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        let planted = dir.path().join(".p.toml.tmp-planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        // The planted name is skipped for the next one.
        let fresh = dir.path().join(".p.toml.tmp-fresh");
        write_through_temp(
            &path,
            dir.path(),
            b"new\n",
            [planted.clone(), fresh.clone()],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        assert!(!fresh.exists());

        // With every name taken the write fails, says why, and changes nothing.
        let err = write_through_temp(&path, dir.path(), b"newer\n", [planted.clone()]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("tmp-planted"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());

        // Policy::save goes the same way: 0600 whatever the old file's mode.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Policy::new().save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    #[test]
    fn membership_rules_hold() {
        let mut p = Policy::new();
        let g = Principal::group("g").unwrap();
        assert!(p
            .add_member(Principal::user("x").unwrap(), Principal::user("y").unwrap())
            .is_err());
        assert!(p.add_member(g.clone(), g.clone()).is_err());
        assert!(p.add_member(g.clone(), Principal::wildcard()).is_err());
        assert!(p
            .add_member(g.clone(), Principal::user("y").unwrap())
            .unwrap());
        assert!(p.remove_member(&g, &Principal::user("y").unwrap()));
        assert_eq!(p.groups().count(), 0);
    }
}
