//! `kgate users`: manage the credential file (salted SCRAM credentials, never passwords).
//!
//! Passwords are read from standard input or a file, never from the command line, where
//! `ps` and the shell history would show them. They are kept in zeroizing buffers and only
//! their SCRAM credentials (salt, StoredKey, ServerKey, iterations) reach the file, which is
//! replaced atomically with mode 0600.

use std::io::{self, BufRead as _, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use kgate_auth::{
    CredentialError, CredentialStore, Mechanism, StoreError, Zeroizing, DEFAULT_ITERATIONS,
    MAX_ITERATIONS, MIN_ITERATIONS,
};

const EXAMPLES: &str = "\
Examples:
  printf '%s' \"$ALICE_PASSWORD\" | kgate users add alice --password-stdin --users users.toml
  kgate users add bob --mechanism SCRAM-SHA-512 --password-file bob.pw --iterations 8192 --users users.toml
  kgate users list --users users.toml
  kgate users remove bob --mechanism SCRAM-SHA-256 --users users.toml
  kgate users remove bob --users users.toml
  printf '%s' \"$CAROL_PASSWORD\" | kgate users add carol --password-stdin --state-config kgate.toml   # shared by several gateways";

/// Arguments of `kgate users`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user's SCRAM credentials from a password read from stdin or a file.
    #[command(after_help = EXAMPLES)]
    Add(AddArgs),
    /// Show each user's mechanisms and iteration counts (never a secret).
    List(ListArgs),
    /// Remove a user, or only one of their mechanisms.
    Remove(RemoveArgs),
    /// Print a user's credential in Kafka's form (salt=…,stored_key=…,server_key=…,iterations=…).
    ///
    /// The output holds no password but is still secret: StoredKey and ServerKey let anyone
    /// pose as the server. It is what `kafka-configs` and KRaft bootstrap records store.
    Export(ExportArgs),
    /// Add a credential given in Kafka's form on standard input (e.g. copied from Kafka).
    Import(ImportArgs),
}

/// A SCRAM mechanism as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MechanismArg {
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl From<MechanismArg> for Mechanism {
    fn from(arg: MechanismArg) -> Self {
        match arg {
            MechanismArg::ScramSha256 => Mechanism::ScramSha256,
            MechanismArg::ScramSha512 => Mechanism::ScramSha512,
        }
    }
}

/// Where the users live, shared by every subcommand: a credential file, or the state several
/// gateways share through the cluster.
#[derive(Debug, Args)]
struct UsersFile {
    /// The credential file (TOML; created by `add` if missing).
    #[arg(
        long,
        value_name = "FILE",
        env = "KGATE_USERS",
        required_unless_present = "state_config"
    )]
    users: Option<PathBuf>,
    /// Instead of a file, the users several gateways share (the kgate.toml of a gateway
    /// started with `state = "kafka"`): the change is written to the state topic and every
    /// gateway applies it within a second. It wins over `--users` and `KGATE_USERS`. Two
    /// changes of one user at the same moment: the later write wins.
    #[arg(long, value_name = "FILE")]
    state_config: Option<PathBuf>,
}

impl UsersFile {
    fn target(&self) -> anyhow::Result<Target<'_>> {
        // The state config is only ever given on the command line, while `--users` may come
        // from KGATE_USERS: the explicit choice wins.
        match (&self.state_config, &self.users) {
            (Some(config), _) => Ok(Target::Shared(config)),
            (None, Some(path)) => Ok(Target::File(path)),
            (None, None) => bail!("no users: pass --users FILE or --state-config kgate.toml"),
        }
    }
}

/// The users `kgate users` reads and changes.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    /// A credential file.
    File(&'a Path),
    /// The shared state, found through this kgate.toml.
    Shared(&'a Path),
}

impl Target<'_> {
    /// Where the users are, for messages.
    fn place(self) -> String {
        match self {
            Target::File(path) => path.display().to_string(),
            Target::Shared(config) => format!("the shared state of {}", config.display()),
        }
    }

    /// The option naming them, for the fix in messages.
    fn flag(self) -> String {
        match self {
            Target::File(path) => format!("--users {}", path.display()),
            Target::Shared(config) => format!("--state-config {}", config.display()),
        }
    }

    /// The users as they are (a file must exist unless `create`).
    fn read(self, create: bool) -> anyhow::Result<CredentialStore> {
        match self {
            Target::File(path) if create => {
                CredentialStore::load_or_empty(path).map_err(|e| store_error(e, path))
            }
            Target::File(path) => load_existing(path),
            Target::Shared(config) => {
                let state = open_state(config)?;
                let users = state.credentials();
                state.stop();
                Ok(users)
            }
        }
    }

    /// Changes the users with `f`, which sees them as they are now: a file is locked against
    /// every other writer from reading to writing; the shared state is read to its end and
    /// the difference written as signed records. Nothing is written when `f` fails.
    fn update<T>(
        self,
        create: bool,
        f: impl FnOnce(&mut CredentialStore) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        match self {
            Target::File(path) => {
                if !create {
                    // A missing file is reported as such, before a lock file is made beside it.
                    load_existing(path)?;
                }
                let _lock = lock(path)?;
                let mut store = self.read(create)?;
                let out = f(&mut store)?;
                store.save(path).map_err(|e| store_error(e, path))?;
                Ok(out)
            }
            Target::Shared(config) => {
                let state = open_state(config)?;
                let before = state.credentials();
                let mut after = before.clone();
                let out = f(&mut after).and_then(|out| {
                    state.commit_entries(
                        &kgate_state::credential_entries(&before),
                        &kgate_state::credential_entries(&after),
                    )?;
                    Ok(out)
                });
                state.stop();
                out
            }
        }
    }

    /// A store error while changing the users, naming where nothing was written.
    fn changing(self, err: StoreError) -> anyhow::Error {
        match (self, err) {
            (Target::File(path), err) => store_error(err, path),
            (target, StoreError::Credential(e)) => {
                anyhow!("{e}; nothing was written to {}", target.place())
            }
            (_, other) => anyhow!(other),
        }
    }
}

/// Reads the shared state to its end.
fn open_state(config: &Path) -> anyhow::Result<kgate_state::KafkaState> {
    let options = crate::cmd::state::options_from_config(config)?;
    Ok(kgate_state::KafkaState::open(options)?)
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("password").required(true).args(["password_stdin", "password_file"])))]
struct AddArgs {
    /// The username (Kafka's principal becomes User:NAME).
    name: String,
    /// Mechanism to create; repeat for both. Default: both SCRAM-SHA-256 and SCRAM-SHA-512,
    /// as Kafka users usually have, so clients may pick either.
    #[arg(long = "mechanism", short = 'm', value_name = "MECHANISM")]
    mechanisms: Vec<MechanismArg>,
    /// Read the password from standard input (one line on a terminal, else all of it, less
    /// one trailing newline).
    #[arg(long)]
    password_stdin: bool,
    /// Read the password from FILE (less one trailing newline).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// PBKDF2 iterations, 4096 to 16384 (Kafka's limits; 4096 is Kafka's default).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_ITERATIONS)..=i64::from(MAX_ITERATIONS)))]
    iterations: u32,
    /// Replace existing credentials (change the password) instead of refusing.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    file: UsersFile,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    file: UsersFile,
}

#[derive(Debug, Args)]
struct RemoveArgs {
    /// The user to remove.
    name: String,
    /// Remove only this mechanism's credential (the user goes with their last one).
    #[arg(long, short = 'm', value_name = "MECHANISM")]
    mechanism: Option<MechanismArg>,
    #[command(flatten)]
    file: UsersFile,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The user.
    name: String,
    /// Which credential.
    #[arg(long, short = 'm', value_name = "MECHANISM")]
    mechanism: MechanismArg,
    #[command(flatten)]
    file: UsersFile,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The user.
    name: String,
    /// Which mechanism the credential is for.
    #[arg(long, short = 'm', value_name = "MECHANISM")]
    mechanism: MechanismArg,
    /// Replace an existing credential.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    file: UsersFile,
}

/// Runs `kgate users`.
///
/// # Errors
/// One line naming the file at fault and the fix: a missing or bad users file, an empty or
/// unreadable password, an unknown user, an existing credential without `--replace`.
pub fn run(args: UsersArgs) -> anyhow::Result<()> {
    match args.command {
        UsersCommand::Add(args) => add(args),
        UsersCommand::List(args) => list(args.file.target()?),
        UsersCommand::Remove(args) => remove(args),
        UsersCommand::Export(args) => export(args),
        UsersCommand::Import(args) => import(args),
    }
}

fn add(args: AddArgs) -> anyhow::Result<()> {
    let target = args.file.target()?;
    let mut mechanisms: Vec<Mechanism> = args.mechanisms.iter().map(|&m| m.into()).collect();
    if mechanisms.is_empty() {
        mechanisms = Mechanism::ALL.to_vec();
    }
    mechanisms.sort();
    mechanisms.dedup();
    let refuse_existing = |store: &CredentialStore, meanwhile: &str| -> anyhow::Result<()> {
        if args.replace {
            return Ok(());
        }
        if let Some(existing) = mechanisms
            .iter()
            .find(|&&m| store.credential(&args.name, m).is_some())
        {
            bail!(
                "user {:?} {meanwhile} a {existing} credential in {}; pass --replace to change \
                 the password",
                args.name,
                target.place()
            );
        }
        Ok(())
    };
    // Checked before the password is asked for, and again once the users are held.
    refuse_existing(&target.read(true)?, "already has")?;
    let password = match &args.password_file {
        Some(file) => read_password_file(file)?,
        None => read_password_stdin()?,
    };
    target.update(true, |store| {
        refuse_existing(store, "got")?;
        for &mechanism in &mechanisms {
            store
                .set(&args.name, mechanism, &password, args.iterations)
                .map_err(|e| target.changing(e))?;
        }
        Ok(())
    })?;
    let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
    println!(
        "{} {} ({}; {} iterations) to {}",
        if args.replace { "set" } else { "added" },
        args.name,
        names.join(", "),
        args.iterations,
        target.place()
    );
    Ok(())
}

fn list(target: Target<'_>) -> anyhow::Result<()> {
    let store = target.read(false)?;
    let users = store.list();
    if users.is_empty() {
        println!(
            "no users in {}; add one with `kgate users add NAME --password-stdin {}`",
            target.place(),
            target.flag()
        );
        return Ok(());
    }
    let width = users
        .iter()
        .map(|u| u.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("USER".len());
    println!("{:width$}  MECHANISMS", "USER");
    for user in users {
        let mechanisms: Vec<String> = user
            .mechanisms
            .iter()
            .map(|(m, iterations)| format!("{m} ({iterations} iterations)"))
            .collect();
        println!("{:width$}  {}", user.name, mechanisms.join(", "));
    }
    Ok(())
}

fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let target = args.file.target()?;
    let unknown_user = || {
        anyhow!(
            "no user {:?} in {}; see `kgate users list {}`",
            args.name,
            target.place(),
            target.flag()
        )
    };
    let mechanism = args.mechanism.map(Mechanism::from);
    target.update(false, |store| match mechanism {
        None => store.remove(&args.name).map_err(|_| unknown_user()),
        Some(mechanism) => {
            if store.user(&args.name).is_none() {
                return Err(unknown_user());
            }
            store.delete(&args.name, mechanism).map_err(|e| match e {
                CredentialError::NotFound => anyhow!(
                    "user {:?} has no {mechanism} credential in {}; see `kgate users list {}`",
                    args.name,
                    target.place(),
                    target.flag()
                ),
                other => anyhow!(other),
            })
        }
    })?;
    match mechanism {
        None => println!("removed {} from {}", args.name, target.place()),
        Some(m) => println!("removed {m} of {} from {}", args.name, target.place()),
    }
    Ok(())
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let target = args.file.target()?;
    let store = target.read(false)?;
    let mechanism = Mechanism::from(args.mechanism);
    let credential = store.export(&args.name, mechanism).ok_or_else(|| {
        anyhow!(
            "user {:?} has no {mechanism} credential in {}; see `kgate users list {}`",
            args.name,
            target.place(),
            target.flag()
        )
    })?;
    println!("{credential}");
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let target = args.file.target()?;
    let mechanism = Mechanism::from(args.mechanism);
    let already = |store: &CredentialStore| {
        if !args.replace && store.credential(&args.name, mechanism).is_some() {
            bail!(
                "user {:?} already has a {mechanism} credential in {}; pass --replace to \
                 overwrite it",
                args.name,
                target.place()
            );
        }
        Ok(())
    };
    already(&target.read(true)?)?;
    let mut text = Zeroizing::new(String::new());
    io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the credential from standard input")?;
    target.update(true, |store| {
        already(store)?;
        store
            .import(&args.name, mechanism, text.trim())
            .map_err(|e| {
                anyhow!(
                    "invalid credential on standard input: {e}; pass what `kgate users export` or \
                 Kafka's ScramCredentialUtils prints"
                )
            })
    })?;
    println!(
        "imported {mechanism} of {} into {}",
        args.name,
        target.place()
    );
    Ok(())
}

/// Waits until no other `kgate users` or gateway is changing `path`; released when dropped.
fn lock(path: &Path) -> anyhow::Result<kgate_auth::CredentialLock> {
    kgate_auth::CredentialLock::acquire(path).map_err(|e| store_error(e, path))
}

/// Loads a users file that must exist (list, remove, export).
fn load_existing(path: &Path) -> anyhow::Result<CredentialStore> {
    CredentialStore::load(path).map_err(|e| store_error(e, path))
}

/// Turns a store error into one line naming the file and the fix.
fn store_error(err: StoreError, path: &Path) -> anyhow::Error {
    match err {
        StoreError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => anyhow!(
            "users file {} does not exist; create it with `kgate users add NAME --password-stdin \
             --users {}`",
            path.display(),
            path.display()
        ),
        StoreError::Write { source, .. } if source.kind() == io::ErrorKind::NotFound => anyhow!(
            "cannot write users file {}: its directory does not exist; create the directory or \
             pick another --users path",
            path.display()
        ),
        StoreError::Credential(e) => anyhow!("{e}; nothing was written to {}", path.display()),
        other => anyhow!(other),
    }
}

/// Reads the password from standard input: one line on a terminal, else everything.
fn read_password_stdin() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let stdin = io::stdin();
    let mut password = Zeroizing::new(Vec::new());
    if stdin.is_terminal() {
        eprintln!("password (input is shown; end with Enter):");
        stdin
            .lock()
            .read_until(b'\n', &mut password)
            .context("cannot read the password from standard input")?;
    } else {
        stdin
            .lock()
            .read_to_end(&mut password)
            .context("cannot read the password from standard input")?;
    }
    strip_one_newline(&mut password);
    if password.is_empty() {
        bail!(
            "empty password on standard input; pipe it in, e.g. printf '%s' \"$PASSWORD\" | \
             kgate users add NAME --password-stdin --users FILE"
        );
    }
    check_utf8(&password, "standard input")?;
    Ok(password)
}

/// Reads the password from a file.
fn read_password_file(file: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut password = Zeroizing::new(std::fs::read(file).map_err(|e| {
        anyhow!(
            "cannot read password file {}: {e}; pass an existing, readable file to \
             --password-file",
            file.display()
        )
    })?);
    strip_one_newline(&mut password);
    if password.is_empty() {
        bail!(
            "password file {} is empty; write the password into it (one line)",
            file.display()
        );
    }
    check_utf8(&password, &file.display().to_string())?;
    Ok(password)
}

/// Kafka clients send passwords as UTF-8, so any other bytes could never log in.
fn check_utf8(password: &[u8], source: &str) -> anyhow::Result<()> {
    if std::str::from_utf8(password).is_err() {
        bail!("the password from {source} is not UTF-8; Kafka clients send UTF-8 passwords");
    }
    Ok(())
}

/// Drops one trailing `\n` or `\r\n`, as `echo` and editors add them.
fn strip_one_newline(password: &mut Zeroizing<Vec<u8>>) {
    if password.last() == Some(&b'\n') {
        password.pop();
        if password.last() == Some(&b'\r') {
            password.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        users: UsersArgs,
    }

    #[test]
    fn add_defaults_to_both_mechanisms_and_4096_iterations() {
        let cli =
            Cli::try_parse_from(["kgate", "add", "alice", "--password-stdin", "--users", "u"])
                .unwrap();
        let UsersCommand::Add(add) = cli.users.command else {
            panic!()
        };
        assert!(add.mechanisms.is_empty());
        assert_eq!(add.iterations, 4096);
    }

    #[test]
    fn add_needs_exactly_one_password_source() {
        assert!(Cli::try_parse_from(["kgate", "add", "alice", "--users", "u"]).is_err());
        assert!(Cli::try_parse_from([
            "kgate",
            "add",
            "alice",
            "--password-stdin",
            "--password-file",
            "f",
            "--users",
            "u"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["kgate", "add", "alice", "--password", "x", "--users", "u"])
                .is_err()
        );
    }

    #[test]
    fn iterations_outside_kafka_range_are_refused() {
        for n in ["4095", "16385"] {
            assert!(Cli::try_parse_from([
                "kgate",
                "add",
                "a",
                "--password-stdin",
                "--iterations",
                n,
                "--users",
                "u"
            ])
            .is_err());
        }
    }

    #[test]
    fn the_state_config_wins_over_a_users_file() {
        let cli = Cli::try_parse_from([
            "kgate",
            "list",
            "--users",
            "u.toml",
            "--state-config",
            "kgate.toml",
        ])
        .unwrap();
        let UsersCommand::List(list) = cli.users.command else {
            panic!()
        };
        assert!(
            matches!(list.file.target(), Ok(Target::Shared(c)) if c == Path::new("kgate.toml"))
        );
    }

    #[test]
    fn strips_exactly_one_newline() {
        for (input, output) in [
            (&b"pw\n"[..], &b"pw"[..]),
            (b"pw\r\n", b"pw"),
            (b"pw\n\n", b"pw\n"),
            (b"pw", b"pw"),
        ] {
            let mut p = Zeroizing::new(input.to_vec());
            strip_one_newline(&mut p);
            assert_eq!(&p[..], output);
        }
    }
}
