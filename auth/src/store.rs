//! The credential store: users and their SCRAM credentials, kept in a TOML file.
//!
//! # File format
//! ```toml
//! [users.alice.SCRAM-SHA-256]
//! iterations = 4096
//! salt = "<base64>"
//! server_key = "<base64>"
//! stored_key = "<base64>"
//! ```
//! One table per user and mechanism (`SCRAM-SHA-256`, `SCRAM-SHA-512`), holding exactly what
//! Kafka keeps. No password, and no salted password, is ever written. The file is replaced
//! atomically (a temporary file in the same directory, fsync, rename, fsync of the directory)
//! and always has mode 0600: StoredKey and ServerKey let whoever reads them pose as the
//! server to a client, and make offline password guessing possible.
//!
//! A bad file is refused with the file name, line, column and a fix; [`SharedCredentials`]
//! then keeps the credentials it had.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use zeroize::Zeroizing;

use crate::credential::CredentialFormatError;
use crate::{crypto, Mechanism, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

// === errors ===

/// A per-user error of Kafka's AlterUserScramCredentials, with Kafka's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// An empty username (UNACCEPTABLE_CREDENTIAL, 93).
    #[error("Username must not be empty")]
    EmptyUsername,
    /// A username with control characters (93); kgate's rule, so names print safely in logs.
    #[error("Username must be printable text")]
    UnprintableUsername,
    /// Fewer than 4096 iterations (93).
    #[error("Too few iterations")]
    TooFewIterations,
    /// More than 16384 iterations (93).
    #[error("Too many iterations")]
    TooManyIterations,
    /// A salt or salted password that cannot make a credential (93).
    #[error("Unacceptable credential: {0}")]
    Unacceptable(CredentialFormatError),
    /// A mechanism code other than 1 or 2 (UNSUPPORTED_SASL_MECHANISM, 33).
    #[error("Unknown SCRAM mechanism")]
    UnknownMechanism,
    /// Deleting a credential that does not exist (RESOURCE_NOT_FOUND, 91).
    #[error("Attempt to delete a user credential that does not exist")]
    NotFound,
    /// The same user and mechanism twice in one request (DUPLICATE_RESOURCE, 92).
    #[error("A user credential cannot be altered twice in the same request")]
    Duplicate,
}

impl CredentialError {
    /// The Kafka error code for this user's result in AlterUserScramCredentials.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            CredentialError::EmptyUsername
            | CredentialError::UnprintableUsername
            | CredentialError::TooFewIterations
            | CredentialError::TooManyIterations
            | CredentialError::Unacceptable(_) => 93,
            CredentialError::UnknownMechanism => 33,
            CredentialError::NotFound => 91,
            CredentialError::Duplicate => 92,
        }
    }
}

/// Why the credential file could not be read, parsed, changed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read.
    #[error("cannot read credential file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file could not be written.
    #[error("cannot write credential file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file's content is wrong at a known place.
    #[error("{}:{line}:{column}: {message}; {fix}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// `add` for a credential that exists; `set` replaces it.
    #[error("user {name:?} already has a {mechanism} credential")]
    AlreadyExists {
        /// The user.
        name: String,
        /// The mechanism.
        mechanism: Mechanism,
    },
    /// No such user.
    #[error("no user {0:?}")]
    UnknownUser(String),
    /// A rule of Kafka's on usernames, iterations or mechanisms.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// A credential (or Kafka credential string) that is not well formed.
    #[error(transparent)]
    Format(#[from] CredentialFormatError),
    /// The operating system's random source failed (no salt could be made).
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
    /// The shared state in the cluster (`state = "kafka"`) could not take the change;
    /// nothing changed.
    #[error("the shared state in the cluster: {0}")]
    Shared(#[source] Box<dyn std::error::Error + Send + Sync>),
}

// === impl CredentialStore ===

/// The SCRAM credentials of one user, by mechanism.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserCredentials {
    by_mechanism: BTreeMap<Mechanism, ScramCredential>,
}

impl UserCredentials {
    /// The credential for `mechanism`, if the user has one.
    pub fn credential(&self, mechanism: Mechanism) -> Option<&ScramCredential> {
        self.by_mechanism.get(&mechanism)
    }

    /// The mechanisms the user has, with their credentials.
    pub fn iter(&self) -> impl Iterator<Item = (Mechanism, &ScramCredential)> {
        self.by_mechanism.iter().map(|(m, c)| (*m, c))
    }
}

/// What [`CredentialStore::list`] shows of a user: never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The username.
    pub name: String,
    /// Each mechanism the user has, with its iteration count (what Kafka's
    /// DescribeUserScramCredentials returns).
    pub mechanisms: Vec<(Mechanism, u32)>,
}

/// One upsertion of Kafka's AlterUserScramCredentials, as it comes off the wire.
#[derive(Clone)]
pub struct Upsertion {
    /// The user.
    pub name: String,
    /// Kafka's mechanism code (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512).
    pub mechanism: i8,
    /// PBKDF2 iterations the client used.
    pub iterations: i32,
    /// The salt the client chose.
    pub salt: Vec<u8>,
    /// Hi(password, salt, iterations), computed by the client. A secret: zeroized on drop.
    pub salted_password: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Upsertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upsertion")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("salted_password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// One deletion of Kafka's AlterUserScramCredentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The user.
    pub name: String,
    /// Kafka's mechanism code.
    pub mechanism: i8,
}

/// All users and their SCRAM credentials: an immutable value once shared.
///
/// Change it with the methods below, then [`CredentialStore::save`]; or, inside the proxy,
/// through [`SharedCredentials::update`], which saves and swaps atomically.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    users: BTreeMap<String, UserCredentials>,
    /// The mechanism and iterations PLAIN's decoy work uses for an unknown user
    /// ([`CredentialStore::plain_decoy`]), computed once; every change of `users` clears it.
    plain_decoy: std::sync::OnceLock<(Mechanism, u32)>,
    /// Per mechanism, the iteration count most stored credentials use (for SCRAM decoys),
    /// computed once; every change of `users` clears it.
    usual_iterations: std::sync::OnceLock<BTreeMap<Mechanism, u32>>,
}

impl PartialEq for CredentialStore {
    fn eq(&self, other: &Self) -> bool {
        // The cache is derived from the users.
        self.users == other.users
    }
}

impl Eq for CredentialStore {}

impl CredentialStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and checks a credential file.
    ///
    /// # Errors
    /// [`StoreError::Read`] (e.g. the file does not exist) or [`StoreError::Parse`] with the
    /// line, column and a fix.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = fs::read_to_string(path).map_err(|source| StoreError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Like [`CredentialStore::load`], but a missing file is an empty store (for `users add`,
    /// which creates the file).
    ///
    /// # Errors
    /// As [`CredentialStore::load`], except for a missing file.
    pub fn load_or_empty(path: &Path) -> Result<Self, StoreError> {
        match Self::load(path) {
            Err(StoreError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(Self::new())
            }
            other => other,
        }
    }

    /// Parses the content of a credential file; `path` only names it in errors.
    ///
    /// # Errors
    /// [`StoreError::Parse`] with the line, column and a fix.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, StoreError> {
        let at = |span: std::ops::Range<usize>, message: String, fix: &str| {
            let (line, column) = line_column(text, span.start);
            StoreError::Parse {
                path: path.to_owned(),
                line,
                column,
                message,
                fix: fix.to_owned(),
            }
        };
        let file: FileIn = toml::from_str(text).map_err(|e| {
            at(
                e.span().unwrap_or(0..0),
                e.message().trim().replace('\n', " "),
                "fix the TOML there, or remove the user and add it again with `kgate users add`",
            )
        })?;
        let mut store = CredentialStore::new();
        for (name, table) in file.users {
            let name_span = name.span();
            let name = name.into_inner();
            if let Err(e) = validate_username(&name) {
                return Err(at(
                    name_span,
                    format!("invalid username {name:?}: {e}"),
                    "use a non-empty name without control characters",
                ));
            }
            let mut user = UserCredentials::default();
            for (mechanism_name, entry) in table {
                let Some(mechanism) = Mechanism::from_name(mechanism_name.get_ref()) else {
                    return Err(at(
                        mechanism_name.span(),
                        format!("unknown mechanism {:?}", mechanism_name.get_ref()),
                        "use SCRAM-SHA-256 or SCRAM-SHA-512",
                    ));
                };
                let readd = format!(
                    "re-create it with `kgate users add {name} --mechanism {mechanism} \
                     --password-stdin`"
                );
                let decode = |field: &Spanned<String>, what: &str| {
                    BASE64.decode(field.get_ref()).map_err(|_| {
                        at(
                            field.span(),
                            format!("{what} of {name}/{mechanism} is not valid Base64"),
                            &readd,
                        )
                    })
                };
                let salt = decode(&entry.salt, "salt")?;
                let stored_key = decode(&entry.stored_key, "stored_key")?;
                let server_key = decode(&entry.server_key, "server_key")?;
                let iterations = *entry.iterations.get_ref();
                let credential = ScramCredential::from_parts(
                    mechanism, salt, stored_key, server_key, iterations,
                )
                .map_err(|e| {
                    let span = match e {
                        CredentialFormatError::Iterations(_) => entry.iterations.span(),
                        CredentialFormatError::EmptySalt => entry.salt.span(),
                        CredentialFormatError::KeyLength {
                            field: "server_key",
                            ..
                        } => entry.server_key.span(),
                        _ => entry.stored_key.span(),
                    };
                    at(span, format!("{name}/{mechanism}: {e}"), &readd)
                })?;
                user.by_mechanism.insert(mechanism, credential);
            }
            if user.by_mechanism.is_empty() {
                return Err(at(
                    name_span,
                    format!("user {name:?} has no credential"),
                    "add one with `kgate users add`, or delete the empty table",
                ));
            }
            store.users_mut().insert(name, user);
        }
        Ok(store)
    }

    /// The file content for this store (the header comment, then one table per credential).
    pub fn to_toml(&self) -> String {
        let file = FileOut {
            users: self
                .users
                .iter()
                .map(|(name, user)| {
                    let table = user
                        .iter()
                        .map(|(m, c)| {
                            let entry = EntryOut {
                                iterations: c.iterations(),
                                salt: BASE64.encode(c.salt()),
                                server_key: BASE64.encode(c.server_key()),
                                stored_key: BASE64.encode(c.stored_key()),
                            };
                            (m.name(), entry)
                        })
                        .collect();
                    (name.as_str(), table)
                })
                .collect(),
        };
        // Maps of strings, strings and integers always serialize; an empty string is the
        // (unreachable) fallback rather than a panic.
        let body = toml::to_string(&file).unwrap_or_default();
        format!("{FILE_HEADER}\n{body}")
    }

    /// Writes the store to `path` atomically with mode 0600.
    ///
    /// # Errors
    /// [`StoreError::Write`] naming the file.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        write_atomically(path, self.to_toml().as_bytes()).map_err(|source| StoreError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The user's credentials, if the user exists.
    pub fn user(&self, name: &str) -> Option<&UserCredentials> {
        self.users.get(name)
    }

    /// The user's credential for `mechanism`.
    pub fn credential(&self, name: &str, mechanism: Mechanism) -> Option<&ScramCredential> {
        self.users.get(name)?.credential(mechanism)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Every user with mechanisms and iteration counts, sorted by name; never a secret.
    pub fn list(&self) -> Vec<UserSummary> {
        self.users
            .iter()
            .map(|(name, user)| UserSummary {
                name: name.clone(),
                mechanisms: user.iter().map(|(m, c)| (m, c.iterations())).collect(),
            })
            .collect()
    }

    /// Creates a credential from a password (random salt; runs PBKDF2). Refuses to replace
    /// an existing one: see [`CredentialStore::set`].
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], an invalid username or iteration count, or a failing
    /// random source.
    pub fn add(
        &mut self,
        name: &str,
        mechanism: Mechanism,
        password: &[u8],
        iterations: u32,
    ) -> Result<(), StoreError> {
        if self.credential(name, mechanism).is_some() {
            return Err(StoreError::AlreadyExists {
                name: name.to_owned(),
                mechanism,
            });
        }
        self.set(name, mechanism, password, iterations)
    }

    /// Creates or replaces a credential from a password (random salt; runs PBKDF2).
    ///
    /// # Errors
    /// An invalid username or iteration count, or a failing random source.
    pub fn set(
        &mut self,
        name: &str,
        mechanism: Mechanism,
        password: &[u8],
        iterations: u32,
    ) -> Result<(), StoreError> {
        validate_username(name)?;
        check_iteration_range(i64::from(iterations))?;
        let credential = ScramCredential::from_password(mechanism, password, iterations)?;
        self.insert(name, mechanism, credential)?;
        Ok(())
    }

    /// Creates or replaces a credential made elsewhere (e.g. imported from Kafka).
    ///
    /// # Errors
    /// [`CredentialError`] for an invalid username.
    pub fn insert(
        &mut self,
        name: &str,
        mechanism: Mechanism,
        credential: ScramCredential,
    ) -> Result<(), CredentialError> {
        validate_username(name)?;
        self.users_mut()
            .entry(name.to_owned())
            .or_default()
            .by_mechanism
            .insert(mechanism, credential);
        Ok(())
    }

    /// Removes a user and all of their credentials.
    ///
    /// # Errors
    /// [`StoreError::UnknownUser`].
    pub fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        self.users_mut()
            .remove(name)
            .map(drop)
            .ok_or_else(|| StoreError::UnknownUser(name.to_owned()))
    }

    /// Removes one credential of a user (the user goes when the last one does), as Kafka's
    /// AlterUserScramCredentials deletion.
    ///
    /// # Errors
    /// [`CredentialError::NotFound`] (91) when the user has no such credential;
    /// [`CredentialError::EmptyUsername`] for an empty name.
    pub fn delete(&mut self, name: &str, mechanism: Mechanism) -> Result<(), CredentialError> {
        if name.is_empty() {
            return Err(CredentialError::EmptyUsername);
        }
        let user = self
            .users_mut()
            .get_mut(name)
            .ok_or(CredentialError::NotFound)?;
        user.by_mechanism
            .remove(&mechanism)
            .ok_or(CredentialError::NotFound)?;
        if user.by_mechanism.is_empty() {
            self.users_mut().remove(name);
        }
        Ok(())
    }

    /// Creates or replaces a credential from what Kafka's AlterUserScramCredentials carries:
    /// the client ran PBKDF2, the server derives StoredKey and ServerKey (cheap).
    ///
    /// # Errors
    /// Kafka's per-user errors: [`CredentialError::EmptyUsername`],
    /// [`CredentialError::TooFewIterations`], [`CredentialError::TooManyIterations`] (all
    /// 93), or [`CredentialError::Unacceptable`] for an empty salt or a salted password that
    /// is not the hash length.
    pub fn upsert_salted_password(
        &mut self,
        name: &str,
        mechanism: Mechanism,
        iterations: i32,
        salt: &[u8],
        salted_password: &[u8],
    ) -> Result<(), CredentialError> {
        validate_username(name)?;
        let iterations = check_iteration_range(i64::from(iterations))?;
        let credential = ScramCredential::from_salted_password(
            mechanism,
            salt.to_vec(),
            salted_password,
            iterations,
        )
        .map_err(CredentialError::Unacceptable)?;
        self.insert(name, mechanism, credential)
    }

    /// Applies one AlterUserScramCredentials request as Kafka's controller does and returns
    /// one result per user, in order of first appearance (deletions first).
    ///
    /// A user named twice for the same mechanism gets [`CredentialError::Duplicate`]; a user
    /// with any invalid alteration gets that error and none of its alterations are applied.
    /// Other users are not affected.
    pub fn alter(
        &mut self,
        deletions: &[Deletion],
        upsertions: &[Upsertion],
    ) -> Vec<(String, Result<(), CredentialError>)> {
        let mut order: Vec<&str> = Vec::new();
        let mut seen: Vec<(&str, i8)> = Vec::new();
        let mut duplicates: Vec<&str> = Vec::new();
        let names = deletions
            .iter()
            .map(|d| (d.name.as_str(), d.mechanism))
            .chain(upsertions.iter().map(|u| (u.name.as_str(), u.mechanism)));
        for (name, mechanism) in names {
            if !order.contains(&name) {
                order.push(name);
            }
            if seen.contains(&(name, mechanism)) {
                duplicates.push(name);
            } else {
                seen.push((name, mechanism));
            }
        }
        order
            .into_iter()
            .map(|name| {
                let result = if duplicates.contains(&name) {
                    Err(CredentialError::Duplicate)
                } else {
                    self.alter_user(name, deletions, upsertions)
                };
                (name.to_owned(), result)
            })
            .collect()
    }

    /// Validates then applies every alteration of one user, all or nothing.
    fn alter_user(
        &mut self,
        name: &str,
        deletions: &[Deletion],
        upsertions: &[Upsertion],
    ) -> Result<(), CredentialError> {
        let mut next = self.clone();
        for d in deletions.iter().filter(|d| d.name == name) {
            let mechanism =
                Mechanism::from_kafka_type(d.mechanism).ok_or(CredentialError::UnknownMechanism)?;
            next.delete(name, mechanism)?;
        }
        for u in upsertions.iter().filter(|u| u.name == name) {
            let mechanism =
                Mechanism::from_kafka_type(u.mechanism).ok_or(CredentialError::UnknownMechanism)?;
            next.upsert_salted_password(
                name,
                mechanism,
                u.iterations,
                &u.salt,
                &u.salted_password,
            )?;
        }
        // Only this user's entry changed in `next`.
        match next.users.remove(name) {
            Some(user) => self.users_mut().insert(name.to_owned(), user),
            None => self.users_mut().remove(name),
        };
        Ok(())
    }

    /// Adds or replaces a credential given as Kafka's credential string
    /// `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`.
    ///
    /// # Errors
    /// An invalid username, or a malformed string.
    pub fn import(
        &mut self,
        name: &str,
        mechanism: Mechanism,
        kafka_credential: &str,
    ) -> Result<(), StoreError> {
        let credential = ScramCredential::from_kafka_string(mechanism, kafka_credential)?;
        self.insert(name, mechanism, credential)?;
        Ok(())
    }

    /// The user's credential as Kafka's credential string, for `kafka-configs` or a KRaft
    /// bootstrap. It holds secrets (StoredKey, ServerKey), though no password.
    pub fn export(&self, name: &str, mechanism: Mechanism) -> Option<String> {
        Some(self.credential(name, mechanism)?.to_kafka_string())
    }

    /// Checks a PLAIN password against the user's credential, preferring SCRAM-SHA-256
    /// (cheaper) when the user has both. Runs PBKDF2: see [`crate::plain`] for why this
    /// belongs on a blocking thread. `None` when the user does not exist.
    pub fn verify_password(&self, name: &str, password: &[u8]) -> Option<bool> {
        let user = self.users.get(name)?;
        let (mechanism, credential) = user.iter().next()?;
        Some(credential.verify_password(mechanism, password))
    }

    /// The mechanism and iteration count of the credential [`verify_password`] would check
    /// for a typical user: the most common among the users' PLAIN credentials (on a tie the
    /// first in mechanism then iteration order), or SCRAM-SHA-256 with [`DEFAULT_ITERATIONS`] for an empty store. PLAIN runs
    /// PBKDF2 with these for an unknown user, so that the time of the answer does not tell
    /// whether the user exists. Computed once per store value (reloads make a new one).
    ///
    /// [`verify_password`]: CredentialStore::verify_password
    /// [`DEFAULT_ITERATIONS`]: crate::DEFAULT_ITERATIONS
    pub fn plain_decoy(&self) -> (Mechanism, u32) {
        *self.plain_decoy.get_or_init(|| {
            let mut counts: BTreeMap<(Mechanism, u32), usize> = BTreeMap::new();
            for user in self.users.values() {
                if let Some((mechanism, credential)) = user.iter().next() {
                    *counts
                        .entry((mechanism, credential.iterations()))
                        .or_default() += 1;
                }
            }
            // `max_by_key` keeps the last maximum: iterate in reverse to keep the first.
            counts.into_iter().rev().max_by_key(|(_, n)| *n).map_or(
                (Mechanism::ScramSha256, crate::DEFAULT_ITERATIONS),
                |(k, _)| k,
            )
        })
    }

    /// The iteration count most stored `mechanism` credentials use (the default when there
    /// are none): what an unknown user's SCRAM decoy announces, so that its count does not
    /// stand out among real users'.
    pub fn usual_iterations(&self, mechanism: Mechanism) -> u32 {
        let usual = self.usual_iterations.get_or_init(|| {
            let mut counts: BTreeMap<(Mechanism, u32), usize> = BTreeMap::new();
            for user in self.users.values() {
                for (m, c) in user.iter() {
                    *counts.entry((m, c.iterations())).or_default() += 1;
                }
            }
            let mut best: BTreeMap<Mechanism, (u32, usize)> = BTreeMap::new();
            for ((m, iterations), n) in counts {
                let entry = best.entry(m).or_insert((iterations, n));
                if n > entry.1 {
                    *entry = (iterations, n);
                }
            }
            best.into_iter().map(|(m, (i, _))| (m, i)).collect()
        });
        usual
            .get(&mechanism)
            .copied()
            .unwrap_or(crate::DEFAULT_ITERATIONS)
    }

    /// The users, for a change: clears what is derived from them.
    fn users_mut(&mut self) -> &mut BTreeMap<String, UserCredentials> {
        self.plain_decoy = std::sync::OnceLock::new();
        self.usual_iterations = std::sync::OnceLock::new();
        &mut self.users
    }
}

/// Kafka's username rule (not empty) plus kgate's (no control characters).
///
/// # Errors
/// [`CredentialError::EmptyUsername`] or [`CredentialError::UnprintableUsername`].
pub fn validate_username(name: &str) -> Result<(), CredentialError> {
    if name.is_empty() {
        Err(CredentialError::EmptyUsername)
    } else if name.chars().any(char::is_control) {
        Err(CredentialError::UnprintableUsername)
    } else {
        Ok(())
    }
}

fn check_iteration_range(iterations: i64) -> Result<u32, CredentialError> {
    if iterations < i64::from(MIN_ITERATIONS) {
        Err(CredentialError::TooFewIterations)
    } else if iterations > i64::from(MAX_ITERATIONS) {
        Err(CredentialError::TooManyIterations)
    } else {
        u32::try_from(iterations).map_err(|_| CredentialError::TooManyIterations)
    }
}

// === file format ===

const FILE_HEADER: &str = "\
# kgate credential file: salted SCRAM credentials (RFC 5802), one table per user and mechanism.
# No password is stored. StoredKey and ServerKey are still secrets: keep this file mode 0600.
# Manage it with `kgate users add|list|remove --users FILE`.
";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[serde(default)]
    users: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, EntryIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    salt: Spanned<String>,
    stored_key: Spanned<String>,
    server_key: Spanned<String>,
    iterations: Spanned<u32>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    users: BTreeMap<&'a str, BTreeMap<&'static str, EntryOut>>,
}

#[derive(Serialize)]
struct EntryOut {
    iterations: u32,
    salt: String,
    server_key: String,
    stored_key: String,
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// An exclusive lock on a credential file's changes, across processes: `kgate users` and the
/// gateway (AlterUserScramCredentials) each read, change and write the whole file, and
/// without the lock two of them at once would lose one change. Held until dropped.
///
/// The lock is on `<file>.lock` beside the credentials, because every write replaces the
/// credential file with a new one.
#[derive(Debug)]
pub struct CredentialLock {
    _lock: kgate_fsutil::FileLock,
}

/// Longest wait for the credential file's lock in [`SharedCredentials::update`], which runs
/// on a request path: a `kgate users` stopped while holding the lock must not hold requests
/// forever.
pub const GATEWAY_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl CredentialLock {
    /// Waits for the lock of `path`'s changes (the CLI: as long as it takes).
    ///
    /// # Errors
    /// [`StoreError::Write`] naming the lock file when it cannot be opened or locked.
    pub fn acquire(path: &Path) -> Result<Self, StoreError> {
        Self::acquire_within(path, None)
    }

    /// Waits at most `limit` for the lock.
    ///
    /// # Errors
    /// [`StoreError::Write`] naming the lock file, also when `limit` passes.
    pub fn acquire_within(
        path: &Path,
        limit: Option<std::time::Duration>,
    ) -> Result<Self, StoreError> {
        kgate_fsutil::FileLock::acquire(path, limit)
            .map(|lock| Self { _lock: lock })
            .map_err(|source| StoreError::Write {
                path: kgate_fsutil::lock_path(path),
                source,
            })
    }
}

/// Replaces `path` with `contents` so that readers see the old file or the new one, never a
/// mix, and a crash leaves no half-written credentials: write a temporary file (mode 0600)
/// beside it, fsync it, rename it over `path`, fsync the directory.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut suffix = [0u8; 8];
    crypto::fill_random(&mut suffix).map_err(io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        u64::from_le_bytes(suffix)
    ));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable; some filesystems cannot fsync a directory.
        if let Ok(dir) = fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// === impl SharedCredentials ===

/// Where the credentials live when they are not a file: the shared state topic of several
/// gateways. The sink owns them: [`SharedCredentials::update`] hands it the change, and the
/// sink puts every change (this instance's and others') in force with
/// [`SharedCredentials::install_from_sink`].
pub trait CredentialSink: Send + Sync + fmt::Debug {
    /// Makes the change from `before` (in force) to `after` durable and returns once it is
    /// in force here.
    ///
    /// # Errors
    /// [`StoreError::Shared`]: the sink could not take the change; nothing changed.
    fn commit(&self, before: &CredentialStore, after: &CredentialStore) -> Result<(), StoreError>;
}

/// The proxy's handle on the credential file: cheap to clone, lock-free to read.
///
/// Each authentication takes a [`snapshot`](SharedCredentials::snapshot) (an
/// `Arc<CredentialStore>`) and uses it to the end, so a reload never changes credentials
/// under a running exchange. [`reload`](SharedCredentials::reload) re-reads the file and
/// keeps the old credentials if the new file is bad; [`update`](SharedCredentials::update)
/// changes, saves and publishes in one step (for AlterUserScramCredentials). Writers are
/// serialized by a mutex; readers never wait.
#[derive(Clone)]
pub struct SharedCredentials {
    inner: Arc<SharedInner>,
}

struct SharedInner {
    /// The file reload reads and update writes.
    path: PathBuf,
    /// The credentials in force.
    current: ArcSwap<CredentialStore>,
    /// Serializes reload and update so that no change is lost between read and swap.
    writer: Mutex<()>,
    /// Bumped each time other credentials are put in force.
    generation: std::sync::atomic::AtomicU64,
    /// The shared store that owns the credentials, if any (then `path` is only a label).
    sink: Option<Arc<dyn CredentialSink>>,
}

impl fmt::Debug for SharedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCredentials")
            .field("path", &self.inner.path)
            .field("users", &self.inner.current.load().len())
            .finish()
    }
}

impl SharedCredentials {
    /// Loads the credential file.
    ///
    /// # Errors
    /// As [`CredentialStore::load`]: a missing or bad file.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let store = CredentialStore::load(&path)?;
        Ok(Self::with_store(path, store))
    }

    /// Wraps a store built in memory (e.g. by `kgate demo`); `path` is where
    /// [`update`](SharedCredentials::update) writes and [`reload`](SharedCredentials::reload)
    /// reads.
    pub fn with_store(path: impl Into<PathBuf>, store: CredentialStore) -> Self {
        SharedCredentials {
            inner: Arc::new(SharedInner {
                path: path.into(),
                current: ArcSwap::from_pointee(store),
                writer: Mutex::new(()),
                generation: std::sync::atomic::AtomicU64::new(0),
                sink: None,
            }),
        }
    }

    /// Credentials owned by a shared [`CredentialSink`] (the cluster's state topic): changes
    /// go to the sink, reloads do nothing, and the sink puts every change in force with
    /// [`SharedCredentials::install_from_sink`]. `label` names the store in messages.
    pub fn with_sink(
        label: impl Into<PathBuf>,
        store: CredentialStore,
        sink: Arc<dyn CredentialSink>,
    ) -> Self {
        SharedCredentials {
            inner: Arc::new(SharedInner {
                path: label.into(),
                current: ArcSwap::from_pointee(store),
                writer: Mutex::new(()),
                generation: std::sync::atomic::AtomicU64::new(0),
                sink: Some(sink),
            }),
        }
    }

    /// Whether the credentials live in a shared sink rather than a file.
    pub fn is_shared(&self) -> bool {
        self.inner.sink.is_some()
    }

    /// Puts in force the credentials the shared sink has read (a change from any instance).
    pub fn install_from_sink(&self, store: CredentialStore) {
        // Not under `writer`: `update` holds it while the sink waits for this very call.
        if *self.inner.current.load_full() == store {
            return;
        }
        self.inner.current.store(Arc::new(store));
        self.bump();
    }

    /// The credentials in force now.
    pub fn snapshot(&self) -> Arc<CredentialStore> {
        self.inner.current.load_full()
    }

    /// The credential file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A number that changes whenever other credentials are put in force (a reload, an
    /// update): open connections compare it to notice a change cheaply.
    pub fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Re-reads the file; on any error the credentials in force stay as they were.
    ///
    /// # Errors
    /// As [`CredentialStore::load`].
    pub fn reload(&self) -> Result<(), StoreError> {
        if self.is_shared() {
            return Ok(());
        }
        let _guard = self.lock();
        let store = CredentialStore::load(&self.inner.path)?;
        self.inner.current.store(Arc::new(store));
        self.bump();
        Ok(())
    }

    /// Applies `change` to a copy of the credentials, writes the file, then puts the copy in
    /// force. If writing fails, nothing changes.
    ///
    /// # Errors
    /// [`StoreError::Write`].
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut CredentialStore) -> T,
    ) -> Result<T, StoreError> {
        let _guard = self.lock();
        if let Some(sink) = &self.inner.sink {
            let current = self.inner.current.load_full();
            let mut next = CredentialStore::clone(&current);
            let out = change(&mut next);
            if next != *current {
                sink.commit(&current, &next)?;
            }
            return Ok(out);
        }
        // `kgate users add` may have changed the file since the last reload: change what is
        // on disk, under the file's lock, so neither change is lost.
        let _file_lock = CredentialLock::acquire_within(&self.inner.path, Some(GATEWAY_LOCK_WAIT))?;
        let mut next = match CredentialStore::load(&self.inner.path) {
            Ok(on_disk) => on_disk,
            Err(StoreError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                CredentialStore::clone(&self.inner.current.load())
            }
            // A file someone left broken is not overwritten.
            Err(e) => return Err(e),
        };
        let out = change(&mut next);
        next.save(&self.inner.path)?;
        self.inner.current.store(Arc::new(next));
        self.bump();
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic elsewhere cannot leave anything inconsistent.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
