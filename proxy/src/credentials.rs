//! The SASL mechanisms of kgate-auth behind the proxy's [`Authenticator`].

use kgate_auth::{plain, Mechanism, ScramServer, SharedCredentials, Step};

use crate::sasl::{Authenticator, SaslSession, SaslStep};

/// A SASL mechanism kgate can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// SCRAM with SHA-256 or SHA-512.
    Scram(Mechanism),
    /// PLAIN, verified against the SCRAM credentials (only over TLS in production).
    Plain,
}

impl SaslMechanism {
    /// Kafka's name of the mechanism.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Scram(m) => m.name(),
            SaslMechanism::Plain => "PLAIN",
        }
    }

    /// Parses Kafka's name (`SCRAM-SHA-512`, `SCRAM-SHA-256`, `PLAIN`), case as Kafka
    /// writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "PLAIN" {
            return Some(SaslMechanism::Plain);
        }
        Mechanism::from_name(name).map(SaslMechanism::Scram)
    }

    /// Every mechanism kgate implements, strongest first.
    pub fn all() -> Vec<Self> {
        vec![
            SaslMechanism::Scram(Mechanism::ScramSha512),
            SaslMechanism::Scram(Mechanism::ScramSha256),
            SaslMechanism::Plain,
        ]
    }
}

/// Authenticates against kgate's credential file, reloadable while running.
#[derive(Debug, Clone)]
pub struct CredentialAuthenticator {
    credentials: SharedCredentials,
    mechanisms: Vec<SaslMechanism>,
}

impl CredentialAuthenticator {
    /// Offers `mechanisms`, checking them against `credentials`.
    pub fn new(credentials: SharedCredentials, mechanisms: Vec<SaslMechanism>) -> Self {
        Self {
            credentials,
            mechanisms,
        }
    }

    /// The credential handle (for reloads and the SCRAM admin APIs).
    pub fn credentials(&self) -> &SharedCredentials {
        &self.credentials
    }
}

impl Authenticator for CredentialAuthenticator {
    fn mechanisms(&self) -> Vec<String> {
        self.mechanisms
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    }

    fn generation(&self) -> u64 {
        self.credentials.generation()
    }

    fn fingerprint(&self, user: &str, mechanism: &str) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let store = self.credentials.snapshot();
        let creds = store.user(user)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match SaslMechanism::from_name(mechanism)? {
            SaslMechanism::Scram(m) => {
                let c = creds.credential(m)?;
                (c.salt(), c.stored_key(), c.server_key(), c.iterations()).hash(&mut h);
            }
            // PLAIN is checked against every credential of the user.
            SaslMechanism::Plain => {
                for (m, c) in creds.iter() {
                    (m.name(), c.salt(), c.stored_key(), c.iterations()).hash(&mut h);
                }
            }
        }
        Some(h.finish())
    }

    fn start(&self, mechanism: &str) -> Option<Box<dyn SaslSession>> {
        let chosen = SaslMechanism::from_name(mechanism).filter(|m| self.mechanisms.contains(m))?;
        Some(match chosen {
            SaslMechanism::Scram(m) => Box::new(ScramSession {
                server: ScramServer::new(m, self.credentials.snapshot()),
            }),
            SaslMechanism::Plain => Box::new(PlainSession {
                credentials: self.credentials.clone(),
            }),
        })
    }
}

struct ScramSession {
    server: ScramServer,
}

impl SaslSession for ScramSession {
    fn step(&mut self, token: &[u8]) -> SaslStep {
        match self.server.step(token) {
            Ok(Step::Continue(challenge)) => SaslStep::Continue(challenge),
            Ok(Step::Done {
                response,
                principal,
            }) => SaslStep::Done {
                response,
                principal: format!("User:{principal}"),
            },
            Err(e) => SaslStep::Failed {
                message: e.to_string(),
                user: self.server.attempted_username().map(str::to_owned),
                reason: e.reason().map(|r| r.to_string()),
            },
        }
    }
}

struct PlainSession {
    credentials: SharedCredentials,
}

impl SaslSession for PlainSession {
    fn step(&mut self, token: &[u8]) -> SaslStep {
        let store = self.credentials.snapshot();
        match plain::authenticate(&store, token) {
            // PLAIN succeeds with an empty server token.
            Ok(user) => SaslStep::Done {
                response: Vec::new(),
                principal: format!("User:{user}"),
            },
            Err(e) => SaslStep::Failed {
                message: e.to_string(),
                user: plain_user(token),
                reason: e.reason().map(|r| r.to_string()),
            },
        }
    }
}

/// The authcid of a PLAIN token, for the log line (never the password).
fn plain_user(token: &[u8]) -> Option<String> {
    let mut fields = token.split(|b| *b == 0);
    let _authzid = fields.next()?;
    let user = fields.next()?;
    Some(String::from_utf8_lossy(user).into_owned())
}
