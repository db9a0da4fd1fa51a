//! `kgate proxy`: run the gateway in front of a cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use kgate_auth::SharedCredentials;
use kgate_proxy::credentials::{CredentialAuthenticator, SaslMechanism};
use kgate_proxy::{Gateway, GatewayConfig, TlsSettings};
use tracing::{info, warn};

use crate::config::{self, FileConfig};

/// Arguments of `kgate proxy`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kgate proxy --upstream 10.0.0.1:9092,10.0.0.2:9092 --listen 0.0.0.0:9093 \\
              --advertised-host kafka-gw.example.com \\
              --cert certs/server.pem --key certs/server-key.pem --users users.toml \\
              --policy policy.toml --super-user User:admin
  kgate proxy --config kgate.toml

Clients connect to --listen with SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN), or with a
client certificate when --client-ca is set. Each upstream broker N is served on
--broker-port-base + N (default: the listen port + 1 + N). SIGHUP reloads the certificate and
the users file; SIGTERM or Ctrl-C stops accepting, lets in-flight requests finish, and exits.")]
pub struct ProxyArgs {
    /// A TOML file with any of these settings (flags win); see `kgate config check --help`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The cluster's bootstrap brokers, comma-separated.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT]", value_delimiter = ',')]
    pub upstream: Vec<String>,
    /// The bootstrap address kgate listens on.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// The host name clients use to reach kgate (default: the listen IP).
    #[arg(long, value_name = "HOST")]
    pub advertised_host: Option<String>,
    /// Broker N listens on this port + N.
    #[arg(long, value_name = "PORT")]
    pub broker_port_base: Option<u16>,
    /// The gateway's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The gateway's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Accept client certificates signed by this CA (mTLS); the subject becomes the principal.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Kafka's ssl.principal.mapping.rules for client certificates.
    #[arg(long, value_name = "RULES")]
    pub principal_mapping_rules: Option<String>,
    /// The credential file made with `kgate users add`.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// SASL mechanisms to offer (default: SCRAM-SHA-512,SCRAM-SHA-256,PLAIN).
    #[arg(long, value_name = "MECHANISM", value_delimiter = ',')]
    pub mechanisms: Vec<String>,
    /// How long a SASL session lasts before the client must re-authenticate on its
    /// connection (KIP-368; Kafka's connections.max.reauth.ms). A removed user or a changed
    /// password stops working on open connections within this time. 0 = never. Default: 1 h.
    #[arg(long, value_name = "MS")]
    pub max_session_lifetime_ms: Option<u64>,
    /// Close a client's connections at their next request once its password is changed or
    /// its user removed (at a reload), instead of at its next re-authentication.
    #[arg(long)]
    pub revoke_sessions_on_change: bool,
    /// Most client connections at once (default 10000); kgate raises its open-files limit to
    /// fit them, and says so when it cannot.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most connections from one client address at once (default 1000).
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Serve clients without TLS. For labs on loopback only; never the default.
    #[arg(long)]
    pub plaintext: bool,
    /// The policy file (ACLs, roles, groups) made with `kgate acl` / `kgate role`: Kafka-exact
    /// authorization of every request. kgate does not start without either this or
    /// --allow-all-authenticated.
    #[arg(long, value_name = "FILE", conflicts_with = "allow_all_authenticated")]
    pub policy: Option<PathBuf>,
    /// No authorization: every authenticated client may do anything kgate forwards
    /// (DeleteTopics, AlterConfigs, ...), as a Kafka broker without an authorizer. An explicit
    /// choice, named in the start-up banner and in /metrics; never the default.
    #[arg(long)]
    pub allow_all_authenticated: bool,
    /// A principal that bypasses every ACL (repeatable), e.g. User:admin.
    #[arg(long = "super-user", value_name = "PRINCIPAL")]
    pub super_users: Vec<String>,
    /// Append the audit log (one JSON line per authentication and decision) to FILE
    /// (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Audit allowed decisions too (denials are always audited).
    #[arg(long)]
    pub audit_allows: bool,
    /// The admin endpoint (GET /healthz, /readyz, /metrics, /faults; POST /reload). Loopback
    /// by default.
    #[arg(long, value_name = "IP:PORT")]
    pub admin_listen: Option<SocketAddr>,
    /// The admin endpoint's bearer token, needed by every change (POST /reload, /faults):
    /// read from FILE, or written there (mode 0600) when missing. Default: a per-port file
    /// under $XDG_RUNTIME_DIR/kgate or ~/.cache/kgate, where `kgate fault` looks.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Let the admin endpoint add and remove fault rules (`kgate fault add`). Off by default.
    #[arg(long)]
    pub allow_faults: bool,
    /// A fault rule in force from the start (repeatable), e.g. "latency=200ms principal=User:batch";
    /// see `kgate fault --help`.
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<String>,
    /// Where the policy and users live: `file` (--policy and --users, the default) or `kafka`
    /// (a compacted topic of the upstream cluster, shared by every gateway started with the
    /// same --state-key-file; see `kgate state --help`).
    #[arg(long, value_name = "file|kafka")]
    pub state: Option<String>,
    /// The shared state topic (default __kgate_state).
    #[arg(long, value_name = "TOPIC")]
    pub state_topic: Option<String>,
    /// The key every gateway signs state records with (made by `kgate state key`).
    #[arg(long, value_name = "FILE")]
    pub state_key_file: Option<PathBuf>,
}

/// Everything `kgate proxy` needs, resolved from flags and file.
pub struct Resolved {
    pub admin_token_file: Option<PathBuf>,
    pub gateway: GatewayConfig,
    pub tls: Option<Arc<TlsSettings>>,
    pub credentials: Option<SharedCredentials>,
    pub authorizer: Option<Arc<kgate_policies::Authorizer>>,
    pub admin_listen: Option<SocketAddr>,
    pub allow_faults: bool,
    pub state: Option<kgate_state::KafkaState>,
}

fn pick<T: Clone>(flag: Option<T>, file: Option<&toml::Spanned<T>>) -> Option<T> {
    flag.or_else(|| file.map(|s| s.get_ref().clone()))
}

fn pick_path(
    flag: Option<PathBuf>,
    file: Option<&toml::Spanned<PathBuf>>,
    config: Option<&Path>,
) -> Option<PathBuf> {
    flag.or_else(|| {
        let value = file?.get_ref();
        Some(config.map_or_else(|| value.clone(), |c| config::resolve(c, value)))
    })
}

/// Merges flags over the file and loads certificates and users.
///
/// # Errors
/// A missing setting or a file that cannot be loaded, with the fix.
pub fn resolve(args: ProxyArgs) -> anyhow::Result<Resolved> {
    let file = match &args.config {
        Some(path) => config::load_checked(path)?,
        None => FileConfig::default(),
    };
    let cfg_path = args.config.as_deref();
    let listen = match args.listen {
        Some(l) => l,
        None => match &file.listen {
            Some(l) => l.get_ref().parse().context("listen")?,
            None => {
                bail!("no listen address: pass --listen IP:PORT (e.g. --listen 127.0.0.1:9093)")
            }
        },
    };
    let upstream = if args.upstream.is_empty() {
        file.upstream
            .as_ref()
            .map(|u| u.get_ref().clone())
            .unwrap_or_default()
    } else {
        args.upstream.clone()
    };
    if upstream.is_empty() {
        bail!("no upstream cluster: pass --upstream HOST:PORT (the cluster's bootstrap brokers)");
    }
    let plaintext = args.plaintext || file.plaintext.as_ref().is_some_and(|p| *p.get_ref());
    let cert = pick_path(args.cert, file.cert.as_ref(), cfg_path);
    let key = pick_path(args.key, file.key.as_ref(), cfg_path);
    let client_ca = pick_path(args.client_ca, file.client_ca.as_ref(), cfg_path);
    let users = pick_path(args.users, file.users.as_ref(), cfg_path);
    let rules = pick(
        args.principal_mapping_rules,
        file.principal_mapping_rules.as_ref(),
    );
    let mechanisms = if args.mechanisms.is_empty() {
        file.mechanisms
            .as_ref()
            .map(|m| m.get_ref().clone())
            .unwrap_or_default()
    } else {
        args.mechanisms
    };

    let tls = match (plaintext, cert, key) {
        (true, None, None) => {
            warn!("serving clients WITHOUT TLS (--plaintext): passwords and data cross the network in clear");
            None
        }
        (true, _, _) => bail!("--plaintext together with --cert/--key: choose one"),
        (false, Some(cert), Some(key)) => {
            let handle = kgate_certs::TlsConfigHandle::load(kgate_certs::TlsSettings {
                cert,
                key,
                client_ca: client_ca.clone(),
            })?;
            let principal_mapper = match (&client_ca, rules) {
                (Some(_), Some(r)) => Some(r.parse::<kgate_certs::PrincipalMapper>()?),
                (Some(_), None) => Some(kgate_certs::PrincipalMapper::default()),
                (None, _) => None,
            };
            Some(Arc::new(TlsSettings {
                handle,
                principal_mapper,
            }))
        }
        (false, _, _) => bail!(
            "TLS needs --cert and --key (make them with `kgate certs init --dir certs` and \
             `kgate certs server --dir certs --dns HOST`), or pass --plaintext for a lab"
        ),
    };
    let shared_state = match args
        .state
        .as_deref()
        .or(file.state.as_ref().map(|s| s.get_ref().as_str()))
    {
        None | Some("file") => None,
        Some("kafka") => {
            if users.is_some() || args.policy.is_some() || file.policy.is_some() {
                bail!(
                    "state = kafka keeps the policy and users in the cluster: drop --policy and \
                     --users (move files into the cluster with `kgate state import`)"
                );
            }
            if args.allow_all_authenticated
                || file
                    .allow_all_authenticated
                    .as_ref()
                    .is_some_and(|a| *a.get_ref())
            {
                bail!(
                    "state = kafka keeps a policy in the cluster: drop --allow-all-authenticated"
                );
            }
            let key_file = pick_path(args.state_key_file.clone(), file.state_key_file.as_ref(), cfg_path)
                .context("state = kafka needs --state-key-file FILE (make one with `kgate state key --out state.key` and copy it to every gateway)")?;
            let key = kgate_state::StateKey::load(&key_file)?;
            let mut options = kgate_state::StateOptions::new(upstream.join(","), key);
            if let Some(topic) = pick(args.state_topic.clone(), file.state_topic.as_ref()) {
                options.topic = topic;
            }
            info!(topic = %options.topic, upstream = %options.bootstrap, "reading the shared state");
            Some(kgate_state::KafkaState::open(options)?)
        }
        Some(other) => bail!("--state {other:?}: write `file` (the default) or `kafka`"),
    };
    let credentials = match (&users, &shared_state) {
        (_, Some(state)) => Some(SharedCredentials::with_sink(
            format!("kafka topic {}", state.topic()),
            state.credentials(),
            Arc::new(state.clone()),
        )),
        (Some(path), None) => Some(SharedCredentials::load(path)?),
        (None, None) if client_ca.is_some() => None,
        (None, None) if plaintext => {
            warn!("no --users with --plaintext: clients are NOT authenticated (User:ANONYMOUS)");
            None
        }
        (None, None) => bail!("no users file: pass --users FILE (create it with `kgate users add NAME --users FILE --password-stdin`)"),
    };
    let mut gateway = GatewayConfig::new(listen, upstream);
    gateway.advertised_host = pick(args.advertised_host, file.advertised_host.as_ref());
    gateway.broker_port_base = pick(args.broker_port_base, file.broker_port_base.as_ref());
    gateway.tls = tls.clone();
    if let Some(max) = &file.max_frame_bytes {
        gateway.max_frame = *max.get_ref();
    }
    if let Some(ms) = args
        .max_session_lifetime_ms
        .or_else(|| file.max_session_lifetime_ms.as_ref().map(|m| *m.get_ref()))
    {
        gateway.sasl.session_lifetime = Duration::from_millis(ms);
    }
    gateway.sasl.revoke_sessions_on_change = args.revoke_sessions_on_change
        || file
            .revoke_sessions_on_change
            .as_ref()
            .is_some_and(|r| *r.get_ref());
    if let Some(ms) = &file.failed_auth_delay_ms {
        gateway.sasl.failure_delay = Duration::from_millis(*ms.get_ref());
    }
    if let Some(ms) = &file.shutdown_grace_ms {
        gateway.shutdown_grace = Duration::from_millis(*ms.get_ref());
    }
    if let Some(n) = args
        .max_connections
        .or_else(|| file.max_connections.as_ref().map(|m| *m.get_ref()))
    {
        gateway.max_connections = n.max(1);
    }
    if let Some(n) = args
        .max_connections_per_ip
        .or_else(|| file.max_connections_per_ip.as_ref().map(|m| *m.get_ref()))
    {
        gateway.max_connections_per_ip = n.max(1);
    }
    if let Some(ms) = &file.tls_handshake_timeout_ms {
        gateway.tls_handshake_timeout = Duration::from_millis(*ms.get_ref());
    }
    if let Some(ms) = &file.authentication_timeout_ms {
        gateway.authentication_timeout = Duration::from_millis(*ms.get_ref());
    }
    if let Some(ms) = &file.idle_timeout_ms {
        gateway.idle_timeout = Duration::from_millis(*ms.get_ref());
    }
    if let Some(creds) = &credentials {
        let mechs = if mechanisms.is_empty() {
            SaslMechanism::all()
        } else {
            mechanisms
                .iter()
                .map(|m| {
                    SaslMechanism::from_name(m).with_context(|| {
                        format!(
                            "unknown mechanism {m:?} (use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        gateway.sasl.authenticator =
            Some(Arc::new(CredentialAuthenticator::new(creds.clone(), mechs)));
    }
    let policy = pick_path(args.policy, file.policy.as_ref(), cfg_path);
    let allow_all = args.allow_all_authenticated
        || file
            .allow_all_authenticated
            .as_ref()
            .is_some_and(|a| *a.get_ref());
    if allow_all && policy.is_some() {
        bail!(
            "both a policy and allow_all_authenticated are set: keep the policy and remove \
             allow_all_authenticated (or the reverse)"
        );
    }
    let mut super_users = args.super_users;
    if super_users.is_empty() {
        super_users = file
            .super_users
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
    }
    let audit_log = pick_path(args.audit_log, file.audit_log.as_ref(), cfg_path);
    let audit_allows =
        args.audit_allows || file.audit_allows.as_ref().is_some_and(|a| *a.get_ref());
    let parse_super_users = || {
        super_users
            .iter()
            .map(|p| {
                p.parse::<kgate_policies::Principal>()
                    .with_context(|| format!("--super-user {p:?} (write e.g. User:admin)"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let authorizer = match (policy, &shared_state) {
        (_, Some(state)) => {
            let options = kgate_policies::AuthorizerOptions {
                super_users: parse_super_users()?,
                reserved_topics: vec![state.topic().into()],
                ..Default::default()
            };
            let authorizer = Arc::new(kgate_policies::Authorizer::with_store(
                state.policy(),
                options,
                Arc::new(state.clone()),
            ));
            state.attach(Some(authorizer.clone()), credentials.clone());
            Some(authorizer)
        }
        (Some(path), None) => {
            let options = kgate_policies::AuthorizerOptions {
                super_users: parse_super_users()?,
                ..Default::default()
            };
            Some(Arc::new(kgate_policies::Authorizer::open(&path, options)?))
        }
        (None, None) if !super_users.is_empty() => {
            bail!("--super-user needs --policy FILE (authorization is off without a policy)")
        }
        (None, None) if allow_all => {
            warn!(
                "--allow-all-authenticated: authorization is OFF; every authenticated client may \
                 do anything kgate forwards"
            );
            None
        }
        (None, None) => bail!(
            "choose how kgate authorizes: --policy FILE (Kafka ACLs and roles; start one with \
             `kgate acl add --allow-principal User:alice --operation Read --topic orders --policy \
             policy.toml`) or --allow-all-authenticated (no authorization: every authenticated \
             client may do anything, e.g. delete topics)"
        ),
    };
    if let Some(authorizer) = &authorizer {
        let audit = match &audit_log {
            Some(path) => kgate_proxy::audit::Audit::to_file(path, audit_allows)
                .with_context(|| format!("cannot open the audit log {}", path.display()))?,
            None => kgate_proxy::audit::Audit::to_writer(Box::new(std::io::stdout()), audit_allows),
        };
        gateway.authz = Some(Arc::new(kgate_proxy::authz::Authz {
            authorizer: authorizer.clone(),
            audit: Some(Arc::new(audit)),
            credentials: credentials.clone(),
            topic_ids: Default::default(),
        }));
    }
    let admin_listen = match (args.admin_listen, &file.admin_listen) {
        (Some(a), _) => Some(a),
        (None, Some(a)) => Some(a.get_ref().parse().context("admin_listen")?),
        (None, None) => None,
    };
    let allow_faults =
        args.allow_faults || file.allow_faults.as_ref().is_some_and(|a| *a.get_ref());
    let mut rules = args.faults;
    if rules.is_empty() {
        rules = file
            .faults
            .as_ref()
            .map(|f| f.get_ref().clone())
            .unwrap_or_default();
    }
    for rule in &rules {
        let parsed: kgate_proxy::faults::FaultRule = rule
            .parse()
            .map_err(|e| anyhow::anyhow!("fault rule {rule:?}: {e}"))?;
        gateway
            .faults
            .add(parsed)
            .map_err(|e| anyhow::anyhow!("fault rule {rule:?}: {e}"))?;
        warn!(rule = %rule, "fault rule in force from the start: clients will see it");
    }
    if allow_faults && admin_listen.is_none() {
        warn!("--allow-faults without --admin-listen: no endpoint to add fault rules through");
    }
    let admin_token_file = pick_path(
        args.admin_token_file,
        file.admin_token_file.as_ref(),
        cfg_path,
    );
    Ok(Resolved {
        admin_token_file,
        gateway,
        tls,
        credentials,
        authorizer,
        admin_listen,
        allow_faults,
        state: shared_state,
    })
}

/// Runs `kgate proxy` until SIGTERM or Ctrl-C.
pub fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let resolved = resolve(args)?;
    raise_open_files(resolved.gateway.max_connections);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(resolved, None))
}

/// Raises the soft open-files limit so that `max_connections` client connections (each with
/// one upstream connection) fit, or warns with the numbers when the hard limit is lower.
fn raise_open_files(max_connections: usize) {
    // Two descriptors per client connection, plus listeners, files and the runtime.
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(256);
    let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() else {
        warn!("cannot read the open-files limit (RLIMIT_NOFILE)");
        return;
    };
    if soft >= needed {
        return;
    }
    let target = needed.min(hard);
    if rlimit::Resource::NOFILE.set(target, hard).is_err() {
        warn!(soft, hard, needed, "cannot raise the open-files limit");
        return;
    }
    if target < needed {
        let fit = target.saturating_sub(256) / 2;
        warn!(
            soft = target,
            hard,
            needed,
            "open-files limit below what max_connections needs: about {fit} connections fit; \
             raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower max_connections"
        );
    } else {
        info!(
            from = soft,
            to = target,
            "raised the open-files limit for max_connections"
        );
    }
}

/// Starts the gateway, prints where it listens, handles SIGHUP reloads, and waits for a stop
/// signal (or for `stop` to resolve, for the demo and tests).
pub async fn serve(
    resolved: Resolved,
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> anyhow::Result<()> {
    let Resolved {
        admin_token_file,
        gateway,
        tls,
        credentials,
        authorizer,
        admin_listen,
        allow_faults,
        state,
    } = resolved;
    let upstream = gateway.upstream.join(",");
    let gateway = Gateway::start(gateway)
        .await
        .with_context(|| format!("cannot start the gateway in front of {upstream}"))?;
    let reloader = Arc::new(Reloader {
        tls,
        credentials,
        authorizer,
        state,
    });
    let admin = match admin_listen {
        Some(addr) => {
            let token = match &admin_token_file {
                Some(path) => kgate_proxy::admin_token::load_or_create(path)?,
                None => kgate_proxy::admin_token::generate(),
            };
            let admin = kgate_proxy::admin::AdminServer::start(
                addr,
                gateway.shared().clone(),
                reloader.clone(),
                kgate_proxy::admin::AdminOptions {
                    allow_faults,
                    token: Some(token.as_str().into()),
                },
            )
            .await
            .with_context(|| format!("cannot start the admin endpoint on {addr}"))?;
            // A token file of kgate's own choosing goes when the gateway stops.
            let (path, owned) = match admin_token_file {
                Some(path) => (path, None),
                None => {
                    let path = kgate_proxy::admin_token::default_path(admin.addr().port());
                    let owned = kgate_proxy::admin_token::store_owned(&path, &token)?;
                    (path, Some(owned))
                }
            };
            info!(token_file = %path.display(), "admin changes need the token in this file");
            Some((admin, owned))
        }
        None => None,
    };
    let watcher = tokio::spawn(watch_files(reloader.clone()));
    let authorization = match (&reloader.authorizer, &reloader.state) {
        (Some(_), Some(_)) => "policy (Kafka ACLs and roles) shared through the cluster",
        (Some(_), None) => "policy (Kafka ACLs and roles)",
        (None, _) => "OFF (--allow-all-authenticated)",
    };
    info!(bootstrap = %gateway.bootstrap_servers(), authorization, "kgate is ready");
    wait_for_stop(stop, &reloader).await;
    watcher.abort();
    if let Some((admin, token_file)) = admin {
        admin.stop();
        drop(token_file);
    }
    gateway.shutdown().await;
    if let Some(state) = &reloader.state {
        state.stop();
    }
    Ok(())
}

/// What SIGHUP, a file change and `POST /reload` reload.
pub struct Reloader {
    tls: Option<Arc<TlsSettings>>,
    credentials: Option<SharedCredentials>,
    authorizer: Option<Arc<kgate_policies::Authorizer>>,
    state: Option<kgate_state::KafkaState>,
}

impl kgate_proxy::admin::Reload for Reloader {
    fn not_ready(&self) -> Option<String> {
        let metrics = self.state.as_ref()?.metrics();
        if metrics
            .records_lost
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Some(
                "state records were deleted before this gateway read them: the policy here is \
                 incomplete (see the log)"
                    .into(),
            );
        }
        (!metrics.caught_up.load(std::sync::atomic::Ordering::Relaxed))
            .then(|| "still reading the shared state topic".to_string())
    }

    fn render_metrics(&self, out: &mut String) {
        if let Some(state) = &self.state {
            state.metrics().render(out);
        }
    }

    fn reload(&self) -> Result<String, String> {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        if let Some(tls) = &self.tls {
            match tls.handle.reload() {
                Ok(_) => done.push("certificates".to_string()),
                Err(e) => failed.push(format!("certificates: {e}")),
            }
        }
        if let Some(creds) = &self.credentials {
            match creds.reload() {
                Ok(()) => done.push("users".to_string()),
                Err(e) => failed.push(format!("users: {e}")),
            }
        }
        if let Some(authorizer) = &self.authorizer {
            match authorizer.reload() {
                Ok(generation) => done.push(format!("policy (generation {generation})")),
                Err(e) => failed.push(format!("policy: {e}")),
            }
        }
        for f in &failed {
            warn!(problem = %f, "reload refused; the previous file stays in force");
        }
        if failed.is_empty() {
            info!(reloaded = %done.join(", "), "reloaded");
            Ok(format!("reloaded {}", done.join(", ")))
        } else {
            Err(failed.join("; "))
        }
    }
}

/// Reloads when the users or policy file changes (checked every 2 seconds by modification
/// time, which needs no platform-specific watcher).
async fn watch_files(reloader: Arc<Reloader>) {
    let paths: Vec<PathBuf> = reloader
        .credentials
        .iter()
        .map(|c| c.path().to_path_buf())
        .chain(
            reloader
                .authorizer
                .iter()
                .filter_map(|a| a.file().map(Path::to_path_buf)),
        )
        .collect();
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Vec<_> = paths.iter().map(|p| stamp(p)).collect();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let now: Vec<_> = paths.iter().map(|p| stamp(p)).collect();
        if now != last {
            last = now;
            let _ = kgate_proxy::admin::Reload::reload(&*reloader);
        }
    }
}

async fn wait_for_stop(stop: Option<tokio::sync::oneshot::Receiver<()>>, reloader: &Reloader) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let stop = async {
        match stop {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("Ctrl-C: shutting down"); return; }
            _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                info!("SIGTERM: shutting down");
                return;
            }
            _ = async { match hup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                let _ = kgate_proxy::admin::Reload::reload(reloader);
            }
            _ = &mut stop => return,
        }
    }
}
