//! `kgate role`: bind and unbind Confluent-style roles, list bindings, show what a role
//! grants, and manage group membership, in a policy file.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kgate_policies::{Principal, ResourcePattern, Role, RoleBinding};

use super::acl::{principal, FileStore, PolicyArg, ResourceArgs};

const ROLE_EXAMPLES: &str = "\
Examples:
  kgate role show
  kgate role show DeveloperRead
  kgate role bind --principal Group:marketing --role DeveloperRead --topic customer_feedback --policy policy.toml
  kgate role bind --principal Group:eng --role DeveloperWrite --topic system_ \\
                  --resource-pattern-type prefixed --policy policy.toml
  kgate role bind --principal Group:admins --role SystemAdmin --policy policy.toml   # whole cluster
  kgate role add-member Group:marketing User:alice --policy policy.toml
  kgate role list --principal Group:marketing --policy policy.toml
  kgate role unbind --principal Group:marketing --role DeveloperRead --topic customer_feedback --policy policy.toml
  kgate role add-member Group:ops User:dan --state-config kgate.toml   # shared by several gateways

A role bound without a resource applies on the whole cluster (every resource of the types it
covers); --cluster binds it on the cluster resource only. Roles grant like ALLOW ACLs: a DENY
ACL still wins.";

/// Arguments of `kgate role`.
#[derive(Debug, Args)]
#[command(after_help = ROLE_EXAMPLES)]
pub struct RoleArgs {
    #[command(subcommand)]
    command: RoleCommand,
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    /// Give a principal or group a role on resources (or on the whole cluster).
    #[command(after_help = ROLE_EXAMPLES)]
    Bind(BindArgs),
    /// Take a role binding away.
    #[command(after_help = ROLE_EXAMPLES)]
    Unbind(BindArgs),
    /// List role bindings and groups.
    #[command(after_help = ROLE_EXAMPLES)]
    List(ListArgs),
    /// Show what a role grants (every role without an argument).
    #[command(after_help = ROLE_EXAMPLES)]
    Show(ShowArgs),
    /// Add a user to a group (Group:marketing User:alice).
    #[command(name = "add-member", after_help = ROLE_EXAMPLES)]
    AddMember(MemberArgs),
    /// Remove a user from a group.
    #[command(name = "remove-member", after_help = ROLE_EXAMPLES)]
    RemoveMember(MemberArgs),
}

#[derive(Debug, Args)]
struct BindArgs {
    /// Who: User:alice, Group:marketing, User:*.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: String,
    /// DeveloperRead, DeveloperWrite, DeveloperManage, ResourceOwner, Operator, ClusterAdmin,
    /// UserAdmin, SecurityAdmin, AuditAdmin or SystemAdmin.
    #[arg(long, value_name = "ROLE")]
    role: String,
    #[command(flatten)]
    resources: ResourceArgs,
    #[command(flatten)]
    policy: PolicyArg,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only bindings of this principal (exact).
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// Only bindings of this role.
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    #[command(flatten)]
    policy: PolicyArg,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// A role name; all roles when omitted.
    #[arg(value_name = "ROLE")]
    role: Option<String>,
}

#[derive(Debug, Args)]
struct MemberArgs {
    /// The group, Group:name (or just name).
    #[arg(value_name = "GROUP")]
    group: String,
    /// The member, e.g. User:alice.
    #[arg(value_name = "PRINCIPAL")]
    member: String,
    #[command(flatten)]
    policy: PolicyArg,
}

/// Runs `kgate role`.
pub fn run(args: RoleArgs) -> anyhow::Result<()> {
    match args.command {
        RoleCommand::Bind(a) => bind(a, true),
        RoleCommand::Unbind(a) => bind(a, false),
        RoleCommand::List(a) => list(a),
        RoleCommand::Show(a) => show(a),
        RoleCommand::AddMember(a) => member(a, true),
        RoleCommand::RemoveMember(a) => member(a, false),
    }
}

fn role(s: &str) -> anyhow::Result<Role> {
    s.parse().map_err(|e| anyhow!("--role: {e}"))
}

fn bindings(a: &BindArgs) -> anyhow::Result<Vec<RoleBinding>> {
    let who = principal("--principal", &a.principal)?;
    let role = role(&a.role)?;
    let patterns = a.resources.patterns()?;
    let scopes: Vec<Option<ResourcePattern>> = if patterns.is_empty() {
        if a.resources.resource_pattern_type.is_some() {
            bail!("--resource-pattern-type needs a resource (--topic, --group, ...)");
        }
        vec![None]
    } else {
        patterns.into_iter().map(Some).collect()
    };
    scopes
        .into_iter()
        .map(|scope| RoleBinding::new(who.clone(), role, scope).map_err(|e| anyhow!("{e}")))
        .collect()
}

fn bind(a: BindArgs, add: bool) -> anyhow::Result<()> {
    let wanted = bindings(&a)?;
    let mut store = FileStore::open_for_update(&a.policy, add)?;
    let mut changed = false;
    for b in &wanted {
        let done = if add {
            store.policy.bind_role(b.clone())
        } else {
            store.policy.unbind_role(b)
        };
        changed |= done;
        let word = match (add, done) {
            (true, true) => "bound:  ",
            (true, false) => "exists: ",
            (false, true) => "unbound:",
            (false, false) => "no such binding:",
        };
        println!("{word} {b}");
    }
    if changed || (add && a.policy.is_new_file()) {
        store.save()?;
    }
    Ok(())
}

fn list(a: ListArgs) -> anyhow::Result<()> {
    let who = a
        .principal
        .as_deref()
        .map(|p| principal("--principal", p))
        .transpose()?;
    let only_role = a.role.as_deref().map(role).transpose()?;
    let store = FileStore::open(&a.policy, false)?;
    let mut any = false;
    for b in store.policy.role_bindings() {
        if who.as_ref().is_some_and(|p| p != b.principal())
            || only_role.is_some_and(|r| r != b.role())
        {
            continue;
        }
        any = true;
        println!("{b}");
    }
    if !any {
        println!("no role binding matches");
    }
    for (group, members) in store.policy.groups() {
        if who
            .as_ref()
            .is_some_and(|p| p != group && !members.contains(p))
        {
            continue;
        }
        let m: Vec<&str> = members.iter().map(Principal::as_str).collect();
        println!("{group} members: {}", m.join(", "));
    }
    Ok(())
}

fn show(a: ShowArgs) -> anyhow::Result<()> {
    let roles = match &a.role {
        Some(r) => vec![role(r)?],
        None => Role::ALL.to_vec(),
    };
    for r in roles {
        println!("{r}: {}", r.description());
        for (t, ops) in r.grants() {
            let ops: Vec<&str> = ops.iter().map(|o| o.name()).collect();
            println!("  {t}: {}", ops.join(", "));
        }
    }
    Ok(())
}

fn member(a: MemberArgs, add: bool) -> anyhow::Result<()> {
    let group = if a.group.contains(':') {
        principal("GROUP", &a.group)?
    } else {
        principal("GROUP", &format!("Group:{}", a.group))?
    };
    let member = principal("PRINCIPAL", &a.member)?;
    let mut store = FileStore::open_for_update(&a.policy, add)?;
    let changed = if add {
        store
            .policy
            .add_member(group.clone(), member.clone())
            .map_err(|e| anyhow!("{e}"))?
    } else {
        store.policy.remove_member(&group, &member)
    };
    match (add, changed) {
        (true, true) => println!("added {member} to {group}"),
        (true, false) => println!("{member} already in {group}"),
        (false, true) => println!("removed {member} from {group}"),
        (false, false) => println!("{member} was not in {group}"),
    }
    if changed || (add && a.policy.is_new_file()) {
        store.save()?;
    }
    Ok(())
}
