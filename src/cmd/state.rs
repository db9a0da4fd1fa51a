//! `kgate state`: the shared state of several gateways, kept in a topic of the upstream
//! cluster (`state = "kafka"`): make the signing key, move a policy and a users file into the
//! topic and back, and show where it stands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use kgate_auth::CredentialStore;
use kgate_policies::Policy;
use kgate_state::{credential_entries, policy_entries, KafkaState, StateKey, StateOptions};

use crate::config::{self, FileConfig};

const EXAMPLES: &str = "\
Examples:
  kgate state key --out state.key          # once; copy the file (mode 0600) to every gateway
  kgate state import --upstream 10.0.0.1:9092 --state-key-file state.key \\
                     --policy policy.toml --users users.toml
  kgate state status --config kgate.toml   # a kgate.toml with state = \"kafka\"
  kgate state export --config kgate.toml --policy policy.toml --users users.toml
  kgate proxy --config kgate.toml          # every gateway, same upstream and key

Change ACLs and users through any gateway (CreateAcls, DeleteAcls, AlterUserScramCredentials:
kafka-acls.sh, kafka-configs.sh, any admin client) and every gateway enforces the change within
a second. For roles and groups: export, edit with `kgate role`/`kgate acl`, import.";

/// Arguments of `kgate state`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Make a new signing key (32 random bytes, Base64, mode 0600); never overwrites a file.
    #[command(after_help = "Example:\n  kgate state key --out /etc/kgate/state.key")]
    Key {
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Make the topic hold what the files hold: what is new is written, what the files do not
    /// have is deleted (a file not given is left alone).
    #[command(after_help = EXAMPLES)]
    Import(FilesArgs),
    /// Write the topic's policy and users to files (the users file holds salted keys only).
    #[command(after_help = EXAMPLES)]
    Export(FilesArgs),
    /// Read the topic and print what it holds and how long reading took.
    #[command(after_help = EXAMPLES)]
    Status(Target),
}

/// Which cluster, topic and key.
#[derive(Debug, Args)]
struct Target {
    /// A kgate.toml with upstream, state_topic and state_key_file (flags win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The cluster's bootstrap brokers.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT]", value_delimiter = ',')]
    upstream: Vec<String>,
    /// The state topic (default __kgate_state).
    #[arg(long, value_name = "TOPIC")]
    state_topic: Option<String>,
    /// The signing key file.
    #[arg(long, value_name = "FILE")]
    state_key_file: Option<PathBuf>,
}

/// The files `import` reads and `export` writes.
#[derive(Debug, Args)]
struct FilesArgs {
    #[command(flatten)]
    target: Target,
    /// The policy file (kgate acl / kgate role format).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The users file (kgate users format: salted keys only; written with mode 0600).
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
}

/// Runs `kgate state`.
pub fn run(args: StateArgs) -> anyhow::Result<()> {
    match args.command {
        StateCommand::Key { out } => {
            StateKey::generate()?.write_new(&out)?;
            println!(
                "wrote a new state key to {} (mode 0600): copy it to every gateway and set \
                 state_key_file",
                out.display()
            );
            Ok(())
        }
        StateCommand::Import(a) => import(a),
        StateCommand::Export(a) => export(a),
        StateCommand::Status(t) => status(&t),
    }
}

impl Target {
    fn options(&self) -> anyhow::Result<StateOptions> {
        let file = match &self.config {
            Some(path) => config::load_checked(path)?,
            None => FileConfig::default(),
        };
        let base = self.config.as_deref();
        let upstream = if self.upstream.is_empty() {
            file.upstream
                .as_ref()
                .map(|u| u.get_ref().clone())
                .unwrap_or_default()
        } else {
            self.upstream.clone()
        };
        if upstream.is_empty() {
            bail!("no upstream cluster: pass --upstream HOST:PORT or --config kgate.toml");
        }
        let key_file = self
            .state_key_file
            .clone()
            .or_else(|| {
                let k = file.state_key_file.as_ref()?.get_ref();
                Some(base.map_or_else(|| k.clone(), |c| config::resolve(c, k)))
            })
            .context(
                "no key: pass --state-key-file FILE (make one with `kgate state key --out FILE`)",
            )?;
        let mut options = StateOptions::new(upstream.join(","), StateKey::load(&key_file)?);
        if let Some(t) = self
            .state_topic
            .clone()
            .or_else(|| file.state_topic.as_ref().map(|t| t.get_ref().clone()))
        {
            options.topic = t;
        }
        Ok(options)
    }

    fn open(&self) -> anyhow::Result<(KafkaState, std::time::Duration)> {
        let options = self.options()?;
        let started = Instant::now();
        let state = KafkaState::open(options)?;
        Ok((state, started.elapsed()))
    }
}

/// The state settings of a kgate.toml (for `kgate acl|role --state-config`).
pub(crate) fn options_from_config(config: &Path) -> anyhow::Result<StateOptions> {
    Target {
        config: Some(config.to_owned()),
        upstream: Vec::new(),
        state_topic: None,
        state_key_file: None,
    }
    .options()
}

fn import(a: FilesArgs) -> anyhow::Result<()> {
    if a.policy.is_none() && a.users.is_none() {
        bail!("nothing to import: pass --policy FILE and/or --users FILE");
    }
    // Files first: a bad file changes nothing in the cluster.
    let policy = a.policy.as_deref().map(Policy::load).transpose()?;
    let users = a.users.as_deref().map(CredentialStore::load).transpose()?;
    let (state, _) = a.target.open()?;
    if let Some(policy) = policy {
        let n = state.commit_entries(&policy_entries(&state.policy()), &policy_entries(&policy))?;
        println!("policy: {n} record(s) written to {}", state.topic());
    }
    if let Some(users) = users {
        let n = state.commit_entries(
            &credential_entries(&state.credentials()),
            &credential_entries(&users),
        )?;
        println!("users: {n} record(s) written to {}", state.topic());
    }
    state.stop();
    Ok(())
}

fn export(a: FilesArgs) -> anyhow::Result<()> {
    if a.policy.is_none() && a.users.is_none() {
        bail!("nothing to export: pass --policy FILE and/or --users FILE");
    }
    let (state, _) = a.target.open()?;
    if let Some(path) = &a.policy {
        state.policy().save(path)?;
        println!("policy written to {}", path.display());
    }
    if let Some(path) = &a.users {
        write_users(&state.credentials(), path)?;
        println!("users written to {} (salted keys only)", path.display());
    }
    state.stop();
    Ok(())
}

fn write_users(store: &CredentialStore, path: &Path) -> anyhow::Result<()> {
    store.save(path)?;
    Ok(())
}

fn status(t: &Target) -> anyhow::Result<()> {
    let (state, took) = t.open()?;
    let policy = state.policy();
    let users = state.credentials();
    let metrics = state.metrics();
    println!("topic:            {}", state.topic());
    println!(
        "next offset:      {}",
        metrics
            .next_offset
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("entries:          {}", state.entries());
    println!("acl bindings:     {}", policy.acls().len());
    println!("role bindings:    {}", policy.role_bindings().len());
    println!("users:            {}", users.len());
    println!(
        "ignored records:  {} bad MAC, {} unreadable",
        metrics
            .mac_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        metrics
            .invalid_records
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "read in:          {} ms",
        metrics
            .caught_up_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "started in:       {} ms (with the topic's checks)",
        took.as_millis()
    );
    if let Some(kib) = peak_memory_kib() {
        println!("peak memory:      {:.1} MiB", kib as f64 / 1024.0);
    }
    state.stop();
    Ok(())
}

/// This process's peak resident memory (VmHWM), for `status` and `kgate bench state`.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}
