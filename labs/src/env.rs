//! The live lab environment: the embedded cluster, its topics with messages, and the gateway in
//! front of it, configured by the `kgate.toml` the student writes in the lab directory.
//!
//! [`LabEnv::sync`] reads that file again before every check: a changed file restarts the
//! gateway on the same address; otherwise the users and policy files are reloaded in place
//! (`Authorizer::reload`), as `kgate proxy` does on SIGHUP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kgate_auth::SharedCredentials;
use kgate_policies::{Authorizer, AuthorizerOptions, Principal};
use kgate_proxy::audit::Audit;
use kgate_proxy::authz::Authz;
use kgate_proxy::credentials::{CredentialAuthenticator, SaslMechanism};
use kgate_proxy::faults::{FaultRule, FaultTable};
use kgate_proxy::{Gateway, GatewayConfig, TlsSettings};
use serde::Deserialize;

use crate::lab::{api_key, Environment, FaultSpec};
use crate::{ClusterCommand, EmbeddedCluster};

/// The gateway file of a lab directory.
pub const GATEWAY_FILE: &str = "kgate.toml";

/// The part of `kgate.toml` the lab gateway uses (the same keys as `kgate proxy --config`;
/// `listen` and `upstream` are the lab's own and ignored).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// Server certificate.
    pub cert: Option<PathBuf>,
    /// Server key.
    pub key: Option<PathBuf>,
    /// CA for client certificates.
    pub client_ca: Option<PathBuf>,
    /// Users file.
    pub users: Option<PathBuf>,
    /// SASL mechanisms.
    #[serde(default)]
    pub mechanisms: Vec<String>,
    /// Policy file: authorization is on when set.
    pub policy: Option<PathBuf>,
    /// `kgate proxy`'s explicit "no authorization" choice. The lab gateway starts without a
    /// policy (the insecure starting point the labs secure), so here it only documents the
    /// choice; set together with `policy` it is refused, as by `kgate proxy`.
    #[serde(default)]
    pub allow_all_authenticated: bool,
    /// Super users.
    #[serde(default)]
    pub super_users: Vec<String>,
    /// Audit log.
    pub audit_log: Option<PathBuf>,
    /// Log allows too.
    #[serde(default)]
    pub audit_allows: bool,
    /// Serve without TLS (the default when no certificate is set).
    #[serde(default)]
    pub plaintext: bool,
    /// Keys of `kgate proxy --config` the lab sets itself (addresses, limits): accepted so
    /// that a real `kgate.toml` works here, and ignored.
    #[serde(default)]
    pub listen: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub advertised_host: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub broker_port_base: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub upstream: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub principal_mapping_rules: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub max_frame_bytes: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub failed_auth_delay_ms: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub max_session_lifetime_ms: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub revoke_sessions_on_change: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub max_connections: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub max_connections_per_ip: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub tls_handshake_timeout_ms: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub authentication_timeout_ms: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub idle_timeout_ms: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub shutdown_grace_ms: Option<toml::Value>,
    /// Ignored (see `listen`).
    #[serde(default)]
    pub admin_listen: Option<toml::Value>,
}

impl GatewayFile {
    /// Reads `kgate.toml` in `dir`; a missing file is the insecure default.
    ///
    /// # Errors
    /// The file does not parse.
    pub fn read(dir: &Path) -> anyhow::Result<GatewayFile> {
        let path = dir.join(GATEWAY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| {
                text.get(..s.start)
                    .map_or(1, |t| t.matches('\n').count() + 1)
            });
            anyhow::anyhow!(
                "{}{}: {}",
                path.display(),
                line.map(|l| format!(":{l}")).unwrap_or_default(),
                e.message().trim()
            )
        })
    }

    /// Whether clients must use TLS.
    pub fn tls(&self) -> bool {
        self.cert.is_some() && !self.plaintext
    }

    /// Whether clients must authenticate with SASL.
    pub fn sasl(&self) -> bool {
        self.users.is_some()
    }
}

/// The file in a lab directory that holds the running lab gateway's `bootstrap.servers`, so
/// that `kgate client-config` run there knows the address.
pub const ADDRESS_FILE: &str = "gateway.addr";

/// The log of the lab's gateway (warnings such as a refused password), in the lab directory.
pub const LOG_FILE: &str = "gateway.log";

/// The address a running lab published in `dir`, if any.
pub fn published_address(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(ADDRESS_FILE)).ok()?;
    let addr = text.trim();
    (!addr.is_empty() && !addr.contains(char::is_whitespace)).then(|| addr.to_owned())
}

/// Most gateway fault rules a student may add in one lab session.
pub const MAX_STUDENT_RULES: usize = 16;

/// What `status` shows for the hidden variant's faults.
pub const HIDDEN_FAULT: &str =
    "a hidden fault (the lab's seed chose it: find it from the symptoms)";

/// The running environment.
pub struct LabEnv {
    dir: PathBuf,
    cluster: EmbeddedCluster,
    gateway: Option<Gateway>,
    config: GatewayFile,
    authz: Option<Arc<Authz>>,
    credentials: Option<SharedCredentials>,
    /// As requested: a fixed address keeps its port across restarts; port 0 picks new ones.
    listen: SocketAddr,
    bootstrap: String,
    /// Faults in force, as applied (for `status`).
    pub faults: Vec<String>,
    /// The gateway's fault rules; kept across gateway restarts.
    gateway_faults: Arc<FaultTable>,
    /// Ids of the rules the student added with the `fault` command.
    student_rules: Vec<u64>,
    /// Ids of the rules the lab's own `gateway` faults added, by rule text (undone one by one).
    lab_rules: std::collections::HashMap<String, Vec<u64>>,
    /// Write the gateway's address to [`ADDRESS_FILE`] (the guided run and `--auto`; not a
    /// one-off `kgate lab check`, whose gateway lives only as long as its checks).
    publish: bool,
    /// Per-broker request timings the gateway records (broker time vs the rest).
    timings: Arc<kgate_proxy::timings::Timings>,
    /// Records the lab's own consumers read (the live view's consume rate).
    reads: Arc<ReadMeter>,
    /// The cluster's state as the labs model it (the embedded cluster keeps no replicas).
    pub health: ClusterHealth,
    /// Consumers in the group the probes read with (`kgate lab cluster consumers N`).
    pub consumers: usize,
    /// Lines of the lab directory's operations file applied so far.
    ops_applied: usize,
    /// Gateway rules of the hidden fault.
    hidden_rules: Vec<u64>,
    /// Partitions per topic, for leaders and replica counts.
    topics: Vec<(String, i32)>,
}

/// How many records the lab's own consumers (its probes and `consume` checks) have read, per
/// topic and partition: the live view's consume rate. A student's own clients are not counted:
/// the gateway forwards their fetches without counting the records in them, so the live view
/// says whose reads it shows.
#[derive(Debug, Default)]
pub struct ReadMeter {
    counts: std::sync::Mutex<std::collections::BTreeMap<(String, i32), u64>>,
}

impl ReadMeter {
    /// Counts `n` records read from `topic`/`partition`.
    pub fn add(&self, topic: &str, partition: i32, n: u64) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((topic.to_owned(), partition)).or_default() += n;
        }
    }

    /// Records read so far, per topic and partition.
    pub fn totals(&self) -> std::collections::BTreeMap<(String, i32), u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Replication as the labs model it: every partition has a replica on each broker (up to
/// three); a broker that goes down takes its replicas out of the in-sync replica set (an ISR
/// shrink each) until it comes back (an ISR expand each). librdkafka's mock cluster keeps one
/// copy, so this bookkeeping is the lab's, driven by the same broker-down and broker-up faults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Brokers that are down.
    pub down: std::collections::BTreeSet<i32>,
    /// ISR shrinks since the lab started.
    pub isr_shrinks: u64,
    /// ISR expands since the lab started.
    pub isr_expands: u64,
    /// Partitions with a replica on a broker that is down.
    pub under_replicated: u64,
}

impl std::fmt::Debug for LabEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabEnv")
            .field("dir", &self.dir)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl LabEnv {
    /// Starts the cluster with the lab's topics and messages, and the gateway from the lab
    /// directory's `kgate.toml`.
    ///
    /// # Errors
    /// The cluster, a topic or the gateway cannot start.
    pub async fn start(
        env: &Environment,
        dir: &Path,
        listen: SocketAddr,
        publish: bool,
    ) -> anyhow::Result<Self> {
        let cluster =
            EmbeddedCluster::start(env.brokers).context("cannot start the embedded cluster")?;
        for topic in &env.topics {
            cluster
                .create_topic(&topic.name, topic.partitions)
                .with_context(|| format!("cannot create topic {}", topic.name))?;
        }
        // Seed the topics straight into the cluster (not through the gateway).
        let mut direct = rdkafka::ClientConfig::new();
        direct
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "1");
        for topic in env.topics.iter().filter(|t| t.messages > 0) {
            crate::client::produce(&direct, &topic.name, topic.messages, 40, 8)
                .await
                .with_context(|| format!("cannot fill topic {}", topic.name))?;
        }
        let mut env = LabEnv {
            dir: dir.to_owned(),
            cluster,
            gateway: None,
            config: GatewayFile::default(),
            authz: None,
            credentials: None,
            listen,
            bootstrap: String::new(),
            faults: Vec::new(),
            gateway_faults: Arc::default(),
            student_rules: Vec::new(),
            lab_rules: std::collections::HashMap::new(),
            publish,
            timings: Arc::default(),
            reads: Arc::default(),
            health: ClusterHealth::default(),
            consumers: 1,
            ops_applied: 0,
            hidden_rules: Vec::new(),
            topics: env
                .topics
                .iter()
                .map(|t| (t.name.clone(), t.partitions))
                .collect(),
        };
        // Leaders spread over the brokers, partition p on broker p % n + 1, as Kafka's
        // preferred leaders are: a baseline whose leaders a later step does not move.
        let n = env.cluster.broker_count();
        for (topic, partitions) in env.topics.clone() {
            for p in 0..partitions {
                env.cluster
                    .apply(ClusterCommand::PartitionLeader {
                        topic: topic.clone(),
                        partition: p,
                        broker: Some(p % n + 1),
                    })
                    .with_context(|| format!("cannot place the leader of {topic}-{p}"))?;
            }
        }
        let config = GatewayFile::read(dir)?;
        env.start_gateway(config).await?;
        Ok(env)
    }

    /// The gateway's `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The gateway settings in force.
    pub fn config(&self) -> &GatewayFile {
        &self.config
    }

    /// The lab directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's own bootstrap servers (behind the gateway).
    pub fn cluster_bootstrap(&self) -> &str {
        self.cluster.bootstrap_servers()
    }

    /// Brings the gateway in line with the lab directory: restarts it when `kgate.toml`
    /// changed, otherwise reloads users and policy. Returns a line for the student when
    /// something changed.
    ///
    /// # Errors
    /// A file that cannot be loaded, with its name.
    pub async fn sync(&mut self) -> anyhow::Result<Option<String>> {
        let mut lines = self.apply_operations()?;
        let config = GatewayFile::read(&self.dir)?;
        if config != self.config {
            self.start_gateway(config).await?;
            lines.push(format!(
                "gateway restarted with the new {GATEWAY_FILE}: {}",
                self.describe()
            ));
        } else {
            if let Some(creds) = &self.credentials {
                creds
                    .reload()
                    .map_err(|e| anyhow::anyhow!("users file: {e}"))?;
            }
            if let Some(authz) = &self.authz {
                authz
                    .authorizer
                    .reload()
                    .map_err(|e| anyhow::anyhow!("policy file: {e}"))?;
            }
        }
        Ok((!lines.is_empty()).then(|| lines.join("\n  ")))
    }

    /// One line: what the gateway serves.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let transport = if c.tls() { "TLS" } else { "PLAINTEXT" };
        let auth = if c.sasl() {
            "SASL (SCRAM/PLAIN)"
        } else {
            "no authentication"
        };
        let acls = if c.policy.is_some() {
            "ACLs enforced"
        } else {
            "no authorization"
        };
        format!("{} — {transport}, {auth}, {acls}", self.bootstrap)
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }

    async fn start_gateway(&mut self, config: GatewayFile) -> anyhow::Result<()> {
        if let Some(old) = self.gateway.take() {
            old.shutdown().await;
        }
        let upstream = self
            .cluster
            .bootstrap_servers()
            .split(',')
            .map(str::to_owned)
            .collect();
        let mut gw = GatewayConfig::new(self.listen, upstream);
        gw.faults = self.gateway_faults.clone();
        gw.timings = Some(self.timings.clone());
        gw.shutdown_grace = Duration::from_millis(200);
        gw.sasl.failure_delay = Duration::from_millis(20);
        if config.tls() {
            let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
                bail!("{GATEWAY_FILE}: `cert` needs `key` too (certs/server-key.pem)");
            };
            let handle = kgate_certs::TlsConfigHandle::load(kgate_certs::TlsSettings {
                cert: self.path(cert),
                key: self.path(key),
                client_ca: config.client_ca.as_ref().map(|p| self.path(p)),
            })
            .with_context(|| format!("{GATEWAY_FILE}: cannot load the certificate"))?;
            gw.tls = Some(Arc::new(TlsSettings {
                handle,
                principal_mapper: config
                    .client_ca
                    .as_ref()
                    .map(|_| kgate_certs::PrincipalMapper::default()),
            }));
        } else if config.key.is_some() && !config.plaintext {
            bail!("{GATEWAY_FILE}: `key` needs `cert` too (certs/server.pem)");
        }
        self.credentials = None;
        if let Some(users) = &config.users {
            let path = self.path(users);
            let creds = SharedCredentials::load(&path)
                .map_err(|e| anyhow::anyhow!("{GATEWAY_FILE}: users {}: {e}", path.display()))?;
            let mechanisms = if config.mechanisms.is_empty() {
                SaslMechanism::all()
            } else {
                config
                    .mechanisms
                    .iter()
                    .map(|m| {
                        SaslMechanism::from_name(m)
                            .with_context(|| format!("{GATEWAY_FILE}: unknown mechanism {m:?}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            gw.sasl.authenticator = Some(Arc::new(CredentialAuthenticator::new(
                creds.clone(),
                mechanisms,
            )));
            self.credentials = Some(creds);
        }
        self.authz = None;
        if config.policy.is_some() && config.allow_all_authenticated {
            bail!(
                "{GATEWAY_FILE}: policy and allow_all_authenticated are both set: remove \
                 allow_all_authenticated now that a policy authorizes every request"
            );
        }
        if let Some(policy) = &config.policy {
            let path = self.path(policy);
            let super_users = config
                .super_users
                .iter()
                .map(|p| {
                    p.parse::<Principal>()
                        .map_err(|e| anyhow::anyhow!("{GATEWAY_FILE}: super_users: {p:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let authorizer = Authorizer::open(
                &path,
                AuthorizerOptions {
                    super_users,
                    ..AuthorizerOptions::default()
                },
            )
            .map_err(|e| anyhow::anyhow!("{GATEWAY_FILE}: policy: {e}"))?;
            let audit = match &config.audit_log {
                Some(log) => {
                    let log = self.path(log);
                    Some(Arc::new(
                        Audit::to_file(&log, config.audit_allows).with_context(|| {
                            format!(
                                "{GATEWAY_FILE}: cannot open the audit log {}",
                                log.display()
                            )
                        })?,
                    ))
                }
                None => None,
            };
            let authz = Arc::new(Authz {
                authorizer: Arc::new(authorizer),
                audit,
                credentials: self.credentials.clone(),
                topic_ids: Default::default(),
            });
            gw.authz = Some(authz.clone());
            self.authz = Some(authz);
        }
        let gateway = Gateway::start(gw).await.with_context(|| {
            format!(
                "cannot start the lab gateway on {} (is the port in use? try --listen 127.0.0.1:0)",
                self.listen
            )
        })?;
        self.bootstrap = gateway.bootstrap_servers();
        self.gateway = Some(gateway);
        if self.publish {
            let path = self.dir.join(ADDRESS_FILE);
            std::fs::write(&path, format!("{}\n", self.bootstrap))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        self.config = config;
        Ok(())
    }

    /// Applies a fault to the cluster.
    ///
    /// # Errors
    /// The cluster refuses it.
    pub fn apply(&mut self, fault: &FaultSpec) -> anyhow::Result<()> {
        let command = match fault.clone() {
            FaultSpec::Gateway { rule } => {
                let parsed: FaultRule = rule
                    .parse()
                    .map_err(|e| anyhow::anyhow!("gateway fault {rule:?}: {e}"))?;
                let id = self
                    .gateway_faults
                    .add(parsed)
                    .map_err(|e| anyhow::anyhow!("gateway fault {rule:?}: {e}"))?;
                self.lab_rules.entry(rule).or_default().push(id);
                self.faults.push(fault.describe());
                return Ok(());
            }
            FaultSpec::RemoveGateway { rule } => {
                // Only what that fault added: the hidden variant's and the student's rules stay.
                if let Some(id) = self.lab_rules.get_mut(&rule).and_then(Vec::pop) {
                    self.gateway_faults.remove(id);
                }
                let added = FaultSpec::Gateway { rule }.describe();
                if let Some(i) = self.faults.iter().position(|d| *d == added) {
                    self.faults.remove(i);
                }
                return Ok(());
            }
            FaultSpec::ClearGateway => {
                self.gateway_faults.clear();
                self.lab_rules.clear();
                self.student_rules.clear();
                self.faults.retain(|d| {
                    !d.starts_with("yours: ") && !d.starts_with("the gateway injects: ")
                });
                return Ok(());
            }
            FaultSpec::BrokerDown { broker } => {
                self.broker_state(broker, false);
                ClusterCommand::BrokerDown(broker)
            }
            FaultSpec::BrokerUp { broker } => {
                self.broker_state(broker, true);
                ClusterCommand::BrokerUp(broker)
            }
            FaultSpec::RoundTripTime { broker, ms } => {
                if broker == -1 {
                    for b in 1..=self.cluster.broker_count() {
                        self.cluster.apply(ClusterCommand::RoundTripTime {
                            broker: b,
                            delay: Duration::from_millis(ms),
                        })?;
                    }
                    self.faults.push(fault.describe());
                    return Ok(());
                }
                ClusterCommand::RoundTripTime {
                    broker,
                    delay: Duration::from_millis(ms),
                }
            }
            FaultSpec::PartitionLeader {
                topic,
                partition,
                broker,
            } => ClusterCommand::PartitionLeader {
                topic,
                partition,
                broker: Some(broker),
            },
            FaultSpec::MoveLeaders { topic } => {
                let leaders = self.leaders(&topic)?;
                let n = self.cluster.broker_count();
                for (partition, leader) in leaders {
                    self.cluster.apply(ClusterCommand::PartitionLeader {
                        topic: topic.clone(),
                        partition,
                        broker: Some(leader % n + 1),
                    })?;
                }
                self.faults.push(fault.describe());
                return Ok(());
            }
            FaultSpec::RequestErrors { api, errors } => ClusterCommand::RequestErrors {
                api_key: api_key(&api).with_context(|| format!("unknown API {api:?}"))?,
                errors,
            },
            FaultSpec::ClearRequestErrors { api } => ClusterCommand::ClearRequestErrors {
                api_key: api_key(&api).with_context(|| format!("unknown API {api:?}"))?,
            },
        };
        self.cluster
            .apply(command)
            .with_context(|| format!("cannot inject: {}", fault.describe()))?;
        self.faults.push(fault.describe());
        Ok(())
    }

    /// Records a broker going down or up in [`ClusterHealth`] (-1: every broker).
    fn broker_state(&mut self, broker: i32, up: bool) {
        let n = self.cluster.broker_count();
        let brokers: Vec<i32> = if broker == -1 {
            (1..=n).collect()
        } else {
            vec![broker]
        };
        let partitions: i64 = self.topics.iter().map(|(_, p)| i64::from(*p)).sum();
        let replication = i64::from(n.min(3));
        // Replicas per broker: every partition's replicas spread evenly.
        let per_broker = (partitions * replication / i64::from(n.max(1))).max(0) as u64;
        for b in brokers {
            let changed = if up {
                self.health.down.remove(&b)
            } else {
                self.health.down.insert(b)
            };
            if changed {
                if up {
                    self.health.isr_expands += per_broker;
                } else {
                    self.health.isr_shrinks += per_broker;
                }
            }
        }
        let down = self.health.down.len() as u64;
        self.health.under_replicated = (down * per_broker).min(partitions.max(0) as u64);
    }

    /// The gateway's per-broker request timings.
    pub fn timings(&self) -> &kgate_proxy::timings::Timings {
        &self.timings
    }

    /// The partitions of each topic of the environment.
    pub fn topics(&self) -> &[(String, i32)] {
        &self.topics
    }

    /// The gateway's fault rules in force, as `kgate fault list` shows them.
    pub fn fault_rules(&self) -> String {
        self.gateway_faults.render()
    }

    /// The leaders of a topic's partitions, asked of the cluster directly.
    ///
    /// # Errors
    /// The cluster does not answer.
    pub fn partition_leaders(&self, topic: &str) -> anyhow::Result<Vec<(i32, i32)>> {
        self.leaders(topic)
    }

    /// Applies the operations a student wrote with `kgate lab cluster` since the last call;
    /// returns a line per operation.
    ///
    /// # Errors
    /// The operations file cannot be read or an operation is refused.
    pub fn apply_operations(&mut self) -> anyhow::Result<Vec<String>> {
        let path = self.dir.join(crate::ops::OPS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut done = Vec::new();
        for line in lines.iter().skip(self.ops_applied) {
            let op: crate::ops::ClusterOp = line
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: {line:?}: {e}", path.display()))?;
            let what = self.apply_op(&op)?;
            done.push(format!("cluster operation `{op}`: {what}"));
            self.ops_applied += 1;
        }
        Ok(done)
    }

    fn remove_lab_rules(&mut self, prefix: &str) -> usize {
        let mut removed = 0;
        let rules: Vec<String> = self
            .lab_rules
            .keys()
            .filter(|r| r.starts_with(prefix))
            .cloned()
            .collect();
        for rule in rules {
            for id in self.lab_rules.remove(&rule).unwrap_or_default() {
                if self.gateway_faults.remove(id) {
                    removed += 1;
                }
            }
            let added = FaultSpec::Gateway { rule }.describe();
            self.faults.retain(|d| *d != added);
        }
        removed
    }

    fn apply_op(&mut self, op: &crate::ops::ClusterOp) -> anyhow::Result<String> {
        use crate::ops::ClusterOp;
        let n = self.cluster.broker_count();
        let check_broker = |b: i32| -> anyhow::Result<()> {
            if (1..=n).contains(&b) {
                Ok(())
            } else {
                bail!("the cluster has brokers 1 to {n}")
            }
        };
        Ok(match op {
            ClusterOp::MoveLeader {
                topic,
                partition,
                broker,
            } => {
                check_broker(*broker)?;
                let Some((_, partitions)) = self.topics.iter().find(|(t, _)| t == topic) else {
                    bail!("no topic {topic:?} in this lab");
                };
                if !(0..*partitions).contains(partition) {
                    bail!("{topic} has partitions 0 to {}", partitions - 1);
                }
                if self.health.down.contains(broker) {
                    bail!("broker {broker} is down: it cannot lead");
                }
                self.cluster.apply(ClusterCommand::PartitionLeader {
                    topic: topic.clone(),
                    partition: *partition,
                    broker: Some(*broker),
                })?;
                format!("broker {broker} now leads {topic}-{partition}")
            }
            ClusterOp::RestartBroker { broker } => {
                check_broker(*broker)?;
                self.apply_hidden(&FaultSpec::BrokerUp { broker: *broker })?;
                format!("broker {broker} restarted (a restart does not change its hardware)")
            }
            ClusterOp::ReplaceBroker { broker } => {
                check_broker(*broker)?;
                self.apply_hidden(&FaultSpec::BrokerUp { broker: *broker })?;
                self.apply_hidden(&FaultSpec::RoundTripTime {
                    broker: *broker,
                    ms: 0,
                })?;
                format!("broker {broker} runs on new hardware (new disk), its replicas caught up")
            }
            ClusterOp::Consumers { count } => {
                self.consumers = *count;
                format!("the consumer group now has {count} consumer(s)")
            }
            ClusterOp::RaiseQuota => {
                let n = self.remove_lab_rules("throttle=");
                format!("quotas raised ({n} throttling rule(s) lifted)")
            }
            ClusterOp::RepairNetwork => {
                let n = self.remove_lab_rules("latency=");
                format!("network repaired ({n} congested path(s) cleared)")
            }
        })
    }

    /// A gateway fault rule the student adds to experiment; returns its canonical text.
    ///
    /// # Errors
    /// A rule with a mistake, with the fix.
    pub fn student_fault(&mut self, rule: &str) -> anyhow::Result<String> {
        if self.student_rules.len() >= MAX_STUDENT_RULES {
            bail!("{MAX_STUDENT_RULES} of your fault rules are in force already; `fault clear` removes them");
        }
        let parsed: FaultRule = rule.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let text = parsed.to_string();
        let id = self
            .gateway_faults
            .add(parsed)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.student_rules.push(id);
        self.faults.push(format!("yours: {text}"));
        Ok(text)
    }

    /// How many of the student's own rules are in force.
    pub fn student_rule_count(&self) -> usize {
        self.student_rules.len()
    }

    /// Removes the rules the student added (the lab's own faults stay); returns how many.
    pub fn clear_student_faults(&mut self) -> usize {
        let n = self
            .student_rules
            .drain(..)
            .filter(|id| self.gateway_faults.remove(*id))
            .count();
        self.faults.retain(|d| !d.starts_with("yours: "));
        n
    }

    /// Applies a fault the student must not see (the hidden variant's, or its repair):
    /// `status` does not list it; the runner shows one "hidden fault" line instead.
    ///
    /// # Errors
    /// As [`LabEnv::apply`].
    pub fn apply_hidden(&mut self, fault: &FaultSpec) -> anyhow::Result<()> {
        let before = self.faults.len();
        self.apply(fault)?;
        self.faults.truncate(before);
        if let FaultSpec::Gateway { rule } = fault {
            if let Some(id) = self.lab_rules.get(rule).and_then(|ids| ids.last()) {
                self.hidden_rules.push(*id);
            }
        }
        Ok(())
    }

    /// Ids of the gateway rules the hidden fault added (the live view masks them).
    pub fn hidden_rules(&self) -> Vec<u64> {
        self.hidden_rules.clone()
    }

    /// Ids of every gateway rule the lab itself added (not the student's).
    pub fn lab_rule_ids(&self) -> Vec<u64> {
        self.lab_rules.values().flatten().copied().collect()
    }

    /// The gateway's fault table (shared with the live view, which takes `kgate fault add`).
    pub fn fault_table(&self) -> Arc<FaultTable> {
        self.gateway_faults.clone()
    }

    /// The gateway's timings (shared with the live view).
    pub fn timings_handle(&self) -> Arc<kgate_proxy::timings::Timings> {
        self.timings.clone()
    }

    /// What the lab's consumers read (shared with the live view).
    pub fn reads_handle(&self) -> Arc<ReadMeter> {
        self.reads.clone()
    }

    /// The audit log the gateway writes, as a path, if one is configured.
    pub fn audit_path(&self) -> Option<PathBuf> {
        self.config.audit_log.as_ref().map(|p| self.path(p))
    }

    /// The leader of each partition of `topic`, asked of the cluster directly.
    fn leaders(&self, topic: &str) -> anyhow::Result<Vec<(i32, i32)>> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.cluster.bootstrap_servers())
            .create()
            .context("cannot ask the cluster for its leaders")?;
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .with_context(|| format!("cannot read the metadata of {topic}"))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader())))
            .collect())
    }

    /// Stops the gateway and the cluster.
    pub async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_gateway_file_is_the_insecure_default() {
        let dir = tempfile::tempdir().unwrap();
        let gw = GatewayFile::read(dir.path()).unwrap();
        assert!(!gw.tls() && !gw.sasl() && gw.policy.is_none());
    }

    #[test]
    fn a_typo_in_the_gateway_file_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(GATEWAY_FILE),
            "cert = \"certs/server.pem\"\nkye = \"certs/server-key.pem\"\n",
        )
        .unwrap();
        let err = GatewayFile::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("kgate.toml:2"), "{err}");
        assert!(err.contains("kye"), "{err}");
    }

    #[test]
    fn a_real_proxy_config_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(GATEWAY_FILE),
            "listen = \"0.0.0.0:9093\"\nupstream = [\"10.0.0.1:9092\"]\ncert = \"c.pem\"\n\
             key = \"k.pem\"\nusers = \"users.toml\"\npolicy = \"policy.toml\"\n",
        )
        .unwrap();
        let gw = GatewayFile::read(dir.path()).unwrap();
        assert!(gw.tls() && gw.sasl() && gw.policy.is_some());
    }
}
