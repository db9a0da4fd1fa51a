//! The gateway's TOML configuration file, and `kgate config check`.
//!
//! Every flag of `kgate proxy` can come from this file; flags win. Mistakes are reported all
//! at once, each as `FILE:LINE: field: problem (fix)`, so an operator fixes a file in one
//! pass. Unknown keys are errors: a misspelt `client_ca` must not silently turn mTLS off.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The example printed by `kgate config check --help` and written by the README.
pub const EXAMPLE: &str = r#"# kgate.toml
listen = "0.0.0.0:9093"                 # the bootstrap port clients connect to
advertised_host = "kafka-gw.example.com" # the name clients use to reach kgate
broker_port_base = 9100                  # broker N is served on 9100 + N
upstream = ["10.0.0.1:9092", "10.0.0.2:9092"]
cert = "certs/server.pem"
key = "certs/server-key.pem"
client_ca = "certs/ca.pem"               # optional: accept client certificates (mTLS)
principal_mapping_rules = "RULE:^CN=(.*?),.*$/$1/,DEFAULT"
users = "users.toml"
mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
# max_session_lifetime_ms = 3600000      # clients re-authenticate hourly (KIP-368); 0 = never
# revoke_sessions_on_change = true       # a changed password or removed user closes its connections at once
policy = "policy.toml"                   # ACLs and roles (required, unless the next line)
# allow_all_authenticated = true         # no authorization: any authenticated client may do anything
super_users = ["User:admin"]
audit_log = "audit.jsonl"
admin_listen = "127.0.0.1:9644"          # health, metrics, reload, fault rules
# max_connections = 10000                # and per address: max_connections_per_ip = 1000
# idle_timeout_ms = 600000               # Kafka's connections.max.idle.ms
# tls_handshake_timeout_ms = 10000       # authentication_timeout_ms = 30000
# admin_token_file = "admin.token"       # bearer token for changes (default: per-port file kgate fault finds)
# allow_faults = true                    # let the admin endpoint add fault rules (rehearsals)
# faults = ["latency=200ms principal=User:batch"]   # fault rules in force from the start
# state = "kafka"                        # several gateways: policy and users in the cluster
# state_key_file = "state.key"           # (then no policy/users): `kgate state key --out state.key`
# state_topic = "__kgate_state"
"#;

/// The file's contents; every field is optional because flags may supply it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Bootstrap listener address.
    pub listen: Option<Spanned<String>>,
    /// Host name advertised to clients.
    pub advertised_host: Option<Spanned<String>>,
    /// Broker N listens on this + N.
    pub broker_port_base: Option<Spanned<u16>>,
    /// Upstream bootstrap addresses.
    pub upstream: Option<Spanned<Vec<String>>>,
    /// Server certificate (PEM).
    pub cert: Option<Spanned<PathBuf>>,
    /// Server private key (PEM).
    pub key: Option<Spanned<PathBuf>>,
    /// CA whose client certificates are accepted (mTLS).
    pub client_ca: Option<Spanned<PathBuf>>,
    /// Kafka's `ssl.principal.mapping.rules`.
    pub principal_mapping_rules: Option<Spanned<String>>,
    /// The credential file.
    pub users: Option<Spanned<PathBuf>>,
    /// SASL mechanisms offered.
    pub mechanisms: Option<Spanned<Vec<String>>>,
    /// Serve clients without TLS (labs only; never the default).
    pub plaintext: Option<Spanned<bool>>,
    /// Largest request after authentication, in bytes.
    pub max_frame_bytes: Option<Spanned<usize>>,
    /// Delay before closing after a failed authentication, in milliseconds.
    pub failed_auth_delay_ms: Option<Spanned<u64>>,
    /// SASL session lifetime before re-authentication (KIP-368), in milliseconds; 0: never.
    pub max_session_lifetime_ms: Option<Spanned<u64>>,
    /// Close connections whose credential changed at their next request.
    pub revoke_sessions_on_change: Option<Spanned<bool>>,
    /// Grace period for in-flight requests at shutdown, in milliseconds.
    pub shutdown_grace_ms: Option<Spanned<u64>>,
    /// Most client connections at once.
    pub max_connections: Option<Spanned<usize>>,
    /// Most connections from one client address at once.
    pub max_connections_per_ip: Option<Spanned<usize>>,
    /// Time allowed for the TLS handshake, in milliseconds.
    pub tls_handshake_timeout_ms: Option<Spanned<u64>>,
    /// Time allowed from TLS to the end of authentication, in milliseconds.
    pub authentication_timeout_ms: Option<Spanned<u64>>,
    /// An authenticated connection idle this long is closed, in milliseconds; 0 = never.
    pub idle_timeout_ms: Option<Spanned<u64>>,
    /// The policy file (ACLs, roles, groups); turns authorization on.
    pub policy: Option<Spanned<PathBuf>>,
    /// No authorization at all, chosen explicitly (`--allow-all-authenticated`).
    pub allow_all_authenticated: Option<Spanned<bool>>,
    /// Principals that bypass every ACL (`User:admin`).
    pub super_users: Option<Spanned<Vec<String>>>,
    /// Where the audit log (JSON lines) is appended; default: standard output.
    pub audit_log: Option<Spanned<PathBuf>>,
    /// Also audit allowed decisions (denials are always audited).
    pub audit_allows: Option<Spanned<bool>>,
    /// The admin endpoint (health, metrics, reload); loopback unless set otherwise.
    pub admin_listen: Option<Spanned<String>>,
    /// The admin endpoint's bearer token file (0600; written when missing).
    pub admin_token_file: Option<Spanned<PathBuf>>,
    /// Let the admin endpoint add and remove fault rules (off: a production gateway must not
    /// be slowed down by whoever reaches its loopback port).
    pub allow_faults: Option<Spanned<bool>>,
    /// Fault rules in force from the start (`latency=200ms principal=User:batch`).
    pub faults: Option<Spanned<Vec<String>>>,
    /// Where the policy and users live: `"file"` (the default: `policy` and `users`) or
    /// `"kafka"` (a compacted topic of the upstream cluster, shared by several gateways).
    pub state: Option<Spanned<String>>,
    /// The shared state topic (default `__kgate_state`).
    pub state_topic: Option<Spanned<String>>,
    /// The key every gateway signs state records with (`kgate state key --out FILE`).
    pub state_key_file: Option<Spanned<PathBuf>>,
}

/// One mistake in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field concerned.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A configuration file that could not be used; `Display` prints one line per problem.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The file.
    pub path: PathBuf,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(line) => write!(
                    f,
                    "{}:{line}: {}: {}",
                    self.path.display(),
                    p.field,
                    p.message
                )?,
                None => write!(f, "{}: {}: {}", self.path.display(), p.field, p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn line_of(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// Reads and parses a configuration file; syntax and type errors come back with their line.
///
/// # Errors
/// [`ConfigErrors`] naming the file, the line and the problem.
pub fn load(path: &Path) -> Result<(FileConfig, String), ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        path: path.to_owned(),
        problems: vec![Problem {
            line: None,
            field: "file".into(),
            message: format!("cannot read it: {e} (check the path given to --config)"),
        }],
    })?;
    let config: FileConfig = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s));
        let message = e.message().trim().to_string();
        let hint = if message.contains("unknown field") {
            " (see `kgate config check --help` for the valid keys)"
        } else {
            ""
        };
        ConfigErrors {
            path: path.to_owned(),
            problems: vec![Problem {
                line,
                field: "syntax".into(),
                message: format!("{message}{hint}"),
            }],
        }
    })?;
    Ok((config, text))
}

/// Checks the meaning of every field: addresses parse, files exist, mechanisms are known,
/// TLS is complete. Relative paths are taken from the file's directory.
pub fn check(config: &FileConfig, text: &str, path: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let base = path.parent().unwrap_or(Path::new("."));
    let mut push = |span: Option<Range<usize>>, field: &str, message: String| {
        problems.push(Problem {
            line: span.map(|s| line_of(text, s)),
            field: field.into(),
            message,
        });
    };
    if let Some(listen) = &config.listen {
        if listen.get_ref().parse::<SocketAddr>().is_err() {
            push(
                Some(listen.span()),
                "listen",
                format!(
                    "{:?} is not an IP:port (write e.g. \"0.0.0.0:9093\")",
                    listen.get_ref()
                ),
            );
        }
    }
    match &config.upstream {
        Some(up) if up.get_ref().is_empty() => push(
            Some(up.span()),
            "upstream",
            "is empty (list the cluster's bootstrap brokers, e.g. [\"10.0.0.1:9092\"])".into(),
        ),
        Some(up) => {
            for addr in up.get_ref() {
                let ok = addr
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    push(
                        Some(up.span()),
                        "upstream",
                        format!("{addr:?} is not HOST:PORT (write e.g. \"10.0.0.1:9092\")"),
                    );
                }
            }
        }
        None => {}
    }
    let plaintext = config.plaintext.as_ref().is_some_and(|p| *p.get_ref());
    for (field, value) in [
        ("cert", &config.cert),
        ("key", &config.key),
        ("client_ca", &config.client_ca),
        ("users", &config.users),
    ] {
        if let Some(v) = value {
            let full = base.join(v.get_ref());
            if !full.is_file() {
                let fix = match field {
                    "cert" | "key" => "create it with `kgate certs server --dir DIR ...`",
                    "client_ca" => "create a CA with `kgate certs init --dir DIR`",
                    "policy" => "create it with `kgate acl add ... --policy FILE`",
                    _ => "create it with `kgate users add NAME --users FILE --password-stdin`",
                };
                push(
                    Some(v.span()),
                    field,
                    format!("{} does not exist ({fix})", full.display()),
                );
            }
        }
    }
    if !plaintext && (config.cert.is_none() != config.key.is_none()) {
        let (span, field) = match (&config.cert, &config.key) {
            (Some(c), None) => (Some(c.span()), "key"),
            (None, Some(k)) => (Some(k.span()), "cert"),
            _ => (None, "cert"),
        };
        push(
            span,
            field,
            "cert and key go together (set both, or neither and use --cert/--key)".into(),
        );
    }
    if plaintext && config.cert.is_some() {
        push(
            config.plaintext.as_ref().map(Spanned::span),
            "plaintext",
            "plaintext = true with a certificate configured (remove one of them)".into(),
        );
    }
    if let Some(m) = &config.mechanisms {
        for name in m.get_ref() {
            if kgate_proxy::credentials::SaslMechanism::from_name(name).is_none() {
                push(
                    Some(m.span()),
                    "mechanisms",
                    format!(
                        "unknown mechanism {name:?} (use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)"
                    ),
                );
            }
        }
    }
    if let Some(rules) = &config.principal_mapping_rules {
        if let Err(e) = rules.get_ref().parse::<kgate_certs::PrincipalMapper>() {
            push(Some(rules.span()), "principal_mapping_rules", e.to_string());
        }
    }
    if let Some(users) = &config.super_users {
        for p in users.get_ref() {
            if let Err(e) = p.parse::<kgate_policies::Principal>() {
                push(
                    Some(users.span()),
                    "super_users",
                    format!("{e} (write e.g. \"User:admin\")"),
                );
            }
        }
    }
    if let Some(policy) = &config.policy {
        let full = base.join(policy.get_ref());
        if full.is_file() {
            if let Err(e) = kgate_policies::Policy::load(&full) {
                push(Some(policy.span()), "policy", e.to_string());
            }
        }
    }
    if let Some(state) = &config.state {
        match state.get_ref().as_str() {
            "file" => {}
            "kafka" => {
                for (field, set) in [
                    ("policy", config.policy.as_ref().map(Spanned::span)),
                    ("users", config.users.as_ref().map(Spanned::span)),
                    (
                        "allow_all_authenticated",
                        config.allow_all_authenticated.as_ref().map(Spanned::span),
                    ),
                ] {
                    if set.is_some() {
                        push(
                            set,
                            field,
                            format!(
                                "set together with state = \"kafka\", which keeps the policy and \
                                 users in the cluster: remove {field} (move a file into the \
                                 cluster with `kgate state import`)"
                            ),
                        );
                    }
                }
                match &config.state_key_file {
                    None => push(
                        Some(state.span()),
                        "state_key_file",
                        "state = \"kafka\" needs state_key_file (make one with `kgate state key \
                         --out state.key` and copy it to every gateway)"
                            .into(),
                    ),
                    Some(k) => {
                        if let Err(e) = kgate_state::StateKey::load(&base.join(k.get_ref())) {
                            push(Some(k.span()), "state_key_file", e.to_string());
                        }
                    }
                }
            }
            other => push(
                Some(state.span()),
                "state",
                format!(
                    "{other:?} is not a state store: write \"file\" (the default) or \"kafka\""
                ),
            ),
        }
    }
    if let (Some(_), Some(all)) = (&config.policy, &config.allow_all_authenticated) {
        if *all.get_ref() {
            push(
                Some(all.span()),
                "allow_all_authenticated",
                "set together with policy: remove one (a policy authorizes every request; \
                 allow_all_authenticated turns authorization off)"
                    .into(),
            );
        }
    }
    if let Some(faults) = &config.faults {
        for rule in faults.get_ref() {
            if let Err(e) = rule.parse::<kgate_proxy::faults::FaultRule>() {
                push(Some(faults.span()), "faults", format!("{rule:?}: {e}"));
            }
        }
    }
    if let Some(admin) = &config.admin_listen {
        if admin.get_ref().parse::<SocketAddr>().is_err() {
            push(
                Some(admin.span()),
                "admin_listen",
                format!(
                    "{:?} is not an IP:port (write e.g. \"127.0.0.1:9644\")",
                    admin.get_ref()
                ),
            );
        }
    }
    if let Some(max) = &config.max_frame_bytes {
        if *max.get_ref() < 1024 {
            push(
                Some(max.span()),
                "max_frame_bytes",
                "is below 1024 (kgate's default is 16777216)".into(),
            );
        }
    }
    problems
}

/// Loads and checks a file.
///
/// # Errors
/// Every problem at once.
pub fn load_checked(path: &Path) -> Result<FileConfig, ConfigErrors> {
    let (config, text) = load(path)?;
    let problems = check(&config, &text, path);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors {
            path: path.to_owned(),
            problems,
        })
    }
}

/// Resolves a path from the file relative to the file's directory.
pub fn resolve(config_path: &Path, value: &Path) -> PathBuf {
    config_path.parent().unwrap_or(Path::new(".")).join(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Vec<Problem> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kgate.toml");
        std::fs::write(&path, text).unwrap();
        match load_checked(&path) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let problems = check_text("listen = \"127.0.0.1:9093\"\nclient_cert = \"x\"\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
        assert!(
            problems[0].message.contains("unknown field"),
            "{:?}",
            problems[0]
        );
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let problems = check_text(
            "listen = \"nope\"\nupstream = [\"kafka\"]\nmechanisms = [\"GSSAPI\"]\ncert = \"missing.pem\"\n",
        );
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"listen"), "{problems:?}");
        assert!(fields.contains(&"upstream"));
        assert!(fields.contains(&"mechanisms"));
        assert!(fields.contains(&"cert"));
        assert!(fields.contains(&"key"));
        let listen = problems.iter().find(|p| p.field == "listen").unwrap();
        assert_eq!(listen.line, Some(1));
        let mech = problems.iter().find(|p| p.field == "mechanisms").unwrap();
        assert_eq!(mech.line, Some(3));
    }

    #[test]
    fn a_type_error_names_its_line() {
        let problems = check_text("listen = \"127.0.0.1:1\"\nbroker_port_base = \"high\"\n");
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn a_bad_fault_rule_names_its_line_and_the_fix() {
        let problems = check_text(
            "listen = \"127.0.0.1:1\"\nallow_faults = true\nfaults = [\"latency=100ms\", \"latency=soon\"]\n",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(3));
        assert_eq!(problems[0].field, "faults");
        assert!(problems[0].message.contains("latency=soon"), "{problems:?}");
        assert!(problems[0].message.contains("300ms"), "{problems:?}");
        assert!(check_text("faults = [\"error=6 topic=orders api=produce\"]\n").is_empty());
    }

    #[test]
    fn state_settings_are_checked_with_their_line_and_fix() {
        let problems = check_text("state = \"zookeeper\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(1));
        assert!(problems[0].message.contains("\"kafka\""), "{problems:?}");

        let problems =
            check_text("listen = \"127.0.0.1:1\"\npolicy = \"p.toml\"\nstate = \"kafka\"\n");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"policy"), "{problems:?}");
        assert!(fields.contains(&"state_key_file"), "{problems:?}");
        let key = problems
            .iter()
            .find(|p| p.field == "state_key_file")
            .unwrap();
        assert!(key.message.contains("kgate state key"), "{problems:?}");
        let policy = problems.iter().find(|p| p.field == "policy").unwrap();
        assert_eq!(policy.line, Some(2));

        let problems = check_text("state = \"kafka\"\nstate_key_file = \"none.key\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.contains("none.key"), "{problems:?}");
    }

    #[test]
    fn the_example_parses() {
        let config: FileConfig = toml::from_str(EXAMPLE).unwrap();
        assert!(config.client_ca.is_some());
    }
}
