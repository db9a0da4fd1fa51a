//! `kgate acl`: add, remove, list and check Kafka ACLs in a policy file, with kafka-acls'
//! flag names.
//!
//! Every command parses all of its input before it touches the file, so bad input changes
//! nothing. Commands go through [`AclStore`]: the policy file today; a running gateway's admin
//! endpoint can implement the same trait later (an `--admin URL` flag instead of `--policy`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use kgate_policies::{
    AccessControlEntryFilter, AclBinding, AclBindingFilter, Authorizer, AuthorizerOptions,
    Decision, Host, Operation, PatternType, PatternTypeFilter, Permission, Policy, PolicyError,
    Principal, Request, ResourcePattern, ResourcePatternFilter, ResourceType, CLUSTER_NAME,
};

const ACL_EXAMPLES: &str = "\
Examples:
  kgate acl add --allow-principal User:alice --operation Read --topic orders --policy policy.toml
  kgate acl add --deny-principal User:bob --operation Write --topic payments- \\
                --resource-pattern-type prefixed --policy policy.toml
  kgate acl add --allow-principal User:app --producer --topic events --policy policy.toml
  kgate acl add --allow-principal User:app --consumer --topic events --group app --policy policy.toml
  kgate acl remove --allow-principal User:alice --topic orders --policy policy.toml
  kgate acl list --topic orders --resource-pattern-type match --policy policy.toml
  kgate acl check User:alice Read topic:orders --host 10.0.0.5 --policy policy.toml
  kgate acl add --allow-principal User:alice --operation Read --topic orders \\
                --state-config kgate.toml    # the policy several gateways share (state = \"kafka\")";

/// Arguments of `kgate acl`.
#[derive(Debug, Args)]
#[command(after_help = ACL_EXAMPLES)]
pub struct AclArgs {
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Add ACL bindings: every principal × host × operation × resource given.
    #[command(after_help = ACL_EXAMPLES)]
    Add(AddArgs),
    /// Remove the ACL bindings that match; with no principal or operation, every ACL on the
    /// resources.
    #[command(after_help = ACL_EXAMPLES)]
    Remove(AddArgs),
    /// List ACL bindings, all or those on the given resources.
    #[command(after_help = ACL_EXAMPLES)]
    List(ListArgs),
    /// Decide one request and print ALLOW or DENY with the rule that decided.
    #[command(after_help = ACL_EXAMPLES)]
    Check(CheckArgs),
}

/// The policy every command works on: a file, or the policy several gateways share in the
/// cluster.
#[derive(Debug, Args)]
pub(crate) struct PolicyArg {
    /// The policy file (created by the first `add` or `bind` if missing).
    #[arg(
        long,
        value_name = "FILE",
        env = "KGATE_POLICY",
        required_unless_present = "state_config",
        conflicts_with = "state_config"
    )]
    pub(crate) policy: Option<PathBuf>,
    /// Change the policy the gateways share through the cluster instead of a file: a
    /// kgate.toml with `state = "kafka"` (its upstream, state_topic and state_key_file).
    /// Every gateway enforces the change within a second.
    #[arg(long, value_name = "KGATE_TOML")]
    pub(crate) state_config: Option<PathBuf>,
}

impl PolicyArg {
    /// Whether the policy is a file that does not exist yet.
    pub(crate) fn is_new_file(&self) -> bool {
        self.policy.as_ref().is_some_and(|p| !p.exists())
    }
}

/// Resources, as kafka-acls names them.
#[derive(Debug, Args, Default)]
pub(crate) struct ResourceArgs {
    /// A topic name (or prefix, or `*`); repeatable.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: Vec<String>,
    /// A consumer group name (or prefix, or `*`); repeatable.
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Vec<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    pub(crate) cluster: bool,
    /// A transactional id (or prefix, or `*`); repeatable.
    #[arg(long = "transactional-id", value_name = "ID")]
    pub(crate) transactional_id: Vec<String>,
    /// A delegation token id (or `*`); repeatable.
    #[arg(long = "delegation-token", value_name = "ID")]
    pub(crate) delegation_token: Vec<String>,
    /// A user resource, named by its principal (User:alice), for CreateTokens and
    /// DescribeTokens; repeatable.
    #[arg(long = "user-principal", value_name = "PRINCIPAL")]
    pub(crate) user_principal: Vec<String>,
    /// literal or prefixed (add, bind); also any or match (list, remove).
    #[arg(long = "resource-pattern-type", value_name = "TYPE")]
    pub(crate) resource_pattern_type: Option<String>,
}

impl ResourceArgs {
    /// (type, name) of every resource given, in flag order.
    pub(crate) fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|n| (ResourceType::Topic, n.clone())));
        out.extend(self.group.iter().map(|n| (ResourceType::Group, n.clone())));
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.to_owned()));
        }
        out.extend(
            self.transactional_id
                .iter()
                .map(|n| (ResourceType::TransactionalId, n.clone())),
        );
        out.extend(
            self.delegation_token
                .iter()
                .map(|n| (ResourceType::DelegationToken, n.clone())),
        );
        out.extend(
            self.user_principal
                .iter()
                .map(|n| (ResourceType::User, n.clone())),
        );
        out
    }

    /// The pattern type for adding: literal unless told.
    pub(crate) fn pattern_type(&self) -> anyhow::Result<PatternType> {
        match &self.resource_pattern_type {
            None => Ok(PatternType::Literal),
            Some(s) => s.parse().map_err(|e| {
                anyhow!("--resource-pattern-type: {e}; any and match only select (list, remove)")
            }),
        }
    }

    /// The pattern type filter for selecting: literal unless told.
    pub(crate) fn pattern_filter(&self) -> anyhow::Result<PatternTypeFilter> {
        match &self.resource_pattern_type {
            None => Ok(PatternTypeFilter::Is(PatternType::Literal)),
            Some(s) => s
                .parse()
                .map_err(|e| anyhow!("--resource-pattern-type: {e}")),
        }
    }

    /// Checked patterns for adding.
    pub(crate) fn patterns(&self) -> anyhow::Result<Vec<ResourcePattern>> {
        let pattern_type = self.pattern_type()?;
        self.resources()
            .into_iter()
            .map(|(t, name)| {
                if t == ResourceType::User {
                    name.parse::<Principal>()
                        .with_context(|| format!("--user-principal {name}"))?;
                }
                ResourcePattern::new(t, pattern_type, &name)
                    .with_context(|| format!("{} {name:?}", flag_of(t)))
            })
            .collect()
    }
}

fn flag_of(t: ResourceType) -> &'static str {
    match t {
        ResourceType::Topic => "--topic",
        ResourceType::Group => "--group",
        ResourceType::Cluster => "--cluster",
        ResourceType::TransactionalId => "--transactional-id",
        ResourceType::DelegationToken => "--delegation-token",
        ResourceType::User => "--user-principal",
    }
}

#[derive(Debug, Args)]
struct AddArgs {
    /// A principal to allow (User:alice, User:*, Group:marketing); repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// A principal to deny; repeatable.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// A client IP the allow applies to (default `*` when adding); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// A client IP the deny applies to (default `*` when adding); repeatable.
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_host: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens or All (default All when
    /// adding); repeatable.
    #[arg(long, value_name = "OPERATION")]
    operation: Vec<String>,
    /// Producer convenience: Write, Describe and Create on the topics; Write and Describe on
    /// the transactional ids; IdempotentWrite on the cluster with --idempotent.
    #[arg(long, conflicts_with = "consumer")]
    producer: bool,
    /// Consumer convenience: Read and Describe on the topics, Read on the groups (--group is
    /// required).
    #[arg(long)]
    consumer: bool,
    /// With --producer: also IdempotentWrite on the cluster.
    #[arg(long, requires = "producer")]
    idempotent: bool,
    /// Accepted for kafka-acls compatibility; kgate never asks for confirmation.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    resources: ResourceArgs,
    #[command(flatten)]
    policy: PolicyArg,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only ACLs of this principal (exact, no User:* expansion).
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    #[command(flatten)]
    resources: ResourceArgs,
    #[command(flatten)]
    policy: PolicyArg,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The session principal, e.g. User:alice.
    #[arg(value_name = "PRINCIPAL")]
    principal: String,
    /// The operation, e.g. Read.
    #[arg(value_name = "OPERATION")]
    operation: String,
    /// The resource as type:name: topic:orders, group:app, cluster, transactional-id:tx,
    /// delegation-token:id, user:User:alice.
    #[arg(value_name = "RESOURCE")]
    resource: String,
    /// The client's IP; without it only host `*` ACLs apply.
    #[arg(long, value_name = "IP")]
    host: Option<String>,
    /// Also a member of this group (on top of the file's [groups]); repeatable.
    #[arg(long = "member-of", value_name = "GROUP")]
    member_of: Vec<String>,
    /// A super user on top of the file's (as `kgate proxy --super-user`); repeatable.
    #[arg(long = "super-user", value_name = "PRINCIPAL")]
    super_user: Vec<String>,
    #[command(flatten)]
    policy: PolicyArg,
}

/// Runs `kgate acl`.
pub fn run(args: AclArgs) -> anyhow::Result<()> {
    match args.command {
        AclCommand::Add(a) => add(a),
        AclCommand::Remove(a) => remove(a),
        AclCommand::List(a) => list(a),
        AclCommand::Check(a) => check(a),
    }
}

// === the store ===

/// Where ACL commands act. The policy file today; a gateway's admin endpoint later.
pub(crate) trait AclStore {
    /// Adds bindings; per binding whether it was new.
    fn create(&mut self, acls: Vec<AclBinding>) -> anyhow::Result<Vec<bool>>;
    /// Removes what each filter matches; per filter the removed bindings.
    fn delete(&mut self, filters: &[AclBindingFilter]) -> anyhow::Result<Vec<Vec<AclBinding>>>;
    /// The bindings a filter matches.
    fn describe(&self, filter: &AclBindingFilter) -> anyhow::Result<Vec<AclBinding>>;
    /// Decides one request.
    fn check(&self, req: &Request<'_>, super_users: Vec<Principal>) -> anyhow::Result<Decision>;
}

/// The policy file (read whole, changed in memory, written back atomically), or the shared
/// state topic (read to its end, changed in memory, the difference written as records).
pub(crate) struct FileStore {
    path: PathBuf,
    pub(crate) policy: Policy,
    /// Held from reading to writing when the store was opened for an update.
    _lock: Option<kgate_policies::PolicyLock>,
    /// The shared state and the policy as read from it, when not a file.
    shared: Option<(kgate_state::KafkaState, Policy)>,
}

impl FileStore {
    /// Opens the policy `arg` names to change it (see [`FileStore::open_file_for_update`]).
    pub(crate) fn open_for_update(arg: &PolicyArg, create: bool) -> anyhow::Result<Self> {
        match (&arg.policy, &arg.state_config) {
            (Some(path), _) => Self::open_file_for_update(path, create),
            (None, Some(config)) => Self::open_shared(config),
            (None, None) => bail!("no policy: pass --policy FILE or --state-config kgate.toml"),
        }
    }

    /// Opens the policy `arg` names to read it.
    pub(crate) fn open(arg: &PolicyArg, create: bool) -> anyhow::Result<Self> {
        match (&arg.policy, &arg.state_config) {
            (Some(path), _) => Self::open_file(path, create),
            (None, Some(config)) => Self::open_shared(config),
            (None, None) => bail!("no policy: pass --policy FILE or --state-config kgate.toml"),
        }
    }

    /// Reads the shared state topic to its end.
    fn open_shared(config: &Path) -> anyhow::Result<Self> {
        let options = crate::cmd::state::options_from_config(config)?;
        let state = kgate_state::KafkaState::open(options)?;
        let policy = state.policy();
        Ok(FileStore {
            path: config.to_owned(),
            policy: policy.clone(),
            _lock: None,
            shared: Some((state, policy)),
        })
    }

    /// Opens `path` to change it: waits until no other `kgate acl`/`kgate role` or gateway is
    /// changing it, and keeps them waiting until this store is dropped.
    pub(crate) fn open_file_for_update(path: &Path, create: bool) -> anyhow::Result<Self> {
        if !create {
            // A missing file is reported as such, before a lock file is made beside it.
            Self::open_file(path, false)?;
        }
        let lock = kgate_policies::PolicyLock::acquire(path)?;
        let mut store = Self::open_file(path, create)?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// Opens `path`; a missing file is an empty policy when `create` is set.
    pub(crate) fn open_file(path: &Path, create: bool) -> anyhow::Result<Self> {
        let policy = match Policy::load(path) {
            Ok(p) => p,
            Err(PolicyError::Io { source, .. })
                if create && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Policy::new()
            }
            Err(PolicyError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                bail!(
                    "policy file {} does not exist: create it with `kgate acl add ... --policy {}`",
                    path.display(),
                    path.display()
                )
            }
            Err(e) => return Err(e).context("policy file refused, nothing changed"),
        };
        Ok(FileStore {
            path: path.to_owned(),
            policy,
            _lock: None,
            shared: None,
        })
    }

    /// Writes the policy back: the file, or the records that differ to the shared topic.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        if let Some((state, read)) = &self.shared {
            state.commit_entries(
                &kgate_state::policy_entries(read),
                &kgate_state::policy_entries(&self.policy),
            )?;
            return Ok(());
        }
        self.policy.save(&self.path)?;
        Ok(())
    }
}

impl AclStore for FileStore {
    fn create(&mut self, acls: Vec<AclBinding>) -> anyhow::Result<Vec<bool>> {
        let added: Vec<bool> = acls.into_iter().map(|a| self.policy.add_acl(a)).collect();
        if added.contains(&true) || !self.path.exists() {
            self.save()?;
        }
        Ok(added)
    }

    fn delete(&mut self, filters: &[AclBindingFilter]) -> anyhow::Result<Vec<Vec<AclBinding>>> {
        let removed: Vec<Vec<AclBinding>> =
            filters.iter().map(|f| self.policy.remove_acls(f)).collect();
        if removed.iter().any(|r| !r.is_empty()) {
            self.save()?;
        }
        Ok(removed)
    }

    fn describe(&self, filter: &AclBindingFilter) -> anyhow::Result<Vec<AclBinding>> {
        Ok(self.policy.matching_acls(filter).cloned().collect())
    }

    fn check(&self, req: &Request<'_>, super_users: Vec<Principal>) -> anyhow::Result<Decision> {
        let options = AuthorizerOptions {
            super_users,
            cache_capacity: 0,
            ..AuthorizerOptions::default()
        };
        Ok(Authorizer::new(self.policy.clone(), options).authorize(req))
    }
}

// === parsing ===

pub(crate) fn principal(flag: &str, s: &str) -> anyhow::Result<Principal> {
    s.parse().map_err(|e| anyhow!("{flag}: {e}"))
}

fn operation(s: &str) -> anyhow::Result<Operation> {
    s.parse().map_err(|e| anyhow!("--operation: {e}"))
}

fn host(flag: &str, s: &str) -> anyhow::Result<Host> {
    s.parse().map_err(|e| anyhow!("{flag}: {e}"))
}

/// A resource written `type:name` (`cluster` alone is the cluster).
pub(crate) fn resource(s: &str) -> anyhow::Result<(ResourceType, String)> {
    let (t, name) = match s.split_once(':') {
        Some((t, name)) => (t, name),
        None => (s, ""),
    };
    let t: ResourceType = t
        .parse()
        .map_err(|_| anyhow!("{}", kgate_policies::ParseError::Resource(s.to_owned())))?;
    let name = if t == ResourceType::Cluster && name.is_empty() {
        CLUSTER_NAME
    } else {
        name
    };
    Ok((t, name.to_owned()))
}

/// Who, allowed or denied, from which hosts (`None`: any host, when selecting).
type Entry = (Principal, Permission, Vec<Option<Host>>);

/// The entries the allow/deny flags describe.
fn entries(a: &AddArgs, default_host: Option<Host>) -> anyhow::Result<Vec<Entry>> {
    let hosts = |flag: &str, given: &[String]| -> anyhow::Result<Vec<Option<Host>>> {
        if given.is_empty() {
            return Ok(vec![default_host]);
        }
        given.iter().map(|h| host(flag, h).map(Some)).collect()
    };
    let allow_hosts = hosts("--allow-host", &a.allow_host)?;
    let deny_hosts = hosts("--deny-host", &a.deny_host)?;
    let mut out = Vec::new();
    for p in &a.allow_principal {
        out.push((
            principal("--allow-principal", p)?,
            Permission::Allow,
            allow_hosts.clone(),
        ));
    }
    for p in &a.deny_principal {
        out.push((
            principal("--deny-principal", p)?,
            Permission::Deny,
            deny_hosts.clone(),
        ));
    }
    if out.is_empty() && (!a.allow_host.is_empty() || !a.deny_host.is_empty()) {
        bail!("--allow-host/--deny-host need --allow-principal/--deny-principal");
    }
    Ok(out)
}

/// (pattern, operation) pairs: explicit operations on every resource, or the producer and
/// consumer conveniences.
fn operations_on(
    a: &AddArgs,
    patterns: &[ResourcePattern],
    default_all: bool,
) -> anyhow::Result<Vec<(ResourcePattern, Option<Operation>)>> {
    use Operation::*;
    if a.producer || a.consumer {
        if !a.operation.is_empty() {
            bail!("--operation cannot be combined with --producer or --consumer: they choose the operations");
        }
        let mut out = Vec::new();
        let has = |t: ResourceType| patterns.iter().any(|p| p.resource_type() == t);
        if !has(ResourceType::Topic) {
            bail!("--producer and --consumer need --topic");
        }
        if a.consumer && !has(ResourceType::Group) {
            bail!("--consumer needs --group: the consumer group that may read");
        }
        for p in patterns {
            let ops: &[Operation] = match (p.resource_type(), a.producer) {
                (ResourceType::Topic, true) => &[Write, Describe, Create],
                (ResourceType::TransactionalId, true) => &[Write, Describe],
                (ResourceType::Topic, false) => &[Read, Describe],
                (ResourceType::Group, false) => &[Read],
                (t, _) => bail!(
                    "{} cannot be combined with {}",
                    flag_of(t),
                    if a.producer {
                        "--producer"
                    } else {
                        "--consumer"
                    }
                ),
            };
            out.extend(ops.iter().map(|&o| (p.clone(), Some(o))));
        }
        if a.idempotent {
            out.push((ResourcePattern::cluster(), Some(IdempotentWrite)));
        }
        return Ok(out);
    }
    let ops: Vec<Option<Operation>> = if a.operation.is_empty() {
        vec![default_all.then_some(All)]
    } else {
        a.operation
            .iter()
            .map(|o| operation(o).map(Some))
            .collect::<anyhow::Result<_>>()?
    };
    let mut out = Vec::new();
    for p in patterns {
        for &op in &ops {
            if let Some(op) = op {
                let supported = p.resource_type().supported_operations();
                if op != All && !supported.contains(&op) {
                    let names: Vec<&str> = supported.iter().map(|o| o.name()).collect();
                    bail!(
                        "--operation {op}: {} resources only support {} (or All)",
                        p.resource_type(),
                        names.join(", ")
                    );
                }
            }
            out.push((p.clone(), op));
        }
    }
    Ok(out)
}

// === commands ===

fn add(a: AddArgs) -> anyhow::Result<()> {
    if a.resources.resources().is_empty() {
        bail!("no resource: give --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal");
    }
    let patterns = a.resources.patterns()?;
    let who = entries(&a, Some(Host::Any))?;
    if who.is_empty() {
        bail!("no principal: give --allow-principal or --deny-principal (e.g. --allow-principal User:alice)");
    }
    let mut acls = Vec::new();
    for (pattern, op) in operations_on(&a, &patterns, true)? {
        for (principal, permission, hosts) in &who {
            for h in hosts {
                acls.push(AclBinding {
                    pattern: pattern.clone(),
                    principal: principal.clone(),
                    host: h.unwrap_or(Host::Any),
                    operation: op.unwrap_or(Operation::All),
                    permission: *permission,
                });
            }
        }
    }
    let mut store = FileStore::open_for_update(&a.policy, true)?;
    let added = store.create(acls.clone())?;
    for (acl, new) in acls.iter().zip(added) {
        println!("{} {}", if new { "added:  " } else { "exists: " }, acl);
    }
    Ok(())
}

fn remove(a: AddArgs) -> anyhow::Result<()> {
    let resources = a.resources.resources();
    if resources.is_empty() {
        bail!("no resource: give --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal");
    }
    let pattern_type = a.resources.pattern_filter()?;
    let who = entries(&a, None)?;
    let mut filters = Vec::new();
    let patterns: Vec<ResourcePatternFilter> = resources
        .into_iter()
        .map(|(t, name)| ResourcePatternFilter {
            resource_type: Some(t),
            name: Some(name),
            pattern_type,
        })
        .collect();
    // Operations: explicit ones, or the conveniences' (checked on literal stand-ins).
    let stand_ins: Vec<ResourcePattern> = patterns
        .iter()
        .filter_map(|p| ResourcePattern::literal(p.resource_type?, p.name.as_deref()?).ok())
        .collect();
    let ops = operations_on(&a, &stand_ins, false)?;
    for (pattern, op) in &ops {
        let pf = patterns
            .iter()
            .find(|f| {
                f.resource_type == Some(pattern.resource_type())
                    && f.name.as_deref() == Some(pattern.name())
            })
            .cloned()
            .unwrap_or(ResourcePatternFilter {
                resource_type: Some(pattern.resource_type()),
                name: Some(pattern.name().to_owned()),
                pattern_type,
            });
        let mut entry_filters = Vec::new();
        if who.is_empty() {
            entry_filters.push(AccessControlEntryFilter {
                operation: *op,
                ..Default::default()
            });
        }
        for (principal, permission, hosts) in &who {
            for h in hosts {
                entry_filters.push(AccessControlEntryFilter {
                    principal: Some(principal.clone()),
                    host: *h,
                    operation: *op,
                    permission: Some(*permission),
                });
            }
        }
        for entry in entry_filters {
            filters.push(AclBindingFilter {
                pattern: pf.clone(),
                entry,
            });
        }
    }
    let mut store = FileStore::open_for_update(&a.policy, false)?;
    let removed: Vec<AclBinding> = store.delete(&filters)?.into_iter().flatten().collect();
    if removed.is_empty() {
        println!("no matching ACL: nothing removed");
    }
    for acl in removed {
        println!("removed: {acl}");
    }
    Ok(())
}

fn list(a: ListArgs) -> anyhow::Result<()> {
    let who = a
        .principal
        .as_deref()
        .map(|p| principal("--principal", p))
        .transpose()?;
    let resources = a.resources.resources();
    let entry = AccessControlEntryFilter {
        principal: who,
        ..Default::default()
    };
    let filters: Vec<AclBindingFilter> = if resources.is_empty() {
        let pattern_type = match &a.resources.resource_pattern_type {
            None => PatternTypeFilter::Any,
            Some(_) => a.resources.pattern_filter()?,
        };
        vec![AclBindingFilter {
            pattern: ResourcePatternFilter {
                pattern_type,
                ..ResourcePatternFilter::ANY
            },
            entry,
        }]
    } else {
        let pattern_type = a.resources.pattern_filter()?;
        resources
            .into_iter()
            .map(|(t, name)| AclBindingFilter {
                pattern: ResourcePatternFilter {
                    resource_type: Some(t),
                    name: Some(name),
                    pattern_type,
                },
                entry: entry.clone(),
            })
            .collect()
    };
    let store = FileStore::open(&a.policy, false)?;
    let mut shown: Vec<AclBinding> = Vec::new();
    for f in &filters {
        for acl in store.describe(f)? {
            if !shown.contains(&acl) {
                shown.push(acl);
            }
        }
    }
    if shown.is_empty() {
        println!("no ACL matches");
        return Ok(());
    }
    shown.sort_by(|x, y| x.pattern.cmp(&y.pattern));
    let mut current: Option<&ResourcePattern> = None;
    for acl in &shown {
        if current != Some(&acl.pattern) {
            println!("{}:", acl.pattern);
            current = Some(&acl.pattern);
        }
        println!(
            "  {} {} {} from host {}",
            acl.principal,
            acl.permission.name().to_ascii_uppercase(),
            acl.operation,
            acl.host
        );
    }
    Ok(())
}

fn check(a: CheckArgs) -> anyhow::Result<()> {
    let who = principal("principal", &a.principal)?;
    let operation: Operation = a.operation.parse().map_err(|e| anyhow!("operation: {e}"))?;
    let (resource_type, name) = resource(&a.resource)?;
    let host: IpAddr = match &a.host {
        Some(h) => h.parse().map_err(|_| {
            anyhow!("--host: bad IP address `{h}`: write an exact client IP, e.g. 10.0.0.5")
        })?,
        // No real client has this address, so only host `*` rules apply.
        None => IpAddr::from([0, 0, 0, 0]),
    };
    let groups: Vec<Principal> = a
        .member_of
        .iter()
        .map(|g| principal_of_group(g))
        .collect::<anyhow::Result<_>>()?;
    let supers: Vec<Principal> = a
        .super_user
        .iter()
        .map(|p| principal("--super-user", p))
        .collect::<anyhow::Result<_>>()?;
    let store = FileStore::open(&a.policy, false)?;
    let decision = store.check(
        &Request {
            principal: &who,
            groups: &groups,
            host,
            resource_type,
            name: &name,
            operation,
        },
        supers,
    )?;
    let verdict = if decision.allowed { "ALLOW" } else { "DENY" };
    println!("{verdict}  {}", decision.rule);
    Ok(())
}

fn principal_of_group(s: &str) -> anyhow::Result<Principal> {
    let p = if s.contains(':') {
        principal("--member-of", s)?
    } else {
        principal("--member-of", &format!("Group:{s}"))?
    };
    if !p.is_group() {
        bail!("--member-of: `{s}` is not a group: write Group:name");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_as_type_colon_name() {
        assert_eq!(
            resource("topic:orders").unwrap(),
            (ResourceType::Topic, "orders".into())
        );
        assert_eq!(
            resource("cluster").unwrap(),
            (ResourceType::Cluster, CLUSTER_NAME.into())
        );
        assert_eq!(
            resource("transactional-id:tx:1").unwrap(),
            (ResourceType::TransactionalId, "tx:1".into())
        );
        assert_eq!(
            resource("user:User:alice").unwrap(),
            (ResourceType::User, "User:alice".into())
        );
        let err = resource("topix:orders").unwrap_err().to_string();
        assert!(
            err.starts_with("bad resource `topix:orders`: write type:name"),
            "{err}"
        );
    }
}
