//! The audit log: one JSON line per authentication and per authorization decision.
//!
//! Denials are always written; allows only when configured (they are as many as requests).
//! Secrets never reach this log: it records who, from where, what and the rule that decided.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use kafka_protocol::messages::ApiKey;
use kgate_policies::{Decision, Operation, ResourceType};
use serde::Serialize;

use crate::authz::Session;

/// Where audit lines go.
pub struct Audit {
    out: Mutex<Box<dyn Write + Send>>,
    log_allows: bool,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("log_allows", &self.log_allows)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AuthzLine<'a> {
    time: String,
    event: &'static str,
    principal: String,
    client: String,
    api: String,
    resource_type: String,
    resource: &'a str,
    operation: String,
    decision: &'static str,
    rule: String,
}

#[derive(Serialize)]
struct AuthnLine<'a> {
    time: String,
    event: &'static str,
    client: String,
    listener: &'a str,
    mechanism: &'a str,
    principal: Option<&'a str>,
    user: Option<&'a str>,
    outcome: &'static str,
    reason: Option<&'a str>,
}

impl Audit {
    /// Appends to `path` (created with mode 0600 if missing).
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn to_file(path: &Path, log_allows: bool) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Self::to_writer(Box::new(file), log_allows))
    }

    /// Writes to any writer (stdout, a buffer in tests).
    pub fn to_writer(out: Box<dyn Write + Send>, log_allows: bool) -> Self {
        Self {
            out: Mutex::new(out),
            log_allows,
        }
    }

    /// Records an authorization decision (denials always, allows when configured).
    pub fn decision(
        &self,
        session: &Session,
        api: ApiKey,
        resource_type: ResourceType,
        resource: &str,
        operation: Operation,
        decision: &Decision,
    ) {
        if decision.allowed && !self.log_allows {
            return;
        }
        self.write(&AuthzLine {
            time: now(),
            event: "authorization",
            principal: session.principal.to_string(),
            client: session.host.to_string(),
            api: format!("{api:?}"),
            resource_type: format!("{resource_type:?}"),
            resource,
            operation: format!("{operation:?}"),
            decision: if decision.allowed { "ALLOW" } else { "DENY" },
            rule: decision.rule.to_string(),
        });
    }

    /// Records an authentication, successful or not. `reason` is the cause kept from the
    /// client (unknown user, wrong password), never a credential.
    #[allow(clippy::too_many_arguments)]
    pub fn authentication(
        &self,
        client: SocketAddr,
        listener: &str,
        mechanism: &str,
        principal: Option<&str>,
        user: Option<&str>,
        reason: Option<&str>,
    ) {
        self.write(&AuthnLine {
            time: now(),
            event: "authentication",
            client: client.ip().to_string(),
            listener,
            mechanism,
            principal,
            user,
            outcome: if principal.is_some() {
                "SUCCESS"
            } else {
                "FAILURE"
            },
            reason,
        });
    }

    fn write<T: Serialize>(&self, line: &T) {
        let Ok(mut text) = serde_json::to_vec(line) else {
            return;
        };
        text.push(b'\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
