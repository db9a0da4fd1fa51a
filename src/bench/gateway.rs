//! `kgate bench gateway`: what the gateway costs, measured with real clients.
//!
//! One run, against the embedded 3-broker cluster (in this process), with librdkafka
//! producing 1 KiB records (acks=all) and a consumer reading them back:
//!
//! 1. **Peak**, for each path: direct to the cluster (the baseline); through a kgate child
//!    process in plaintext passthrough (no TLS, no SASL); through a kgate child with TLS and
//!    SCRAM-SHA-512. Produce as fast as librdkafka goes, then consume everything back.
//!    Figures: MB/s each way (10^6 bytes of record values per second), the ratio to direct,
//!    send→ack latency, and the gateway's CPU time (utime + stime from `/proc/<pid>/stat`)
//!    per GB of records it forwarded (produced + consumed).
//! 2. **Half load**, for each path: produce at half of the direct path's peak rate, paced,
//!    and take send→ack latency; the p99 kgate adds is p99(TLS+SCRAM) − p99(direct).
//! 3. **Idle connections**: a fresh TLS gateway child; open N TLS connections and
//!    authenticate each with SCRAM-SHA-512 (ApiVersions, SaslHandshake v1, SaslAuthenticate
//!    v1); the gateway's VmRSS growth divided by N is the memory per idle authenticated
//!    connection (each also holds the gateway's upstream connection, as in production).
//!
//! Each phase warms its clients up first (connections, metadata, TLS, SASL) so that only the
//! steady state is measured. Every child process is killed when the benchmark ends, however
//! it ends.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use kgate_auth::{CredentialStore, Mechanism};
use kgate_labs::EmbeddedCluster;
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

use super::process::{self, Child};
use super::stats::{Latency, Target};
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
/// Rounds of the peak and half-load phases. Throughput is the best round's; latency at half
/// load pools every round's samples.
const ROUNDS: usize = 2;
/// The consumer reads this many times what was produced (re-reading from the beginning), so
/// that its measurement lasts long enough to be steady: it is several times faster than the
/// producer.
const CONSUME_FACTOR: usize = 3;
/// Upper bound of any single produce, consume or connection phase.
pub(super) const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Issue 2's targets.
const TARGET_THROUGHPUT_RATIO: f64 = 0.90;
const TARGET_ADDED_P99_MS: f64 = 1.0;
const TARGET_KIB_PER_CONNECTION: f64 = 64.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records produced (and consumed) per path and phase.
    pub messages: usize,
    /// Idle authenticated connections for the memory figure.
    pub connections: usize,
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
    /// The half-load phase.
    pub half_load: HalfLoad,
    /// The idle-connection phase.
    pub idle_connections: IdleConnections,
    /// Issue 2's targets, checked.
    pub targets: Vec<Target>,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
}

/// The run's settings.
#[derive(Debug, Serialize)]
pub struct Config {
    /// Records per path and phase.
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
    /// Through kgate with TLS and SCRAM-SHA-512.
    pub tls_scram: PathReport,
}

/// Figures of one path.
#[derive(Debug, Serialize)]
pub struct PathReport {
    /// Produce throughput at peak, MB/s (10^6 bytes of record values per second).
    pub produce_mb_s: f64,
    /// `produce_mb_s` / direct's.
    pub produce_ratio: f64,
    /// Consume throughput, MB/s, from the first record received to the last.
    pub consume_mb_s: f64,
    /// `consume_mb_s` / direct's.
    pub consume_ratio: f64,
    /// Send→ack latency while producing at peak (queueing included).
    pub peak_latency: Latency,
    /// Send→ack latency at half of direct's peak rate.
    pub half_load_latency: Latency,
    /// The rate actually reached in the half-load phase, records/s.
    pub half_load_rate: f64,
    /// CPU seconds of the benchmark process (librdkafka clients and the embedded cluster)
    /// per 10^9 record bytes moved in the peak phase: with the gateway's, where the cores went.
    pub clients_and_cluster_cpu_s_per_gb: f64,
    /// The gateway's own costs; `None` for the direct path.
    pub gateway: Option<GatewayCost>,
}

/// What the gateway child used in the peak phase.
#[derive(Debug, Serialize)]
pub struct GatewayCost {
    /// CPU seconds (user + system) while producing.
    pub cpu_s_produce: f64,
    /// CPU seconds while consuming.
    pub cpu_s_consume: f64,
    /// Record bytes forwarded (produced + consumed).
    pub bytes_forwarded: u64,
    /// CPU seconds per 10^9 record bytes forwarded.
    pub cpu_s_per_gb: f64,
    /// Resident memory after the phase, KiB.
    pub rss_kib: u64,
}

/// The half-load phase.
#[derive(Debug, Serialize)]
pub struct HalfLoad {
    /// The paced rate: half of direct's peak produce rate, records/s.
    pub rate: f64,
    /// p99(kgate TLS+SCRAM) − p99(direct), ms.
    pub added_p99_ms: f64,
    /// p99(kgate plaintext) − p99(direct), ms.
    pub added_p99_ms_plaintext: f64,
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
    fn gateway(&self, route: Route, name: &str) -> anyhow::Result<Gateway> {
        self.gateway_with(route, name, &[], "warn")
    }

    /// [`Setup::gateway`] with more `kgate proxy` arguments and the child's `KGATE_LOG`.
    pub(super) fn gateway_with(
        &self,
        route: Route,
        name: &str,
        extra: &[OsString],
        log_level: &str,
    ) -> anyhow::Result<Gateway> {
        let port = process::free_port_block(BROKERS as u16 + 2)?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut args: Vec<OsString> = vec![
            "proxy".into(),
            "--upstream".into(),
            self.cluster.bootstrap_servers().into(),
            "--listen".into(),
            listen.to_string().into(),
            "--broker-port-base".into(),
            (port + 1).to_string().into(),
            // The bench measures forwarding; authorization's cost is `kgate bench authz`.
            "--allow-all-authenticated".into(),
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
        let child = Child::spawn(name, &args, &self.path(&format!("{name}.log")), log_level)?;
        let mut addrs = vec![listen];
        addrs.extend(
            (1..=BROKERS).map(|n| SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1 + n as u16))),
        );
        child.wait_listening(&addrs, Duration::from_secs(30))?;
        Ok(Gateway {
            child,
            bootstrap: listen,
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
    ensure!(options.connections >= 1, "--connections must be at least 1");
    let started = Instant::now();
    // Each idle connection costs a descriptor in this process (client side) and one in the
    // embedded cluster (upstream side); the gateway child, which inherits the limit, holds
    // both ends too.
    let total = options.connections + WARM_CONNECTIONS;
    let needed = 2 * total as u64 + 1024;
    process::raise_open_files(needed, &format!("--connections {}", options.connections))?;
    let warmup = (options.messages / 10).clamp(50, 1000);

    progress("starting the embedded cluster and two gateway children");
    let setup = Setup::new()?;
    let plain = setup.gateway(Route::Plaintext, "kgate-plaintext")?;
    let tls = setup.gateway(Route::TlsScram, "kgate-tls")?;
    let gateway_of = |route: Route| match route {
        Route::Direct => None,
        Route::Plaintext => Some(&plain),
        Route::TlsScram => Some(&tls),
    };

    // Phase 1: peak throughput; the paths take turns, round after round, so that a burst of
    // load from elsewhere on the machine hits one round of one path, not a whole path.
    let mut peaks: [Vec<Peak>; 3] = Default::default();
    for round in 1..=ROUNDS {
        for (i, route) in Route::ALL.into_iter().enumerate() {
            let gateway = gateway_of(route);
            let config = setup.client(route, gateway)?;
            let topic = setup.topic(&format!("bench-peak-{}-{round}", route.key()))?;
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
            progress(&format!(
                "round {round}/{ROUNDS} peak, {:<15}: produce {:7.1} MB/s (p99 {:.1} ms), consume {:7.1} MB/s",
                route.label(),
                produced.mb_s(),
                Latency::of(produced.latencies.clone()).p99_ms,
                consumed.mb_s()
            ));
            peaks[i].push(Peak { produced, consumed });
        }
    }
    let best = |runs: &[Peak], f: fn(&Peak) -> f64| runs.iter().map(f).fold(0.0, f64::max);
    let direct_rate = peaks[0]
        .iter()
        .map(|p| p.produced.rate())
        .fold(0.0, f64::max);

    // Phase 2: latency at half of direct's peak rate, the paths taking turns again.
    let half_rate = direct_rate / 2.0;
    let mut halves: [Vec<Produced>; 3] = Default::default();
    for round in 1..=ROUNDS {
        for (i, route) in Route::ALL.into_iter().enumerate() {
            let gateway = gateway_of(route);
            let config = setup.client(route, gateway)?;
            let topic = setup.topic(&format!("bench-half-{}-{round}", route.key()))?;
            let run = produce(
                &config,
                &topic,
                warmup,
                options.messages,
                Some(half_rate),
                gateway,
            )?;
            let latency = Latency::of(run.latencies.clone());
            progress(&format!(
                "round {round}/{ROUNDS} half load ({half_rate:.0}/s), {:<15}: p50 {:.2} ms, p99 {:.2} ms",
                route.label(),
                latency.p50_ms,
                latency.p99_ms
            ));
            halves[i].push(run);
        }
    }
    let rss: Vec<Option<u64>> = Route::ALL
        .into_iter()
        .map(|r| gateway_of(r).map(|g| g.child.rss_kib()).transpose())
        .collect::<anyhow::Result<_>>()?;
    drop(plain);
    drop(tls);

    // Phase 3: memory per idle authenticated connection, on a fresh gateway.
    progress(&format!(
        "opening {} idle TLS connections authenticated with SCRAM-SHA-512",
        options.connections
    ));
    let idle = idle_connections(&setup, options.connections)?;

    let direct_produce = best(&peaks[0], |p| p.produced.mb_s());
    let direct_consume = best(&peaks[0], |p| p.consumed.mb_s());
    let mut reports = Vec::new();
    for ((runs, half), rss) in peaks.into_iter().zip(halves).zip(rss) {
        let produce_mb_s = best(&runs, |p| p.produced.mb_s());
        let consume_mb_s = best(&runs, |p| p.consumed.mb_s());
        // Record bytes that crossed the path (and the gateway, if any): produced + consumed.
        let moved: u64 = runs
            .iter()
            .map(|p| (p.produced.messages + p.consumed.messages) as u64 * RECORD_BYTES as u64)
            .sum();
        let gateway = rss.map(|rss_kib| {
            let cpu_s_produce: f64 = runs
                .iter()
                .map(|p| p.produced.gateway_cpu.as_secs_f64())
                .sum();
            let cpu_s_consume: f64 = runs
                .iter()
                .map(|p| p.consumed.gateway_cpu.as_secs_f64())
                .sum();
            GatewayCost {
                cpu_s_produce,
                cpu_s_consume,
                bytes_forwarded: moved,
                cpu_s_per_gb: (cpu_s_produce + cpu_s_consume) / (moved as f64 / 1e9),
                rss_kib,
            }
        });
        let own: f64 = runs
            .iter()
            .map(|p| (p.produced.own_cpu + p.consumed.own_cpu).as_secs_f64())
            .sum();
        let clients_and_cluster_cpu_s_per_gb = own / (moved as f64 / 1e9);
        // Latency at peak from the fastest round; at half load, every round's samples.
        let fastest = runs
            .into_iter()
            .max_by(|a, b| a.produced.mb_s().total_cmp(&b.produced.mb_s()))
            .context("no peak round")?;
        let half_load_rate =
            half.iter().map(Produced::rate).sum::<f64>() / half.len().max(1) as f64;
        let half_samples: Vec<Duration> = half.into_iter().flat_map(|h| h.latencies).collect();
        reports.push(PathReport {
            produce_mb_s,
            produce_ratio: produce_mb_s / direct_produce,
            consume_mb_s,
            consume_ratio: consume_mb_s / direct_consume,
            peak_latency: Latency::of(fastest.produced.latencies),
            half_load_latency: Latency::of(half_samples),
            half_load_rate,
            clients_and_cluster_cpu_s_per_gb,
            gateway,
        });
    }
    let mut reports = reports.into_iter();
    let mut next = || reports.next().context("missing path");
    let paths = Paths {
        direct: next()?,
        plaintext: next()?,
        tls_scram: next()?,
    };
    let half_load = HalfLoad {
        rate: half_rate,
        added_p99_ms: paths.tls_scram.half_load_latency.p99_ms
            - paths.direct.half_load_latency.p99_ms,
        added_p99_ms_plaintext: paths.plaintext.half_load_latency.p99_ms
            - paths.direct.half_load_latency.p99_ms,
    };
    let targets = vec![
        Target::at_least(
            "TLS+SCRAM produce throughput / direct",
            paths.tls_scram.produce_ratio,
            TARGET_THROUGHPUT_RATIO,
            "x",
        ),
        Target::at_least(
            "TLS+SCRAM consume throughput / direct",
            paths.tls_scram.consume_ratio,
            TARGET_THROUGHPUT_RATIO,
            "x",
        ),
        Target::at_most(
            "p99 latency added at half of peak load",
            half_load.added_p99_ms,
            TARGET_ADDED_P99_MS,
            "ms",
        ),
        Target::at_most(
            "memory per idle authenticated connection",
            idle.kib_per_connection,
            TARGET_KIB_PER_CONNECTION,
            "KiB",
        ),
    ];
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
            rounds: ROUNDS,
            consume_factor: CONSUME_FACTOR,
            connections: idle.count,
        },
        paths,
        half_load,
        idle_connections: idle,
        targets,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
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
    let gateway = setup.gateway(Route::TlsScram, "kgate-idle")?;
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
        "{} records of {} B per path and round (+{} warm-up), acks={}, linger.ms={}; kgate runs as a child process",
        c.messages, c.record_bytes, c.warmup_messages, c.acks, c.linger_ms
    );
    let _ = writeln!(
        out,
        "{} rounds, the paths taking turns; the consumer reads {}x what was produced; throughput and latency \
         at peak from each path's best round, latency at half load over every round\n",
        c.rounds, c.consume_factor
    );
    let _ = writeln!(
        out,
        "{:<17} {:>17} {:>17} {:>33} {:>10}",
        "", "produce", "consume", "produce latency, ms (p50 / p99)", "kgate CPU"
    );
    let _ = writeln!(
        out,
        "{:<17} {:>8} {:>8} {:>8} {:>8} {:>16} {:>16} {:>10}",
        "path", "MB/s", "×direct", "MB/s", "×direct", "at peak", "at half load", "s per GB"
    );
    let rows = [
        (Route::Direct, &r.paths.direct),
        (Route::Plaintext, &r.paths.plaintext),
        (Route::TlsScram, &r.paths.tls_scram),
    ];
    for (route, p) in rows {
        let cpu = p
            .gateway
            .as_ref()
            .map_or_else(|| "-".to_string(), |g| format!("{:.2}", g.cpu_s_per_gb));
        let _ = writeln!(
            out,
            "{:<17} {:>8.1} {:>8.2} {:>8.1} {:>8.2} {:>16} {:>16} {:>10}",
            route.label(),
            p.produce_mb_s,
            p.produce_ratio,
            p.consume_mb_s,
            p.consume_ratio,
            format!(
                "{:.2} / {:.2}",
                p.peak_latency.p50_ms, p.peak_latency.p99_ms
            ),
            format!(
                "{:.2} / {:.2}",
                p.half_load_latency.p50_ms, p.half_load_latency.p99_ms
            ),
            cpu
        );
    }
    let _ = writeln!(
        out,
        "(MB = 10^6 bytes of record values; CPU per GB of records forwarded, produced + consumed)"
    );
    let _ = writeln!(
        out,
        "CPU of the clients + embedded cluster (the benchmark process), s per GB: direct {:.2}, plaintext {:.2}, TLS+SCRAM {:.2}\n",
        r.paths.direct.clients_and_cluster_cpu_s_per_gb,
        r.paths.plaintext.clients_and_cluster_cpu_s_per_gb,
        r.paths.tls_scram.clients_and_cluster_cpu_s_per_gb
    );
    let _ = writeln!(
        out,
        "Half load: {:.0} records/s paced (half of direct's peak); p99 added by kgate TLS+SCRAM: {:+.2} ms (plaintext: {:+.2} ms)",
        r.half_load.rate, r.half_load.added_p99_ms, r.half_load.added_p99_ms_plaintext
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
    let _ = writeln!(out, "Targets (issue 2)");
    for t in &r.targets {
        let _ = writeln!(
            out,
            "  {:<44} {:>9.2} {:<3}  target {} {} {:<3}  {}",
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
