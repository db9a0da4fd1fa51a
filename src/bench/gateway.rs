//! `kgate bench gateway`: what the gateway costs, measured with real clients.
//!
//! One run, against the embedded 3-broker cluster (in this process), with librdkafka
//! producing 1 KiB records (acks=all) and a consumer reading them back, over three paths:
//! direct to the cluster (the baseline); through a kgate child process in plaintext
//! passthrough (no TLS, no SASL, no authorization); through a kgate child with TLS,
//! SCRAM-SHA-512 and a policy of 10,000 ACL bindings. The paths take turns within every round,
//! so a burst of load from elsewhere on the machine hits one round of one path, not a path.
//!
//! 1. **Peak**, free-running: produce as fast as librdkafka goes, then consume it back.
//!    Figures per round: MB/s each way, the ratio to direct's in the same round, and kgate's
//!    CPU time (utime + stime from `/proc/<pid>/stat`) per GB of records it forwarded,
//!    producing and consuming apart.
//! 2. **Peak, pinned**: the same with the gateway children pinned to one CPU and this process
//!    (clients and cluster) to the other, so kgate's cost reads apart from theirs.
//! 3. **Load–latency curve**: send→ack latency while producing paced at 10, 25, 50 and 75 %
//!    of the *slowest* path's median peak, so that every path is below its own saturation
//!    and the latency kgate adds is not queueing; added p50 and p99 are path minus direct in
//!    the same round. Written as an SVG chart too.
//! 4. **Idle connections**: a fresh TLS gateway child; open N TLS connections and
//!    authenticate each with SCRAM-SHA-512; the gateway's VmRSS growth divided by N is the
//!    memory per idle authenticated connection (each also holds the gateway's upstream
//!    connection, as in production).
//!
//! Every figure is a median with its range over the rounds. Each phase warms its clients up
//! first (connections, metadata, TLS, SASL) so that only the steady state is measured. Every
//! child process is killed, and every pinning undone, when the benchmark ends, however it ends.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use kgate_auth::{CredentialStore, Mechanism};
use kgate_labs::EmbeddedCluster;
use kgate_policies::{
    synthetic_policy, AclBinding, Host, Operation, Permission, Principal, ResourcePattern,
    ResourceType,
};
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::client::TlsStream;

use super::chart::{write_curve, CurveLine};
use super::held::{self, GatewayTimes, HeldCounts};
use super::pin::{self, Pinned};
use super::process::{self, Child, Sched};
use super::stats::{Latency, Spread, Target};
use super::wire::{KafkaConn, ScramClient, TlsDialer};

/// Size of each record's value.
pub const RECORD_BYTES: usize = 1024;
/// Brokers of the embedded cluster.
pub(super) const BROKERS: i32 = 3;
/// Partitions of each benchmark topic (two led by each broker).
pub(super) const PARTITIONS: i32 = 6;
/// Distinct record keys (records spread over every partition).
const KEYS: usize = 1024;
/// librdkafka's default linger, set explicitly so that every path runs the same client.
pub(super) const LINGER_MS: u32 = 5;
/// Messages librdkafka may hold unacknowledged (20 MB): enough to saturate every path,
/// small enough that latency at peak stays a figure of the pipeline rather than of the queue.
pub(super) const QUEUE_MESSAGES: usize = 20_000;
/// The SCRAM user the benchmark creates.
pub(super) const USER: &str = "bench";
/// Connections opened before the memory baseline, kept open (warms thread pools and
/// allocator arenas so the baseline is the gateway's steady state).
const WARM_CONNECTIONS: usize = 16;
/// Handshakes in progress at once while opening idle connections.
const DIAL_PARALLEL: usize = 32;
/// The consumer reads this many times what was produced (re-reading from the beginning), so
/// that its measurement lasts long enough to be steady: it is several times faster than the
/// producer.
const CONSUME_FACTOR: usize = 3;
/// Upper bound of any single produce, consume or connection phase.
pub(super) const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Bindings of the TLS path's policy (issue 15: authorization as in production, not off).
const POLICY_BINDINGS: usize = 10_000;
/// Offered loads of the latency curve, as fractions of the slowest path's median peak.
const LOADS: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
/// The fewest records of one paced run (very short runs have too few samples for a p99).
const MIN_PACED: usize = 500;

/// Issue 2's targets.
const TARGET_THROUGHPUT_RATIO: f64 = 0.90;
const TARGET_KIB_PER_CONNECTION: f64 = 64.0;
/// Issue 15's targets: at 50 % of the slowest (TLS) path's peak, and kgate's CPU per GB.
const TARGET_ADDED_P99_MS: f64 = 1.0;
const TARGET_ADDED_P50_MS: f64 = 0.2;
const TARGET_CPU_PLAINTEXT: f64 = 0.15;
const TARGET_CPU_TLS: f64 = 0.5;
/// The load at which the latency targets apply.
const TARGET_LOAD: f64 = 0.50;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records produced per path and peak round (each is consumed `CONSUME_FACTOR` times).
    pub messages: usize,
    /// Rounds of every phase.
    pub rounds: usize,
    /// Seconds each paced run of the latency curve lasts.
    pub load_seconds: f64,
    /// Also measure the peak with the gateways pinned to one CPU and the clients to the rest.
    pub pin: bool,
    /// Where to write the load–latency chart (SVG); `None` writes none.
    pub chart: Option<PathBuf>,
    /// Idle authenticated connections for the memory figure.
    pub connections: usize,
    /// The `kgate` binary run as the gateway children; `None` runs this one. Comparing two
    /// builds with the same benchmark code keeps "before" and "after" comparable.
    pub gateway_binary: Option<PathBuf>,
    /// Print one JSON document instead of the table.
    pub json: bool,
}

/// Runs the benchmark and prints its report.
///
/// # Errors
/// Any phase that fails: a client error, a gateway that does not start or dies (with the
/// end of its log), a timeout, or an open-files hard limit too low for `connections`.
pub fn run(options: Options) -> anyhow::Result<()> {
    let report = measure(&options)?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The three ways clients reach the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Direct,
    Plaintext,
    TlsScram,
}

impl Route {
    const ALL: [Route; 3] = [Route::Direct, Route::Plaintext, Route::TlsScram];

    fn key(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Plaintext => "plaintext",
            Route::TlsScram => "tls_scram",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Plaintext => "kgate plaintext",
            Route::TlsScram => "kgate TLS+SCRAM",
        }
    }
}

/// Everything one run measured; serialized as the `--json` document.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always `"gateway"`.
    pub benchmark: &'static str,
    /// `"release"` or `"debug"`: the targets are for release builds.
    pub build: &'static str,
    /// CPUs available to the process.
    pub cpus: usize,
    /// What was run.
    pub config: Config,
    /// Figures per path.
    pub paths: Paths,
    /// The load–latency curve.
    pub curve: Curve,
    /// The idle-connection phase.
    pub idle_connections: IdleConnections,
    /// Issues 2 and 15's targets, checked.
    pub targets: Vec<Target>,
    /// The chart written, if any.
    pub chart: Option<PathBuf>,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
}

/// The run's settings.
#[derive(Debug, Serialize)]
pub struct Config {
    /// Records per path and peak round.
    pub messages: usize,
    /// Records sent before measuring, per producer.
    pub warmup_messages: usize,
    /// Size of each record value.
    pub record_bytes: usize,
    /// Brokers of the embedded cluster.
    pub brokers: i32,
    /// Partitions per topic.
    pub partitions: i32,
    /// Producer `acks`.
    pub acks: &'static str,
    /// Producer `linger.ms`.
    pub linger_ms: u32,
    /// Producer `queue.buffering.max.messages`.
    pub queue_messages: usize,
    /// Rounds of each phase (the paths take turns within a round).
    pub rounds: usize,
    /// Records consumed per round = this × records produced (warm-up included).
    pub consume_factor: usize,
    /// ACL bindings of the TLS path's policy.
    pub policy_bindings: usize,
    /// Seconds of each paced run.
    pub load_seconds: f64,
    /// Whether the pinned peak phase ran.
    pub pinned: bool,
    /// Idle connections opened.
    pub connections: usize,
}

/// Figures of each path.
#[derive(Debug, Serialize)]
pub struct Paths {
    /// Straight to the cluster.
    pub direct: PathReport,
    /// Through kgate without TLS or SASL.
    pub plaintext: PathReport,
    /// Through kgate with TLS, SCRAM-SHA-512 and a 10,000-binding policy.
    pub tls_scram: PathReport,
}

/// Figures of one path.
#[derive(Debug, Serialize)]
pub struct PathReport {
    /// Every process free to run on every CPU.
    pub free: PeakFigures,
    /// Gateways on one CPU, clients and cluster on the others; `None` when not run.
    pub pinned: Option<PeakFigures>,
    /// Send→ack latency while producing at peak, free-running (queueing included), over
    /// every round's samples.
    pub peak_latency: Latency,
    /// Gateway resident memory after the peak phases, KiB; `None` for direct.
    pub rss_kib: Option<u64>,
}

/// The peak phase of one path, over its rounds.
#[derive(Debug, Serialize)]
pub struct PeakFigures {
    /// Produce throughput, MB/s (10^6 bytes of record values per second).
    pub produce_mb_s: Spread,
    /// Consume throughput, MB/s, from each pass's first record to its last.
    pub consume_mb_s: Spread,
    /// Produce MB/s / direct's in the same round.
    pub produce_ratio: Spread,
    /// Consume MB/s / direct's in the same round.
    pub consume_ratio: Spread,
    /// CPU seconds of the benchmark process (clients and the embedded cluster) per 10^9
    /// record bytes moved (produced + consumed).
    pub clients_and_cluster_cpu_s_per_gb: Spread,
    /// The gateway's CPU seconds per 10^9 record bytes it forwarded while producing; `None`
    /// for direct.
    pub gateway_produce_cpu_s_per_gb: Option<Spread>,
    /// The same while consuming.
    pub gateway_consume_cpu_s_per_gb: Option<Spread>,
    /// The gateway's CPU seconds over every round (so a reader can judge the resolution of
    /// `/proc`'s clock ticks).
    pub gateway_cpu_s: Option<f64>,
}

/// The load–latency curve.
#[derive(Debug, Serialize)]
pub struct Curve {
    /// The path with the lowest median peak produce rate.
    pub slowest: &'static str,
    /// Its median peak rate, records/s: 100 % load.
    pub peak_rate: f64,
    /// One point per offered load.
    pub points: Vec<LoadPoint>,
}

/// Latency of every path at one offered load.
#[derive(Debug, Serialize)]
pub struct LoadPoint {
    /// Fraction of the slowest path's peak.
    pub fraction: f64,
    /// Offered rate, records/s.
    pub rate: f64,
    /// Straight to the cluster.
    pub direct: PointLatency,
    /// Through kgate in plaintext.
    pub plaintext: PointLatency,
    /// Through kgate with TLS + SCRAM and the policy.
    pub tls_scram: PointLatency,
}

/// One path at one load, over the rounds.
#[derive(Debug, Serialize)]
pub struct PointLatency {
    /// Rate reached, records/s.
    pub rate: Spread,
    /// Send→ack p50 of each round, ms.
    pub p50_ms: Spread,
    /// Send→ack p99 of each round, ms.
    pub p99_ms: Spread,
    /// p50 − direct's p50 in the same round, ms; `None` for direct.
    pub added_p50_ms: Option<Spread>,
    /// p99 − direct's p99 in the same round, ms; `None` for direct.
    pub added_p99_ms: Option<Spread>,
    /// How long the gateway itself held a Produce request and its answer, p50 of each round,
    /// ms (from its `kgate_request_held_seconds` histogram); `None` for direct.
    pub held_p50_ms: Option<Spread>,
    /// The same, p99.
    pub held_p99_ms: Option<Spread>,
    /// How long a Produce request took to arrive at the gateway (first bytes to last), p50 of
    /// each round, ms; `None` for direct.
    pub receive_p50_ms: Option<Spread>,
    /// The same, p99.
    pub receive_p99_ms: Option<Spread>,
    /// Share of the gateway threads' runnable time spent waiting for a CPU, per cent, each
    /// round; `None` for direct or without scheduler statistics.
    pub gateway_cpu_wait_percent: Option<Spread>,
}

/// The idle-connection phase.
#[derive(Debug, Serialize)]
pub struct IdleConnections {
    /// Connections opened, authenticated and measured.
    pub count: usize,
    /// Seconds to open and authenticate all of them.
    pub open_s: f64,
    /// Gateway VmRSS before, KiB (after `WARM_CONNECTIONS` warm-up connections).
    pub rss_before_kib: u64,
    /// Gateway VmRSS with every connection open, KiB.
    pub rss_after_kib: u64,
    /// (after − before) / count.
    pub kib_per_connection: f64,
    /// Gateway file descriptors added (client socket + upstream socket per connection).
    pub fds_added: i64,
    /// Connections that answered ApiVersions after the measurement.
    pub alive_after: usize,
}

/// Temporary files, the cluster and the user, shared by every phase.
pub(super) struct Setup {
    dir: tempfile::TempDir,
    /// The binary of the gateway children; `None`: this one.
    pub(super) gateway_binary: Option<PathBuf>,
    pub(super) cluster: EmbeddedCluster,
    pub(super) password: String,
}

impl Setup {
    pub(super) fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kgate-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let options = kgate_certs::GenerateOptions::default();
        kgate_certs::generate::init_ca(dir.path(), &options)?;
        kgate_certs::generate::issue_server(
            dir.path(),
            &["localhost".into()],
            &[Ipv4Addr::LOCALHOST.into()],
            &options,
        )?;
        let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let mut store = CredentialStore::new();
        store.add(USER, Mechanism::ScramSha512, password.as_bytes(), 4096)?;
        store.save(&dir.path().join("users.toml"))?;
        let cluster =
            EmbeddedCluster::start(BROKERS).context("cannot start the embedded cluster")?;
        Ok(Self {
            dir,
            gateway_binary: None,
            cluster,
            password,
        })
    }

    pub(super) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub(super) fn topic(&self, name: &str) -> anyhow::Result<String> {
        self.cluster.create_topic(name, PARTITIONS)?;
        Ok(name.to_owned())
    }

    /// Starts a gateway child in front of the cluster on free loopback ports.
    ///
    /// The TLS gateway authorizes with a policy of [`POLICY_BINDINGS`] bindings, as in
    /// production; the plaintext one forwards without authorization (it has no SASL
    /// principal to authorize).
    fn gateway(&self, route: Route, name: &str) -> anyhow::Result<Gateway> {
        let authz: Vec<OsString> = match route {
            Route::TlsScram => vec!["--policy".into(), self.policy()?.into()],
            _ => vec!["--allow-all-authenticated".into()],
        };
        self.spawn_gateway(route, name, &authz, "warn")
    }

    /// Writes the policy file: [`POLICY_BINDINGS`] synthetic bindings of other users (the
    /// matcher's indexes as big as in a real deployment) plus what the benchmark user needs.
    fn policy(&self) -> anyhow::Result<PathBuf> {
        let file = self.path("policy.toml");
        let mut policy = synthetic_policy(POLICY_BINDINGS.saturating_sub(5));
        let bench: Principal = format!("User:{USER}").parse()?;
        let grants = [
            (
                ResourcePattern::prefixed(ResourceType::Topic, "bench-")?,
                Operation::Write,
            ),
            (
                ResourcePattern::prefixed(ResourceType::Topic, "bench-")?,
                Operation::Read,
            ),
            (
                ResourcePattern::prefixed(ResourceType::Topic, "bench-")?,
                Operation::Describe,
            ),
            (
                ResourcePattern::literal(ResourceType::Group, "kgate-bench")?,
                Operation::Read,
            ),
            (ResourcePattern::cluster(), Operation::IdempotentWrite),
        ];
        for (pattern, operation) in grants {
            policy.add_acl(AclBinding {
                pattern,
                principal: bench.clone(),
                host: Host::Any,
                operation,
                permission: Permission::Allow,
            });
        }
        policy.save(&file)?;
        Ok(file)
    }

    /// Starts a gateway child with `--allow-all-authenticated`, more `kgate proxy` arguments
    /// and the child's `KGATE_LOG`.
    pub(super) fn gateway_with(
        &self,
        route: Route,
        name: &str,
        extra: &[OsString],
        log_level: &str,
    ) -> anyhow::Result<Gateway> {
        let mut args = vec![OsString::from("--allow-all-authenticated")];
        args.extend(extra.iter().cloned());
        self.spawn_gateway(route, name, &args, log_level)
    }

    /// Starts a gateway child in front of the cluster on free loopback ports, with `extra`
    /// `kgate proxy` arguments (which must choose the authorization) and the child's
    /// `KGATE_LOG`.
    fn spawn_gateway(
        &self,
        route: Route,
        name: &str,
        extra: &[OsString],
        log_level: &str,
    ) -> anyhow::Result<Gateway> {
        let port = process::free_port_block(BROKERS as u16 + 3)?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // The admin endpoint, for the time kgate held each request (`held`).
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, port + BROKERS as u16 + 2));
        let mut args: Vec<OsString> = vec![
            "proxy".into(),
            "--upstream".into(),
            self.cluster.bootstrap_servers().into(),
            "--listen".into(),
            listen.to_string().into(),
            "--broker-port-base".into(),
            (port + 1).to_string().into(),
            "--admin-listen".into(),
            admin.to_string().into(),
            "--admin-token-file".into(),
            self.path(&format!("{name}-admin-token")).into(),
        ];
        match route {
            Route::TlsScram => {
                args.extend([
                    "--cert".into(),
                    self.path("server.pem").into(),
                    "--key".into(),
                    self.path("server-key.pem").into(),
                    "--users".into(),
                    self.path("users.toml").into(),
                    "--mechanisms".into(),
                    "SCRAM-SHA-512".into(),
                ]);
            }
            Route::Plaintext => {
                // `--plaintext` alone is refused ("no users file"); a client CA without TLS
                // is the only way the CLI offers to run without SASL (the CA is not used).
                args.extend([
                    "--plaintext".into(),
                    "--client-ca".into(),
                    self.path("ca.pem").into(),
                ]);
            }
            Route::Direct => bail!("the direct path has no gateway"),
        }
        args.extend(extra.iter().cloned());
        let log = self.path(&format!("{name}.log"));
        let child = match &self.gateway_binary {
            Some(exe) => Child::spawn_exe(exe, name, &args, &log, log_level)?,
            None => Child::spawn(name, &args, &log, log_level)?,
        };
        let mut addrs = vec![listen, admin];
        addrs.extend(
            (1..=BROKERS).map(|n| SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1 + n as u16))),
        );
        child.wait_listening(&addrs, Duration::from_secs(30))?;
        Ok(Gateway {
            child,
            bootstrap: listen,
            admin,
        })
    }

    /// librdkafka settings for a path.
    pub(super) fn client(
        &self,
        route: Route,
        gateway: Option<&Gateway>,
    ) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new();
        match (route, gateway) {
            (Route::Direct, _) => {
                config.set("bootstrap.servers", self.cluster.bootstrap_servers());
            }
            (Route::Plaintext, Some(g)) => {
                config.set("bootstrap.servers", g.bootstrap.to_string());
            }
            (Route::TlsScram, Some(g)) => {
                config
                    .set("bootstrap.servers", g.bootstrap.to_string())
                    .set("security.protocol", "SASL_SSL")
                    .set("sasl.mechanisms", "SCRAM-SHA-512")
                    .set("sasl.username", USER)
                    .set("sasl.password", &self.password)
                    .set("ssl.ca.location", self.path("ca.pem").display().to_string());
            }
            (route, None) => bail!("{} needs a gateway", route.label()),
        }
        config.set("client.id", "kgate-bench");
        Ok(config)
    }
}

/// A gateway child and where it listens.
pub(super) struct Gateway {
    pub(super) child: Child,
    pub(super) bootstrap: SocketAddr,
    /// Its admin endpoint (loopback), where it counts how long it held each request.
    pub(super) admin: SocketAddr,
}

fn progress(message: &str) {
    eprintln!("bench gateway: {message}");
}

fn measure(options: &Options) -> anyhow::Result<Report> {
    ensure!(
        options.messages >= 100,
        "--messages must be at least 100 (got {})",
        options.messages
    );
    ensure!(options.rounds >= 1, "--rounds must be at least 1");
    ensure!(options.connections >= 1, "--connections must be at least 1");
    ensure!(
        options.load_seconds > 0.0 && options.load_seconds.is_finite(),
        "--load-seconds must be positive"
    );
    let pin = options.pin && std::thread::available_parallelism().map_or(1, usize::from) >= 2;
    if options.pin && !pin {
        progress("one CPU only: the pinned phase is left out");
    }
    ensure!(
        !pin || pin::available(),
        "the pinned phase needs `taskset` (util-linux); install it or pass --no-pin"
    );
    let started = Instant::now();
    // Each idle connection costs a descriptor in this process (client side) and one in the
    // embedded cluster (upstream side); the gateway child, which inherits the limit, holds
    // both ends too.
    let total = options.connections + WARM_CONNECTIONS;
    let needed = 2 * total as u64 + 1024;
    process::raise_open_files(needed, &format!("--connections {}", options.connections))?;
    let warmup = (options.messages / 10).clamp(50, 1000);
    let rounds = options.rounds;

    progress("starting the embedded cluster and two gateway children");
    let mut setup = Setup::new()?;
    setup.gateway_binary = options.gateway_binary.clone();
    let plain = setup.gateway(Route::Plaintext, "kgate-plaintext")?;
    let tls = setup.gateway(Route::TlsScram, "kgate-tls")?;
    let gateway_of = |route: Route| match route {
        Route::Direct => None,
        Route::Plaintext => Some(&plain),
        Route::TlsScram => Some(&tls),
    };

    let peak_phase = |phase: &str| -> anyhow::Result<[Vec<Peak>; 3]> {
        let mut peaks: [Vec<Peak>; 3] = Default::default();
        for round in 1..=rounds {
            for (i, route) in Route::ALL.into_iter().enumerate() {
                let gateway = gateway_of(route);
                let config = setup.client(route, gateway)?;
                let topic = setup.topic(&format!("bench-{phase}-{}-{round}", route.key()))?;
                let produced = produce(&config, &topic, warmup, options.messages, None, gateway)?;
                let consumed = consume(
                    &config,
                    &topic,
                    CONSUME_FACTOR * (warmup + options.messages),
                    gateway,
                )?;
                if let Some(g) = gateway {
                    g.child.check_alive()?;
                }
                let cost = |cpu: Duration, messages: usize| {
                    gateway.map_or(String::new(), |_| {
                        format!(", kgate {:.3} s/GB", cpu_per_gb(cpu, messages))
                    })
                };
                progress(&format!(
                    "{phase} round {round}/{rounds}, {:<15}: produce {:7.1} MB/s{}, consume {:7.1} MB/s{}",
                    route.label(),
                    produced.mb_s(),
                    cost(produced.gateway_cpu, produced.messages),
                    consumed.mb_s(),
                    cost(consumed.gateway_cpu, consumed.messages),
                ));
                peaks[i].push(Peak { produced, consumed });
            }
        }
        Ok(peaks)
    };

    // Phase 1: peak, free-running.
    let free = peak_phase("peak")?;
    // Phase 2: peak with the gateways on one CPU and everything else on the other.
    let pinned = if pin {
        let _pinned = Pinned::apart(&[plain.child.pid(), tls.child.pid()])?;
        Some(peak_phase("pinned")?)
    } else {
        None
    };

    // Phase 3: the load–latency curve, at fractions of the slowest path's median peak.
    let medians: Vec<f64> = free
        .iter()
        .map(|runs| Spread::of(runs.iter().map(|p| p.produced.rate()).collect()).median)
        .collect();
    let (slowest, peak_rate) = Route::ALL
        .into_iter()
        .zip(medians)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .context("no path measured")?;
    let mut runs: Vec<[Vec<Produced>; 3]> = Vec::new();
    for fraction in LOADS {
        let rate = peak_rate * fraction;
        let n = ((rate * options.load_seconds) as usize).max(MIN_PACED);
        let mut at_load: [Vec<Produced>; 3] = Default::default();
        for round in 1..=rounds {
            for (i, route) in Route::ALL.into_iter().enumerate() {
                let gateway = gateway_of(route);
                let config = setup.client(route, gateway)?;
                let name = format!("bench-load{:.0}-{}-{round}", fraction * 100.0, route.key());
                let topic = setup.topic(&name)?;
                let run = produce(&config, &topic, warmup, n, Some(rate), gateway)?;
                let latency = Latency::of(run.latencies.clone());
                progress(&format!(
                    "load {:>3.0} % ({rate:.0}/s) round {round}/{rounds}, {:<15}: p50 {:.2} ms, p99 {:.2} ms",
                    fraction * 100.0,
                    route.label(),
                    latency.p50_ms,
                    latency.p99_ms
                ));
                at_load[i].push(run);
            }
        }
        runs.push(at_load);
    }
    let rss: Vec<Option<u64>> = Route::ALL
        .into_iter()
        .map(|r| gateway_of(r).map(|g| g.child.rss_kib()).transpose())
        .collect::<anyhow::Result<_>>()?;
    drop(plain);
    drop(tls);

    // Phase 4: memory per idle authenticated connection, on a fresh gateway.
    progress(&format!(
        "opening {} idle TLS connections authenticated with SCRAM-SHA-512",
        options.connections
    ));
    let idle = idle_connections(&setup, options.connections)?;

    let curve = Curve {
        slowest: slowest.key(),
        peak_rate,
        points: LOADS
            .iter()
            .zip(&runs)
            .map(|(fraction, at_load)| load_point(*fraction, peak_rate * fraction, at_load))
            .collect(),
    };
    let mut reports = Vec::new();
    for (i, rss_kib) in rss.into_iter().enumerate() {
        let samples: Vec<Duration> = free[i]
            .iter()
            .flat_map(|p| p.produced.latencies.iter().copied())
            .collect();
        reports.push(PathReport {
            free: peak_figures(&free[i], &free[0], rss_kib.is_some()),
            pinned: pinned
                .as_ref()
                .map(|p| peak_figures(&p[i], &p[0], rss_kib.is_some())),
            peak_latency: Latency::of(samples),
            rss_kib,
        });
    }
    let mut reports = reports.into_iter();
    let mut next = || reports.next().context("missing path");
    let paths = Paths {
        direct: next()?,
        plaintext: next()?,
        tls_scram: next()?,
    };
    let targets = targets(&paths, &curve, &idle);
    let chart = match &options.chart {
        Some(file) => {
            let mut lines: Vec<CurveLine> = Route::ALL
                .into_iter()
                .map(|route| CurveLine {
                    label: route.label().to_string(),
                    points: curve
                        .points
                        .iter()
                        .map(|p| {
                            let l = p.of(route);
                            (p.fraction * 100.0, l.p50_ms.median, l.p99_ms.median)
                        })
                        .collect(),
                })
                .collect();
            let held: Option<Vec<(f64, f64, f64)>> = curve
                .points
                .iter()
                .map(|p| {
                    let l = &p.tls_scram;
                    Some((
                        p.fraction * 100.0,
                        l.held_p50_ms?.median,
                        l.held_p99_ms?.median,
                    ))
                })
                .collect();
            if let Some(points) = held {
                lines.push(CurveLine {
                    label: "TLS+SCRAM, held in kgate".to_string(),
                    points,
                });
            }
            let title = format!(
                "kgate send→ack latency, 1 KiB records, acks=all (100 % = {:.0} records/s, {}'s peak)",
                peak_rate,
                slowest.label()
            );
            match write_curve(file, &title, &lines) {
                Ok(()) => Some(file.clone()),
                Err(e) => {
                    // The figures matter more than the picture: report and carry on.
                    progress(&format!("cannot write the chart: {e:#}"));
                    None
                }
            }
        }
        None => None,
    };
    Ok(Report {
        benchmark: "gateway",
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        config: Config {
            messages: options.messages,
            warmup_messages: warmup,
            record_bytes: RECORD_BYTES,
            brokers: BROKERS,
            partitions: PARTITIONS,
            acks: "all",
            linger_ms: LINGER_MS,
            queue_messages: QUEUE_MESSAGES,
            rounds,
            consume_factor: CONSUME_FACTOR,
            policy_bindings: POLICY_BINDINGS,
            load_seconds: options.load_seconds,
            pinned: pin,
            connections: idle.count,
        },
        paths,
        curve,
        idle_connections: idle,
        targets,
        chart,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// CPU seconds per 10^9 record bytes.
fn cpu_per_gb(cpu: Duration, messages: usize) -> f64 {
    cpu.as_secs_f64() / (messages as f64 * RECORD_BYTES as f64 / 1e9).max(1e-12)
}

/// The figures of one path's peak rounds; `direct` holds direct's rounds of the same phase,
/// in the same order, for the ratios.
fn peak_figures(runs: &[Peak], direct: &[Peak], gateway: bool) -> PeakFigures {
    let spread = |f: &dyn Fn(&Peak) -> f64| Spread::of(runs.iter().map(f).collect());
    let ratio = |f: &dyn Fn(&Peak) -> f64| {
        Spread::of(runs.iter().zip(direct).map(|(r, d)| f(r) / f(d)).collect())
    };
    PeakFigures {
        produce_mb_s: spread(&|p| p.produced.mb_s()),
        consume_mb_s: spread(&|p| p.consumed.mb_s()),
        produce_ratio: ratio(&|p| p.produced.mb_s()),
        consume_ratio: ratio(&|p| p.consumed.mb_s()),
        clients_and_cluster_cpu_s_per_gb: spread(&|p| {
            cpu_per_gb(
                p.produced.own_cpu + p.consumed.own_cpu,
                p.produced.messages + p.consumed.messages,
            )
        }),
        gateway_produce_cpu_s_per_gb: gateway
            .then(|| spread(&|p| cpu_per_gb(p.produced.gateway_cpu, p.produced.messages))),
        gateway_consume_cpu_s_per_gb: gateway
            .then(|| spread(&|p| cpu_per_gb(p.consumed.gateway_cpu, p.consumed.messages))),
        gateway_cpu_s: gateway.then(|| {
            runs.iter()
                .map(|p| (p.produced.gateway_cpu + p.consumed.gateway_cpu).as_secs_f64())
                .sum()
        }),
    }
}

/// Latency of every path at one load; `at_load[i][round]` is path `i`'s run in `round`.
fn load_point(fraction: f64, rate: f64, at_load: &[Vec<Produced>; 3]) -> LoadPoint {
    let latencies: Vec<Vec<Latency>> = at_load
        .iter()
        .map(|runs| {
            runs.iter()
                .map(|r| Latency::of(r.latencies.clone()))
                .collect()
        })
        .collect();
    let direct = &latencies[0];
    let path = |i: usize| {
        let own = &latencies[i];
        let added = |f: fn(&Latency) -> f64| {
            Spread::of(own.iter().zip(direct).map(|(o, d)| f(o) - f(d)).collect())
        };
        PointLatency {
            rate: Spread::of(at_load[i].iter().map(Produced::rate).collect()),
            p50_ms: Spread::of(own.iter().map(|l| l.p50_ms).collect()),
            p99_ms: Spread::of(own.iter().map(|l| l.p99_ms).collect()),
            added_p50_ms: (i > 0).then(|| added(|l| l.p50_ms)),
            added_p99_ms: (i > 0).then(|| added(|l| l.p99_ms)),
            held_p50_ms: held_spread(&at_load[i], |t| &t.held, 0.50),
            held_p99_ms: held_spread(&at_load[i], |t| &t.held, 0.99),
            receive_p50_ms: held_spread(&at_load[i], |t| &t.receive, 0.50),
            receive_p99_ms: held_spread(&at_load[i], |t| &t.receive, 0.99),
            gateway_cpu_wait_percent: at_load[i]
                .iter()
                .map(|r| r.sched.map(Sched::wait_percent))
                .collect::<Option<Vec<f64>>>()
                .map(Spread::of),
        }
    };
    LoadPoint {
        fraction,
        rate,
        direct: path(0),
        plaintext: path(1),
        tls_scram: path(2),
    }
}

/// The `q`-quantile of one of the gateway's times (`which`) in each run, over the runs;
/// `None` for a path without a gateway.
fn held_spread(
    runs: &[Produced],
    which: fn(&GatewayTimes) -> &HeldCounts,
    q: f64,
) -> Option<Spread> {
    let values: Option<Vec<f64>> = runs
        .iter()
        .map(|r| {
            r.held
                .as_ref()
                .map(|h| which(h).quantile_ms(q).unwrap_or(f64::NAN))
        })
        .collect();
    values.map(Spread::of)
}

impl LoadPoint {
    fn of(&self, route: Route) -> &PointLatency {
        match route {
            Route::Direct => &self.direct,
            Route::Plaintext => &self.plaintext,
            Route::TlsScram => &self.tls_scram,
        }
    }
}

/// Issues 2 and 15's targets, on the medians.
fn targets(paths: &Paths, curve: &Curve, idle: &IdleConnections) -> Vec<Target> {
    let mut targets = vec![Target::at_least(
        "TLS+SCRAM produce throughput / direct",
        paths.tls_scram.free.produce_ratio.median,
        TARGET_THROUGHPUT_RATIO,
        "x",
    )];
    let at_target = curve
        .points
        .iter()
        .find(|p| (p.fraction - TARGET_LOAD).abs() < 1e-9);
    if let Some(p) = at_target {
        let median = |s: &Option<Spread>| s.map_or(f64::NAN, |s| s.median);
        // As the client sees it, and the part kgate itself adds (its own measurement).
        let tls = &p.tls_scram;
        for (figure, value, limit) in [
            ("added p99", &tls.added_p99_ms, TARGET_ADDED_P99_MS),
            ("added p50", &tls.added_p50_ms, TARGET_ADDED_P50_MS),
            ("kgate held p99", &tls.held_p99_ms, TARGET_ADDED_P99_MS),
            ("kgate held p50", &tls.held_p50_ms, TARGET_ADDED_P50_MS),
        ] {
            targets.push(Target::at_most(
                &format!("TLS+SCRAM {figure} at 50 % load"),
                median(value),
                limit,
                "ms",
            ));
        }
    }
    for (name, path, limit) in [
        ("plaintext", &paths.plaintext, TARGET_CPU_PLAINTEXT),
        ("TLS", &paths.tls_scram, TARGET_CPU_TLS),
    ] {
        for (mode, figures) in [("free", Some(&path.free)), ("pinned", path.pinned.as_ref())] {
            let Some(f) = figures else { continue };
            for (way, cost) in [
                ("produce", &f.gateway_produce_cpu_s_per_gb),
                ("consume", &f.gateway_consume_cpu_s_per_gb),
            ] {
                if let Some(cost) = cost {
                    targets.push(Target::at_most(
                        &format!("kgate CPU {name} {way}, {mode}"),
                        cost.median,
                        limit,
                        "s/GB",
                    ));
                }
            }
        }
    }
    targets.push(Target::at_most(
        "memory per idle authenticated connection",
        idle.kib_per_connection,
        TARGET_KIB_PER_CONNECTION,
        "KiB",
    ));
    targets
}

/// Records the send→ack latency of every delivered message.
#[derive(Default)]
struct Deliveries {
    latencies: Mutex<Vec<Duration>>,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        let latency = sent.elapsed();
        match result {
            Ok(_) => self
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(latency),
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Deliveries {
    fn take(&self) -> Vec<Duration> {
        std::mem::take(
            &mut *self
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// One peak round of one path.
struct Peak {
    produced: Produced,
    consumed: Consumed,
}

/// One measured produce run.
pub(super) struct Produced {
    pub(super) messages: usize,
    pub(super) elapsed: Duration,
    pub(super) latencies: Vec<Duration>,
    pub(super) gateway_cpu: Duration,
    /// CPU of this process (clients and the embedded cluster) meanwhile.
    pub(super) own_cpu: Duration,
    /// Records whose delivery failed (warm-up included), and the first error.
    pub(super) failed: usize,
    pub(super) first_error: Option<String>,
    /// Through a gateway: how long it held the run's Produce requests and their answers, and
    /// how long they took to arrive.
    pub(super) held: Option<GatewayTimes>,
    /// Through a gateway: how long its threads ran and waited for a CPU during the run.
    pub(super) sched: Option<Sched>,
}

impl Produced {
    pub(super) fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    pub(super) fn mb_s(&self) -> f64 {
        self.rate() * RECORD_BYTES as f64 / 1e6
    }
}

/// Produces `warmup` records (not measured), then `n` records, at full speed or paced at
/// `rate` records/s, and waits for every acknowledgement.
fn produce(
    config: &ClientConfig,
    topic: &str,
    warmup: usize,
    n: usize,
    rate: Option<f64>,
    gateway: Option<&Gateway>,
) -> anyhow::Result<Produced> {
    let produced = produce_counting(config, topic, warmup, n, rate, gateway)?;
    if produced.failed > 0 {
        bail!(
            "{} records were not delivered; first error: {}",
            produced.failed,
            produced.first_error.as_deref().unwrap_or_default()
        );
    }
    ensure!(
        produced.latencies.len() == n,
        "{} of {n} records acknowledged",
        produced.latencies.len()
    );
    Ok(produced)
}

/// [`produce`] without its checks: records whose delivery failed are counted in
/// [`Produced::failed`] (the run goes on), for benchmarks that report losses.
pub(super) fn produce_counting(
    config: &ClientConfig,
    topic: &str,
    warmup: usize,
    n: usize,
    rate: Option<f64>,
    gateway: Option<&Gateway>,
) -> anyhow::Result<Produced> {
    let producer: BaseProducer<Deliveries> = config
        .clone()
        .set("acks", "all")
        .set("linger.ms", LINGER_MS.to_string())
        .set("compression.type", "none")
        .set("queue.buffering.max.messages", QUEUE_MESSAGES.to_string())
        .set("message.timeout.ms", PHASE_TIMEOUT.as_millis().to_string())
        .create_with_context(Deliveries::default())
        .context("cannot create the producer")?;
    let mut payload = vec![0u8; RECORD_BYTES];
    rand::rng().fill_bytes(&mut payload);

    send(&producer, topic, &payload, 0..warmup, None)?;
    producer
        .flush(PHASE_TIMEOUT)
        .context("warm-up records not acknowledged in time")?;
    producer.context().take();

    let cpu_before = gateway.map(|g| g.child.cpu()).transpose()?;
    let held_before = gateway
        .map(|g| held::scrape(g.admin, "Produce"))
        .transpose()?;
    let sched_before = gateway.and_then(|g| g.child.sched());
    let own_before = own_cpu()?;
    let start = Instant::now();
    send(
        &producer,
        topic,
        &payload,
        warmup..warmup + n,
        rate.map(|r| (start, r)),
    )?;
    producer
        .flush(PHASE_TIMEOUT)
        .with_context(|| format!("records not acknowledged within {PHASE_TIMEOUT:?}"))?;
    let elapsed = start.elapsed();
    let own_cpu = own_cpu()?.saturating_sub(own_before);
    let gateway_cpu = match (gateway, cpu_before) {
        (Some(g), Some(before)) => g.child.cpu()?.saturating_sub(before),
        _ => Duration::ZERO,
    };
    let sched = gateway
        .and_then(|g| g.child.sched())
        .zip(sched_before)
        .map(|(now, then)| now.since(then));
    let held = match (gateway, held_before) {
        (Some(g), Some(before)) => Some(held::scrape(g.admin, "Produce")?.since(&before)),
        _ => None,
    };
    let latencies = producer.context().take();
    let failed = producer.context().failed.load(Ordering::Relaxed);
    let first_error = producer
        .context()
        .first_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Produced {
        messages: n,
        elapsed,
        latencies,
        gateway_cpu,
        own_cpu,
        failed,
        first_error,
        held,
        sched,
    })
}

/// Sends records `range` (their numbers make the keys); with `pace`, record `j` of the range
/// is not sent before `start + j / rate`.
fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    payload: &[u8],
    range: std::ops::Range<usize>,
    pace: Option<(Instant, f64)>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    for (j, i) in range.enumerate() {
        if let Some((start, rate)) = pace {
            let due = Duration::from_secs_f64(j as f64 / rate);
            loop {
                let now = start.elapsed();
                if now >= due {
                    break;
                }
                producer.poll(Duration::ZERO);
                std::thread::sleep((due - now).min(Duration::from_millis(1)));
            }
        }
        let key = format!("k{}", i % KEYS);
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(Instant::now()))
            .key(&key)
            .payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    ensure!(
                        Instant::now() < deadline,
                        "librdkafka's queue stayed full for {PHASE_TIMEOUT:?}"
                    );
                    producer.poll(Duration::from_millis(1));
                    record = back;
                    // Latency counts from when librdkafka accepts the record.
                    record.delivery_opaque = Box::new(Instant::now());
                }
                Err((e, _)) => return Err(e).context("cannot send a record"),
            }
        }
        if j % 64 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    Ok(())
}

/// One measured consume run.
struct Consumed {
    messages: usize,
    /// Sum over passes of the time from the pass's first record to its last.
    elapsed: Duration,
    /// Record bytes received after the first record of each pass.
    bytes_after_first: u64,
    gateway_cpu: Duration,
    /// CPU of this process (clients and the embedded cluster) meanwhile.
    own_cpu: Duration,
}

impl Consumed {
    fn mb_s(&self) -> f64 {
        self.bytes_after_first as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// CPU time of this process so far.
fn own_cpu() -> anyhow::Result<Duration> {
    process::cpu_time(std::process::id())
}

/// Reads `n` records of `topic`, from the beginning of every partition.
///
/// The embedded cluster keeps only the last 5 MiB of each partition (librdkafka's mock
/// cluster), so when more was produced the consumer reads what is kept, and again from the
/// beginning, until it has read `n` records.
fn consume(
    config: &ClientConfig,
    topic: &str,
    n: usize,
    gateway: Option<&Gateway>,
) -> anyhow::Result<Consumed> {
    let cpu_before = gateway.map(|g| g.child.cpu()).transpose()?;
    let own_before = own_cpu()?;
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "kgate-bench")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // A fetch left waiting at the end of a pass would delay the next pass by this much.
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("cannot create the consumer")?;
    let mut kept = 0usize;
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .with_context(|| format!("offsets of {topic}/{p}"))?;
        kept += usize::try_from(high - low).unwrap_or(0);
        // An explicit offset: a new pass starts fetching at once, with no offset lookup.
        assignment.add_partition_offset(topic, p, Offset::Offset(low))?;
    }
    ensure!(kept > 0, "{topic} holds no records");
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut count = 0;
    // Per pass, from its first record to its last: a new pass's start-up (assignment,
    // offset lookup, the first fetch) is not counted, as the first pass's is not.
    let mut active = Duration::ZERO;
    let mut bytes_after_first = 0u64;
    while count < n {
        consumer.assign(&assignment)?;
        let mut pass = 0;
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        while pass < kept && count < n {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    last = Instant::now();
                    if first.is_none() {
                        first = Some(last);
                    } else {
                        bytes_after_first += message.payload_len() as u64;
                    }
                    pass += 1;
                    count += 1;
                }
                Some(Err(e)) => return Err(e).context("consumer error"),
                None => {
                    ensure!(
                        Instant::now() < deadline,
                        "consumed {count} of {n} records within {PHASE_TIMEOUT:?}"
                    );
                }
            }
        }
        active += last.duration_since(first.unwrap_or(last));
    }
    let gateway_cpu = match (gateway, cpu_before) {
        (Some(g), Some(before)) => g.child.cpu()?.saturating_sub(before),
        _ => Duration::ZERO,
    };
    Ok(Consumed {
        messages: count,
        elapsed: active,
        bytes_after_first,
        gateway_cpu,
        own_cpu: own_cpu()?.saturating_sub(own_before),
    })
}

type Conn = KafkaConn<TlsStream<TcpStream>>;

/// Opens `count` authenticated connections, `DIAL_PARALLEL` handshakes at a time.
async fn open_many(dialer: &TlsDialer, count: usize) -> anyhow::Result<Vec<Conn>> {
    let slots = Arc::new(Semaphore::new(DIAL_PARALLEL));
    let mut tasks = JoinSet::new();
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        let slot = slots.clone().acquire_owned().await?;
        let dialer = dialer.clone();
        tasks.spawn(async move {
            let conn = dialer.connect_authenticated().await;
            drop(slot);
            conn
        });
        // Collect finished ones as we go, so that a failure stops the loop early.
        while let Some(done) = tasks.try_join_next() {
            conns.push(done??);
        }
    }
    while let Some(done) = tasks.join_next().await {
        conns.push(done??);
    }
    Ok(conns)
}

/// Samples the gateway's RSS until it stops moving (the gateway connects upstream after each
/// authentication, so the last connections settle a little after the clients see success).
async fn settled_rss(child: &Child, min_fds: usize) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut previous = child.rss_kib()?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = child.rss_kib()?;
        let stable = now.abs_diff(previous) * 200 <= previous; // within 0.5 %
        if (stable && child.open_fds()? >= min_fds) || Instant::now() > deadline {
            return Ok(now);
        }
        previous = now;
    }
}

fn idle_connections(setup: &Setup, count: usize) -> anyhow::Result<IdleConnections> {
    // Every connection comes from 127.0.0.1: raise the per-address cap (1,000 by default)
    // to fit them all.
    let per_ip = (count + WARM_CONNECTIONS + 16).to_string();
    let args: Vec<OsString> = vec![
        "--policy".into(),
        setup.policy()?.into(),
        "--max-connections-per-ip".into(),
        per_ip.into(),
    ];
    let gateway = setup.spawn_gateway(Route::TlsScram, "kgate-idle", &args, "warn")?;
    let dialer = TlsDialer::new(
        gateway.bootstrap,
        &setup.path("ca.pem"),
        ScramClient::new(Mechanism::ScramSha512, USER, &setup.password),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let child = &gateway.child;
    let result = runtime.block_on(async {
        tokio::time::timeout(PHASE_TIMEOUT, async {
            let mut conns = open_many(&dialer, WARM_CONNECTIONS)
                .await
                .context("warm-up connections")?;
            let fds_warm = child.open_fds()?;
            let rss_before = settled_rss(child, fds_warm).await?;
            let fds_before = child.open_fds()?;
            let start = Instant::now();
            conns.extend(
                open_many(&dialer, count)
                    .await
                    .context("idle connections")?,
            );
            let open_s = start.elapsed().as_secs_f64();
            let rss_after = settled_rss(child, fds_before + 2 * count).await?;
            let fds_after = child.open_fds()?;
            // Every connection is still authenticated and served.
            let mut alive = 0;
            for conn in conns.iter_mut().skip(WARM_CONNECTIONS) {
                if conn.api_versions().await.is_ok() {
                    alive += 1;
                }
            }
            anyhow::Ok(IdleConnections {
                count,
                open_s,
                rss_before_kib: rss_before,
                rss_after_kib: rss_after,
                kib_per_connection: (rss_after as f64 - rss_before as f64) / count as f64,
                fds_added: fds_after as i64 - fds_before as i64,
                alive_after: alive,
            })
        })
        .await
        .with_context(|| format!("idle connections not done within {PHASE_TIMEOUT:?}"))?
    });
    let result = result.with_context(|| format!("gateway log:\n{}", gateway.child.log_tail()));
    gateway.child.check_alive()?;
    result
}

/// Which peak figures of a path a table shows (free-running or pinned).
type FiguresOf = fn(&PathReport) -> Option<&PeakFigures>;

fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(
        out,
        "kgate bench gateway: {} build, {} CPUs, embedded {}-broker cluster, topics of {} partitions",
        r.build, r.cpus, c.brokers, c.partitions
    );
    let _ = writeln!(
        out,
        "{} records of {} B per path and peak round (+{} warm-up), acks={}, linger.ms={}; kgate runs as a child \
         process; TLS+SCRAM with a {}-binding policy",
        c.messages, c.record_bytes, c.warmup_messages, c.acks, c.linger_ms, c.policy_bindings
    );
    let _ = writeln!(
        out,
        "{} rounds, the paths taking turns; the consumer reads {}x what was produced; every figure is the \
         median (min–max) over the rounds\n",
        c.rounds, c.consume_factor
    );
    let rows = [
        (Route::Direct, &r.paths.direct),
        (Route::Plaintext, &r.paths.plaintext),
        (Route::TlsScram, &r.paths.tls_scram),
    ];
    let modes: [(&str, FiguresOf); 2] = [
        ("Peak, free-running", |p| Some(&p.free)),
        (
            "Peak, pinned: kgate on the last CPU, clients and cluster on the others",
            |p| p.pinned.as_ref(),
        ),
    ];
    for (title, figures) in modes {
        if figures(rows[0].1).is_none() {
            continue;
        }
        let _ = writeln!(out, "{title}");
        let _ = writeln!(
            out,
            "  {:<16} {:>20} {:>18} {:>20} {:>18} {:>20} {:>20}",
            "path",
            "produce MB/s",
            "×direct",
            "consume MB/s",
            "×direct",
            "kgate s/GB produce",
            "kgate s/GB consume"
        );
        for (route, p) in rows {
            let Some(f) = figures(p) else { continue };
            let cost = |s: &Option<Spread>| s.map_or_else(|| "-".into(), |s| s.show(3));
            let _ = writeln!(
                out,
                "  {:<16} {:>20} {:>18} {:>20} {:>18} {:>20} {:>20}",
                route.label(),
                f.produce_mb_s.show(1),
                f.produce_ratio.show(2),
                f.consume_mb_s.show(1),
                f.consume_ratio.show(2),
                cost(&f.gateway_produce_cpu_s_per_gb),
                cost(&f.gateway_consume_cpu_s_per_gb),
            );
        }
        let own: Vec<String> = rows
            .iter()
            .filter_map(|(route, p)| {
                figures(p).map(|f| {
                    format!(
                        "{} {}",
                        route.key(),
                        f.clients_and_cluster_cpu_s_per_gb.show(2)
                    )
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "  clients + embedded cluster (the benchmark process), CPU s per GB moved: {}",
            own.join(", ")
        );
        let _ = writeln!(
            out,
            "  kgate CPU targets: ≤ {TARGET_CPU_PLAINTEXT} s/GB plaintext, ≤ {TARGET_CPU_TLS} s/GB TLS (each way)\n"
        );
    }
    let cv = &r.curve;
    let _ = writeln!(
        out,
        "Send→ack latency, ms, at fixed offered loads (100 % = {:.0} records/s = {:.1} MB/s, the median peak of {})",
        cv.peak_rate,
        cv.peak_rate * RECORD_BYTES as f64 / 1e6,
        cv.slowest
    );
    let _ = writeln!(
        out,
        "  {:>5} {:>16} {:>22} {:>22} {:>22} {:>22} {:>20} {:>20}",
        "load", "path", "p50", "p99", "added p50", "added p99", "kgate held p50", "kgate held p99"
    );
    for p in &cv.points {
        for route in Route::ALL {
            let l = p.of(route);
            let added = |s: &Option<Spread>| {
                s.map_or_else(
                    || "-".into(),
                    |s| format!("{:+.2} ({:+.2}–{:+.2})", s.median, s.min, s.max),
                )
            };
            let held = |s: &Option<Spread>| s.map_or_else(|| "-".into(), |s| s.show(3));
            let _ = writeln!(
                out,
                "  {:>4.0}% {:>16} {:>22} {:>22} {:>22} {:>22} {:>20} {:>20}",
                p.fraction * 100.0,
                route.label(),
                l.p50_ms.show(2),
                l.p99_ms.show(2),
                added(&l.added_p50_ms),
                added(&l.added_p99_ms),
                held(&l.held_p50_ms),
                held(&l.held_p99_ms),
            );
        }
    }
    let _ = writeln!(
        out,
        "  added = path − direct as the client sees it (the client's own TLS included); kgate held = \
         request read whole → sent upstream + answer read whole → written to the client, as the \
         gateway measured it (kgate_request_held_seconds)"
    );
    let _ = writeln!(
        out,
        "  targets at 50 %: TLS+SCRAM added p99 ≤ {TARGET_ADDED_P99_MS} ms, added p50 ≤ {TARGET_ADDED_P50_MS} ms"
    );
    let _ = writeln!(
        out,
        "  how long a produce request took to arrive at kgate (first bytes → last), ms, p50 / p99, and how \
         much of its threads' runnable time kgate waited for a CPU:"
    );
    for p in &cv.points {
        let arrival: Vec<String> = [Route::Plaintext, Route::TlsScram]
            .into_iter()
            .map(|route| {
                let l = p.of(route);
                let show = |s: &Option<Spread>| s.map_or_else(|| "-".into(), |s| s.show(3));
                format!(
                    "{} {} / {}, CPU wait {} %",
                    route.label(),
                    show(&l.receive_p50_ms),
                    show(&l.receive_p99_ms),
                    l.gateway_cpu_wait_percent
                        .map_or_else(|| "-".into(), |s| s.show(0))
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:>4.0}%  {}",
            p.fraction * 100.0,
            arrival.join(";  ")
        );
    }
    if let Some(chart) = &r.chart {
        let _ = writeln!(out, "  chart: {}", chart.display());
    }
    let _ = writeln!(
        out,
        "\nAt peak (free-running, every round's samples), p50 / p99 ms: {}",
        rows.iter()
            .map(|(route, p)| format!(
                "{} {:.2} / {:.2}",
                route.key(),
                p.peak_latency.p50_ms,
                p.peak_latency.p99_ms
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let i = &r.idle_connections;
    let _ = writeln!(
        out,
        "Idle connections: {} opened over TLS and authenticated with SCRAM-SHA-512 in {:.1} s; {} still served after",
        i.count, i.open_s, i.alive_after
    );
    let _ = writeln!(
        out,
        "  kgate RSS {:.1} MiB -> {:.1} MiB = {:.1} KiB per connection (kgate fds {:+}, client + upstream socket each)\n",
        i.rss_before_kib as f64 / 1024.0,
        i.rss_after_kib as f64 / 1024.0,
        i.kib_per_connection,
        i.fds_added
    );
    let _ = writeln!(out, "Targets (issues 2 and 15), on the medians");
    for t in &r.targets {
        let _ = writeln!(
            out,
            "  {:<44} {:>9.3} {:<4}  target {} {} {:<4}  {}",
            t.name,
            t.value,
            t.unit,
            if t.comparison == ">=" { "≥" } else { "≤" },
            t.limit,
            t.unit,
            t.verdict()
        );
    }
    if r.build == "debug" {
        let _ = writeln!(
            out,
            "\nNote: a debug build; the targets are for release builds (cargo run --release -- bench gateway)."
        );
    }
    let _ = writeln!(out, "\nTotal time {:.1} s", r.elapsed_s);
    out
}
