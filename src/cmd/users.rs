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
  kgate users remove bob --users users.toml";

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

/// The credential file, shared by every subcommand.
#[derive(Debug, Args)]
struct UsersFile {
    /// The credential file (TOML; created by `add` if missing).
    #[arg(long, value_name = "FILE", env = "KGATE_USERS")]
    users: PathBuf,
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
        UsersCommand::List(args) => list(&args.file.users),
        UsersCommand::Remove(args) => remove(args),
        UsersCommand::Export(args) => export(args),
        UsersCommand::Import(args) => import(args),
    }
}

fn add(args: AddArgs) -> anyhow::Result<()> {
    let path = &args.file.users;
    let mut mechanisms: Vec<Mechanism> = args.mechanisms.iter().map(|&m| m.into()).collect();
    if mechanisms.is_empty() {
        mechanisms = Mechanism::ALL.to_vec();
    }
    mechanisms.sort();
    mechanisms.dedup();

    let store = CredentialStore::load_or_empty(path).map_err(|e| store_error(e, path))?;
    if !args.replace {
        if let Some(existing) = mechanisms
            .iter()
            .find(|&&m| store.credential(&args.name, m).is_some())
        {
            bail!(
                "user {:?} already has a {existing} credential in {}; pass --replace to change \
                 the password",
                args.name,
                path.display()
            );
        }
    }
    let password = match &args.password_file {
        Some(file) => read_password_file(file)?,
        None => read_password_stdin()?,
    };
    // From here to the write, no other `kgate users` or gateway may change the file.
    let _lock = lock(path)?;
    let mut store = CredentialStore::load_or_empty(path).map_err(|e| store_error(e, path))?;
    if !args.replace {
        if let Some(existing) = mechanisms
            .iter()
            .find(|&&m| store.credential(&args.name, m).is_some())
        {
            bail!(
                "user {:?} got a {existing} credential in {} meanwhile; pass --replace to change \
                 the password",
                args.name,
                path.display()
            );
        }
    }
    for &mechanism in &mechanisms {
        store
            .set(&args.name, mechanism, &password, args.iterations)
            .map_err(|e| store_error(e, path))?;
    }
    store.save(path).map_err(|e| store_error(e, path))?;
    let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
    println!(
        "{} {} ({}; {} iterations) to {}",
        if args.replace { "set" } else { "added" },
        args.name,
        names.join(", "),
        args.iterations,
        path.display()
    );
    Ok(())
}

fn list(path: &Path) -> anyhow::Result<()> {
    let store = load_existing(path)?;
    let users = store.list();
    if users.is_empty() {
        println!(
            "no users in {}; add one with `kgate users add NAME --password-stdin --users {}`",
            path.display(),
            path.display()
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
    let path = &args.file.users;
    // A missing file is reported as such, before a lock file is made beside it.
    load_existing(path)?;
    let _lock = lock(path)?;
    let mut store = load_existing(path)?;
    let unknown_user = || {
        anyhow!(
            "no user {:?} in {}; see `kgate users list --users {}`",
            args.name,
            path.display(),
            path.display()
        )
    };
    match args.mechanism.map(Mechanism::from) {
        None => {
            store.remove(&args.name).map_err(|_| unknown_user())?;
            store.save(path).map_err(|e| store_error(e, path))?;
            println!("removed {} from {}", args.name, path.display());
        }
        Some(mechanism) => {
            if store.user(&args.name).is_none() {
                return Err(unknown_user());
            }
            store.delete(&args.name, mechanism).map_err(|e| match e {
                CredentialError::NotFound => anyhow!(
                    "user {:?} has no {mechanism} credential in {}; see `kgate users list \
                         --users {}`",
                    args.name,
                    path.display(),
                    path.display()
                ),
                other => anyhow!(other),
            })?;
            store.save(path).map_err(|e| store_error(e, path))?;
            println!(
                "removed {mechanism} of {} from {}",
                args.name,
                path.display()
            );
        }
    }
    Ok(())
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let path = &args.file.users;
    let store = load_existing(path)?;
    let mechanism = Mechanism::from(args.mechanism);
    let credential = store.export(&args.name, mechanism).ok_or_else(|| {
        anyhow!(
            "user {:?} has no {mechanism} credential in {}; see `kgate users list --users {}`",
            args.name,
            path.display(),
            path.display()
        )
    })?;
    println!("{credential}");
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let path = &args.file.users;
    let mechanism = Mechanism::from(args.mechanism);
    let already = |store: &CredentialStore| {
        if !args.replace && store.credential(&args.name, mechanism).is_some() {
            bail!(
                "user {:?} already has a {mechanism} credential in {}; pass --replace to overwrite it",
                args.name,
                path.display()
            );
        }
        Ok(())
    };
    already(&CredentialStore::load_or_empty(path).map_err(|e| store_error(e, path))?)?;
    let mut text = Zeroizing::new(String::new());
    io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the credential from standard input")?;
    let _lock = lock(path)?;
    let mut store = CredentialStore::load_or_empty(path).map_err(|e| store_error(e, path))?;
    already(&store)?;
    store
        .import(&args.name, mechanism, text.trim())
        .map_err(|e| {
            anyhow!(
                "invalid credential on standard input: {e}; pass what `kgate users export` or \
                 Kafka's ScramCredentialUtils prints"
            )
        })?;
    store.save(path).map_err(|e| store_error(e, path))?;
    println!(
        "imported {mechanism} of {} into {}",
        args.name,
        path.display()
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
