//! `kgate bench hostile`: a real producer's throughput and kgate's memory and log while
//! clients that never log in attack the gateway.
//!
//! One `kgate proxy` child (TLS, SCRAM-SHA-512, `--allow-all-authenticated`, kgate's default
//! log level `info`) in front of the embedded 3-broker cluster. Every client runs on
//! 127.0.0.1, so `max_connections_per_ip` is raised to fit the whole attack (with the default
//! 1,000 the attack's own connections would be refused at accept, which is the defence for a
//! single address but not what this benchmark measures). Each round:
//!
//! 0. Once, before the first round: an unmeasured producer run that warms kgate and the cluster.
//! 1. **Baseline**: a librdkafka producer (1 KiB records, acks=all) sends N records after a
//!    warm-up; its throughput is measured.
//! 2. **Attack**: started, and the producer waits until it is in full swing: `--idle`
//!    connections that complete TLS and then send nothing (each reopened when kgate closes it
//!    at its authentication timeout), `--trickle` connections that send a real TLS
//!    ClientHello one byte a second (reopened when kgate closes them at its TLS handshake
//!    timeout), and `--wrong-logins-per-s` complete SCRAM-SHA-512 exchanges with a wrong
//!    password (the attacker's PBKDF2 is cached, so it costs kgate more than the attacker).
//!    A real user also logs in twice a second, timed. After `--hold-s` at full strength (by
//!    default past kgate's 10 s TLS handshake timeout, so trickling handshakes are being cut
//!    and reopened), the same producer run as the baseline; then the attack stops on its own.
//!
//! Figures: records lost (sent − what the cluster's high watermarks say was appended, and
//! failed deliveries), the producer's throughput under attack / baseline, kgate's RSS
//! (sampled from `/proc` every 100 ms) and how many bytes its log grew during the attack.
//! The attack and the clients run in this process, with the embedded cluster: on a small
//! machine their CPU is taken from the producer too, so the ratio is a figure of the
//! machine as well as of kgate.

use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use kgate_auth::Mechanism;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::gateway::{
    produce_counting, Gateway, Produced, Route, Setup, LINGER_MS, PARTITIONS, RECORD_BYTES, USER,
};
use super::process;
use super::stats::{Latency, Spread, Target};
use super::wire::{SaslRefused, ScramClient, TlsDialer};

/// Issue 12's targets.
const TARGET_THROUGHPUT_RATIO: f64 = 0.8;
const TARGET_LOG_BYTES: f64 = 1024.0 * 1024.0;
/// Kafka's SASL_AUTHENTICATION_FAILED: what a wrong password must get.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// TLS handshakes of idle connections in progress at once while the attack ramps up.
const DIAL_PARALLEL: usize = 32;
/// Longest wait for the attack to be in full swing.
const RAMP_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound of one attacker connection attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of stopping every attacker task.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// After the attack stops, how long kgate gets to log the closes before the log is measured.
const SETTLE: Duration = Duration::from_secs(1);
/// How often kgate's RSS is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often a real user logs in during the attack.
const LEGIT_LOGIN_EVERY: Duration = Duration::from_millis(500);
/// Records of the unmeasured run before the first round (at most).
const WARMUP_RUN_RECORDS: usize = 20_000;
/// A failed login's connection is held up to 5 s by kgate (its backoff); room for that.
const FAILED_LOGIN_HOLD_S: usize = 10;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records produced per phase (baseline, attack) and round.
    pub records: usize,
    /// Rounds (baseline + attack each).
    pub rounds: usize,
    /// Idle TLS connections that never authenticate.
    pub idle: usize,
    /// TLS handshakes trickling one byte a second.
    pub trickle: usize,
    /// Wrong-password logins per second.
    pub wrong_logins_per_s: u32,
    /// Seconds the attack runs at full strength before the producer starts.
    pub hold_s: f64,
    /// Print one JSON document instead of the table.
    pub json: bool,
}

/// Runs the benchmark and prints its report.
///
/// # Errors
/// A client error, a gateway that does not start or dies (with the end of its log), an
/// attack that cannot ramp up, a timeout, or an open-files hard limit too low.
pub fn run(options: Options) -> anyhow::Result<()> {
    let report = measure(&options)?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Everything one run measured; serialized as the `--json` document.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always `"hostile"`.
    pub benchmark: &'static str,
    /// `"release"` or `"debug"`.
    pub build: &'static str,
    /// CPUs available to the process.
    pub cpus: usize,
    /// What was run.
    pub config: Config,
    /// Each round's figures.
    pub rounds: Vec<Round>,
    /// Median and spread over the rounds.
    pub summary: Summary,
    /// Issue 12's targets, checked (on the median ratio and the worst round otherwise).
    pub targets: Vec<Target>,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
}

/// The run's settings.
#[derive(Debug, Serialize)]
pub struct Config {
    /// Records per phase and round.
    pub records: usize,
    /// Records sent before measuring, per producer.
    pub warmup_records: usize,
    /// Size of each record value.
    pub record_bytes: usize,
    /// Producer `acks`.
    pub acks: &'static str,
    /// Rounds.
    pub rounds: usize,
    /// Idle TLS connections held open without authenticating.
    pub idle: usize,
    /// TLS handshakes trickling one byte a second.
    pub trickle: usize,
    /// Wrong-password SCRAM-SHA-512 logins started per second.
    pub wrong_logins_per_s: u32,
    /// Seconds at full strength before the producer started.
    pub hold_s: f64,
    /// kgate's `max_connections_per_ip` and `max_connections` (every client is on 127.0.0.1).
    pub max_connections_per_ip: usize,
    /// kgate's `KGATE_LOG` (its default).
    pub log_level: &'static str,
}

/// Over every round.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Producer throughput under attack / baseline.
    pub throughput_ratio: Spread,
    /// Baseline produce MB/s.
    pub baseline_mb_s: Spread,
    /// Produce MB/s under attack.
    pub attack_mb_s: Spread,
    /// Records lost in every phase of every round together.
    pub records_lost: u64,
    /// kgate's peak RSS during each attack, KiB.
    pub rss_peak_kib: Spread,
    /// kgate's log growth during each attack, bytes.
    pub log_growth_bytes: Spread,
    /// kgate's CPU seconds during each attack phase.
    pub kgate_cpu_s_attack: Spread,
}

/// One round.
#[derive(Debug, Serialize)]
pub struct Round {
    /// The producer alone.
    pub baseline: ProducerRun,
    /// The producer while the attack runs.
    pub attack: ProducerRun,
    /// attack MB/s / baseline MB/s.
    pub throughput_ratio: f64,
    /// What the attackers did and got.
    pub attackers: AttackStats,
    /// kgate's RSS just before the attack started, KiB.
    pub rss_before_kib: u64,
    /// kgate's largest sampled RSS from the attack's start to its end, KiB.
    pub rss_peak_kib: u64,
    /// kgate's RSS once the attack was over, KiB.
    pub rss_after_kib: u64,
    /// Bytes kgate's log grew by from the attack's start until a second after it stopped.
    pub log_growth_bytes: u64,
    /// Lines it grew by.
    pub log_lines: usize,
    /// kgate's CPU seconds from the attack's start to its end.
    pub kgate_cpu_s_attack: f64,
}

/// One measured producer run.
#[derive(Debug, Serialize)]
pub struct ProducerRun {
    /// Records sent in the measured part (after the warm-up).
    pub sent: usize,
    /// Records the cluster appended (warm-up included), from its high watermarks.
    pub appended: u64,
    /// Records sent (warm-up included) that the cluster does not have.
    pub lost: u64,
    /// Records appended more than once (librdkafka retries without idempotence).
    pub duplicated: u64,
    /// Deliveries librdkafka reported failed, and the first error.
    pub failed_deliveries: usize,
    /// The first failed delivery's error.
    pub first_error: Option<String>,
    /// MB/s (10^6 bytes of record values per second).
    pub mb_s: f64,
    /// Seconds from the first record to the last acknowledgement.
    pub elapsed_s: f64,
    /// Send→ack latency.
    pub latency: Latency,
    /// kgate's CPU seconds meanwhile.
    pub kgate_cpu_s: f64,
}

/// What the attack did and what it got back from kgate.
#[derive(Debug, Serialize)]
pub struct AttackStats {
    /// Seconds from the attack's start to its stop.
    pub seconds: f64,
    /// Seconds until every idle and trickling connection was open.
    pub ramp_s: f64,
    /// Idle connections open when the producer started.
    pub idle_open_at_produce: usize,
    /// Idle connections opened in all (including reopened ones).
    pub idle_opened: usize,
    /// Idle connections kgate closed (its authentication timeout).
    pub idle_closed_by_kgate: usize,
    /// Idle connection attempts that failed (refused, TLS error, timeout).
    pub idle_failed: usize,
    /// Trickling handshakes started.
    pub trickle_started: usize,
    /// Trickling handshakes kgate closed.
    pub trickle_closed_by_kgate: usize,
    /// Median seconds a trickling handshake lasted before kgate closed it (0 when none was).
    pub trickle_closed_after_s: f64,
    /// Wrong-password logins attempted.
    pub wrong_logins: usize,
    /// Of which refused with SASL_AUTHENTICATION_FAILED, as they must be.
    pub wrong_logins_refused: usize,
    /// Of which accepted (never, or the benchmark has found a hole).
    pub wrong_logins_accepted: usize,
    /// Of which ended another way (refused connection, timeout, i/o error), and the first.
    pub wrong_logins_other: usize,
    /// The first of those errors.
    pub wrong_login_first_other: Option<String>,
    /// Time from connect to the refusal.
    pub wrong_login_latency: Latency,
    /// Logins of the real user during the attack.
    pub legit_logins: usize,
    /// Of which failed.
    pub legit_login_failures: usize,
    /// Time from connect to authenticated, for the real user.
    pub legit_login_latency: Latency,
}

fn progress(message: &str) {
    eprintln!("bench hostile: {message}");
}

/// kgate's per-address and total connection caps for this attack.
fn connection_cap(options: &Options) -> usize {
    let failing = options.wrong_logins_per_s as usize * FAILED_LOGIN_HOLD_S;
    options.idle + options.trickle + failing + 256
}

fn measure(options: &Options) -> anyhow::Result<Report> {
    ensure!(
        options.records >= 100,
        "--records must be at least 100 (got {})",
        options.records
    );
    ensure!(options.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        (0.0..=600.0).contains(&options.hold_s),
        "--hold-s must be between 0 and 600"
    );
    ensure!(
        options.wrong_logins_per_s <= 10_000,
        "--wrong-logins-per-s must be at most 10000"
    );
    let started = Instant::now();
    let cap = connection_cap(options);
    // Client ends here, kgate's ends in the child (which inherits the limit), upstream ends
    // of the producer's connections in the embedded cluster here.
    process::raise_open_files(2 * cap as u64 + 1024, "the attack")?;
    let warmup = (options.records / 10).clamp(50, 1000);

    progress("starting the embedded cluster and a TLS + SCRAM-SHA-512 gateway child");
    let setup = Setup::new()?;
    // Both caps fit the attack (and kgate's open-files limit fits the cap).
    let extra: Vec<OsString> = vec![
        "--max-connections".into(),
        cap.to_string().into(),
        "--max-connections-per-ip".into(),
        cap.to_string().into(),
    ];
    let gateway = setup.gateway_with(Route::TlsScram, "kgate-hostile", &extra, "info")?;
    let client = setup.client(Route::TlsScram, Some(&gateway))?;
    let dialer = TlsDialer::new(
        gateway.bootstrap,
        &setup.path("ca.pem"),
        ScramClient::new(Mechanism::ScramSha512, USER, &setup.password),
    )?;
    let watermarks = Watermarks::new(setup.cluster.bootstrap_servers())?;

    // One unmeasured run first: the first round's baseline would otherwise also pay for a
    // cold gateway and cluster, and the ratio would lean towards the attack.
    let topic = setup.topic("hostile-warmup")?;
    produce_counting(
        &client,
        &topic,
        warmup,
        options.records.min(WARMUP_RUN_RECORDS),
        None,
        Some(&gateway),
    )?;

    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let topic = setup.topic(&format!("hostile-baseline-{round}"))?;
        let produced = produce_counting(
            &client,
            &topic,
            warmup,
            options.records,
            None,
            Some(&gateway),
        )?;
        let baseline = watermarks.run(&topic, warmup, produced)?;
        progress(&format!(
            "round {round}/{}: baseline {:.1} MB/s, {} lost",
            options.rounds, baseline.mb_s, baseline.lost
        ));
        gateway.child.check_alive()?;

        let topic = setup.topic(&format!("hostile-attack-{round}"))?;
        let (attack, round_report) =
            attacked_run(options, &gateway, &dialer, &client, &topic, warmup)?;
        let attack = watermarks.run(&topic, warmup, attack)?;
        gateway.child.check_alive()?;
        let ratio = attack.mb_s / baseline.mb_s.max(1e-9);
        progress(&format!(
            "round {round}/{}: under attack {:.1} MB/s ({ratio:.2} x), {} lost, kgate RSS peak {:.1} MiB, log +{} KiB",
            options.rounds,
            attack.mb_s,
            attack.lost,
            round_report.rss_peak_kib as f64 / 1024.0,
            round_report.log_growth_bytes / 1024
        ));
        rounds.push(Round {
            baseline,
            attack,
            throughput_ratio: ratio,
            ..round_report
        });
    }
    let spread = |f: fn(&Round) -> f64| Spread::of(rounds.iter().map(f).collect());
    let summary = Summary {
        throughput_ratio: spread(|r| r.throughput_ratio),
        baseline_mb_s: spread(|r| r.baseline.mb_s),
        attack_mb_s: spread(|r| r.attack.mb_s),
        records_lost: rounds.iter().map(|r| r.baseline.lost + r.attack.lost).sum(),
        rss_peak_kib: spread(|r| r.rss_peak_kib as f64),
        log_growth_bytes: spread(|r| r.log_growth_bytes as f64),
        kgate_cpu_s_attack: spread(|r| r.kgate_cpu_s_attack),
    };
    let failed: usize = rounds
        .iter()
        .map(|r| r.baseline.failed_deliveries + r.attack.failed_deliveries)
        .sum();
    let accepted: usize = rounds
        .iter()
        .map(|r| r.attackers.wrong_logins_accepted)
        .sum();
    let targets = vec![
        Target::at_most(
            "records lost (and failed deliveries)",
            (summary.records_lost + failed as u64) as f64,
            0.0,
            "",
        ),
        Target::at_least(
            "producer throughput under attack / alone",
            summary.throughput_ratio.median,
            TARGET_THROUGHPUT_RATIO,
            "x",
        ),
        Target::at_most(
            "kgate log growth during an attack (worst)",
            summary.log_growth_bytes.max / 1024.0,
            TARGET_LOG_BYTES / 1024.0,
            "KiB",
        ),
        Target::at_most("wrong-password logins accepted", accepted as f64, 0.0, ""),
    ];
    Ok(Report {
        benchmark: "hostile",
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        config: Config {
            records: options.records,
            warmup_records: warmup,
            record_bytes: RECORD_BYTES,
            acks: "all",
            rounds: options.rounds,
            idle: options.idle,
            trickle: options.trickle,
            wrong_logins_per_s: options.wrong_logins_per_s,
            hold_s: options.hold_s,
            max_connections_per_ip: cap,
            log_level: "info",
        },
        rounds,
        summary,
        targets,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// A client straight to the cluster that reads high watermarks.
struct Watermarks {
    consumer: BaseConsumer,
}

impl Watermarks {
    fn new(bootstrap: &str) -> anyhow::Result<Self> {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "kgate-bench-hostile")
            .create()
            .context("cannot create the watermark client")?;
        Ok(Self { consumer })
    }

    /// Records appended to `topic` (a fresh one): the sum of its partitions' high watermarks.
    fn appended(&self, topic: &str) -> anyhow::Result<u64> {
        let mut total = 0u64;
        for p in 0..PARTITIONS {
            let (_, high) = self
                .consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .with_context(|| format!("offsets of {topic}/{p}"))?;
            total += u64::try_from(high).unwrap_or(0);
        }
        Ok(total)
    }

    /// A producer run's figures, its losses counted from the cluster.
    fn run(&self, topic: &str, warmup: usize, p: Produced) -> anyhow::Result<ProducerRun> {
        let appended = self.appended(topic)?;
        let sent = (warmup + p.messages) as u64;
        Ok(ProducerRun {
            sent: p.messages,
            appended,
            lost: sent.saturating_sub(appended),
            duplicated: appended.saturating_sub(sent),
            failed_deliveries: p.failed,
            first_error: p.first_error.clone(),
            mb_s: p.mb_s(),
            elapsed_s: p.elapsed.as_secs_f64(),
            latency: Latency::of(p.latencies.clone()),
            kgate_cpu_s: p.gateway_cpu.as_secs_f64(),
        })
    }
}

/// Counters the attacker tasks share.
#[derive(Default)]
struct Counters {
    idle_open: AtomicUsize,
    idle_opened: AtomicUsize,
    idle_closed: AtomicUsize,
    idle_failed: AtomicUsize,
    trickle_open: AtomicUsize,
    trickle_started: AtomicUsize,
    trickle_closed: AtomicUsize,
    trickle_lifetimes: Mutex<Vec<Duration>>,
    wrong: AtomicUsize,
    wrong_refused: AtomicUsize,
    wrong_accepted: AtomicUsize,
    wrong_other: AtomicUsize,
    wrong_first_other: Mutex<Option<String>>,
    wrong_latencies: Mutex<Vec<Duration>>,
    legit: AtomicUsize,
    legit_failed: AtomicUsize,
    legit_latencies: Mutex<Vec<Duration>>,
}

fn push(list: &Mutex<Vec<Duration>>, d: Duration) {
    list.lock().unwrap_or_else(PoisonError::into_inner).push(d);
}

fn take(list: &Mutex<Vec<Duration>>) -> Vec<Duration> {
    std::mem::take(&mut *list.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Resolves once the attack is told to stop.
async fn stopped(stop: &watch::Receiver<bool>) {
    let mut stop = stop.clone();
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps `d`; false when the attack was told to stop meanwhile.
async fn pause(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = stopped(stop) => false,
    }
}

/// One idle connection, reopened whenever kgate closes it: TLS, then nothing.
async fn idle_slot(
    dialer: TlsDialer,
    dial: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    c: Arc<Counters>,
) {
    loop {
        let attempt = async {
            let _slot = dial.acquire().await?;
            tokio::time::timeout(ATTEMPT_TIMEOUT, dialer.connect_tls())
                .await
                .context("timed out")?
        };
        let conn = tokio::select! {
            conn = attempt => conn,
            () = stopped(&stop) => return,
        };
        match conn {
            Ok(mut conn) => {
                c.idle_opened.fetch_add(1, Ordering::Relaxed);
                c.idle_open.fetch_add(1, Ordering::Relaxed);
                let closed = tokio::select! {
                    () = conn.closed_by_server() => true,
                    () = stopped(&stop) => false,
                };
                c.idle_open.fetch_sub(1, Ordering::Relaxed);
                if !closed {
                    return;
                }
                c.idle_closed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                c.idle_failed.fetch_add(1, Ordering::Relaxed);
                if !pause(Duration::from_millis(100), &stop).await {
                    return;
                }
            }
        }
    }
}

/// One TLS handshake that sends its ClientHello a byte a second, reopened whenever kgate
/// closes it.
async fn trickle_slot(
    addr: std::net::SocketAddr,
    hello: Arc<Vec<u8>>,
    first_delay: Duration,
    stop: watch::Receiver<bool>,
    c: Arc<Counters>,
) {
    if !pause(first_delay, &stop).await {
        return;
    }
    loop {
        let connect = tokio::time::timeout(ATTEMPT_TIMEOUT, TcpStream::connect(addr));
        let stream = tokio::select! {
            s = connect => s,
            () = stopped(&stop) => return,
        };
        let Ok(Ok(mut stream)) = stream else {
            if !pause(Duration::from_secs(1), &stop).await {
                return;
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        c.trickle_started.fetch_add(1, Ordering::Relaxed);
        c.trickle_open.fetch_add(1, Ordering::Relaxed);
        let opened = Instant::now();
        let (mut rd, mut wr) = stream.split();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut sent = 0usize;
        let mut buf = [0u8; 64];
        let closed = loop {
            tokio::select! {
                () = stopped(&stop) => break false,
                // kgate answers nothing before the ClientHello is complete: anything read
                // is its close.
                _ = rd.read(&mut buf) => break true,
                _ = tick.tick() => {
                    if let Some(byte) = hello.get(sent..=sent) {
                        if wr.write_all(byte).await.is_err() {
                            break true;
                        }
                        sent += 1;
                    }
                }
            }
        };
        c.trickle_open.fetch_sub(1, Ordering::Relaxed);
        if !closed {
            return;
        }
        c.trickle_closed.fetch_add(1, Ordering::Relaxed);
        push(&c.trickle_lifetimes, opened.elapsed());
    }
}

/// One wrong-password login: TLS, ApiVersions, SaslHandshake, client-first, client-final.
async fn wrong_login(wrong: TlsDialer, c: Arc<Counters>) {
    c.wrong.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, wrong.connect_authenticated()).await;
    match outcome {
        Ok(Ok(_conn)) => {
            c.wrong_accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e))
            if e.downcast_ref::<SaslRefused>().map(|r| r.error_code)
                == Some(SASL_AUTHENTICATION_FAILED) =>
        {
            c.wrong_refused.fetch_add(1, Ordering::Relaxed);
            push(&c.wrong_latencies, start.elapsed());
        }
        other => {
            c.wrong_other.fetch_add(1, Ordering::Relaxed);
            let why = match other {
                Ok(Err(e)) => format!("{e:#}"),
                _ => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
            };
            c.wrong_first_other
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(why);
        }
    }
}

/// Starts `rate` wrong logins a second until the attack stops.
async fn wrong_logins(rate: u32, wrong: TlsDialer, stop: watch::Receiver<bool>, c: Arc<Counters>) {
    if rate == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&stop) => break,
            _ = tick.tick() => {
                running.spawn(wrong_login(wrong.clone(), c.clone()));
            }
        }
        while running.try_join_next().is_some() {}
    }
    // Logins still in flight are abandoned, as an attacker would.
    running.abort_all();
}

/// A real user logging in every `LEGIT_LOGIN_EVERY`, timed.
async fn legit_logins(dialer: TlsDialer, stop: watch::Receiver<bool>, c: Arc<Counters>) {
    loop {
        let start = Instant::now();
        let login = tokio::time::timeout(ATTEMPT_TIMEOUT, dialer.connect_authenticated());
        let outcome = tokio::select! {
            o = login => o,
            () = stopped(&stop) => return,
        };
        c.legit.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(Ok(_conn)) => push(&c.legit_latencies, start.elapsed()),
            _ => {
                c.legit_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !pause(LEGIT_LOGIN_EVERY, &stop).await {
            return;
        }
    }
}

/// Samples `child`'s RSS until told to stop; returns the largest sample.
fn sample_rss(child: &process::Child, stop: &std::sync::atomic::AtomicBool) -> u64 {
    let mut peak = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(kib) = child.rss_kib() {
            peak = peak.max(kib);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    peak
}

/// Starts the attack, runs the producer once it is in full swing, stops the attack.
fn attacked_run(
    options: &Options,
    gateway: &Gateway,
    dialer: &TlsDialer,
    client: &ClientConfig,
    topic: &str,
    warmup: usize,
) -> anyhow::Result<(Produced, Round)> {
    let child = &gateway.child;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop) = watch::channel(false);
    let wrong = dialer.with_scram(ScramClient::new(
        Mechanism::ScramSha512,
        USER,
        "not-the-password",
    ));
    let hello = Arc::new(dialer.client_hello()?);

    let rss_before = child.rss_kib()?;
    let log_before = child.log_bytes();
    let log_lines_before = child.log_text().lines().count();
    let cpu_before = child.cpu()?;
    let sampling = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let result = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample_rss(child, &sampling));
        let outcome = runtime.block_on(async {
            let mut tasks = JoinSet::new();
            let dial = Arc::new(Semaphore::new(DIAL_PARALLEL));
            for _ in 0..options.idle {
                tasks.spawn(idle_slot(
                    dialer.clone(),
                    dial.clone(),
                    stop.clone(),
                    counters.clone(),
                ));
            }
            // Spread the trickles over a second so their bytes are too.
            for i in 0..options.trickle {
                let delay = Duration::from_secs(1).mul_f64(i as f64 / options.trickle as f64);
                tasks.spawn(trickle_slot(
                    dialer.addr(),
                    hello.clone(),
                    delay,
                    stop.clone(),
                    counters.clone(),
                ));
            }
            tasks.spawn(wrong_logins(
                options.wrong_logins_per_s,
                wrong.clone(),
                stop.clone(),
                counters.clone(),
            ));
            tasks.spawn(legit_logins(dialer.clone(), stop.clone(), counters.clone()));

            // Full swing: every idle and trickling connection open, then a moment more.
            let ramp_deadline = Instant::now() + RAMP_TIMEOUT;
            loop {
                let idle = counters.idle_open.load(Ordering::Relaxed);
                let trickle = counters.trickle_open.load(Ordering::Relaxed);
                if idle >= options.idle && trickle >= options.trickle {
                    break;
                }
                if Instant::now() > ramp_deadline {
                    let _ = stop_tx.send(true);
                    anyhow::bail!(
                        "the attack did not ramp up within {RAMP_TIMEOUT:?}: {idle} of {} idle and \
                         {trickle} of {} trickling connections open ({} idle attempts failed)",
                        options.idle,
                        options.trickle,
                        counters.idle_failed.load(Ordering::Relaxed)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let ramp_s = started.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_secs_f64(options.hold_s)).await;
            let idle_open_at_produce = counters.idle_open.load(Ordering::Relaxed);

            // The producer is blocking (librdkafka's own threads do the work).
            let produced = tokio::task::block_in_place(|| {
                produce_counting(client, topic, warmup, options.records, None, Some(gateway))
            });
            let _ = stop_tx.send(true);
            let seconds = started.elapsed().as_secs_f64();
            let drained = tokio::time::timeout(STOP_TIMEOUT, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tasks.abort_all();
            }
            anyhow::Ok((produced?, ramp_s, seconds, idle_open_at_produce))
        });
        let cpu_attack = child.cpu();
        // kgate logs each close as it notices it: give it a moment.
        std::thread::sleep(SETTLE);
        sampling.store(true, Ordering::Relaxed);
        let peak = sampler.join().unwrap_or(0);
        outcome.map(|o| (o, peak, cpu_attack))
    });
    runtime.shutdown_timeout(STOP_TIMEOUT);
    let ((produced, ramp_s, seconds, idle_open_at_produce), peak, cpu_attack) =
        result.with_context(|| format!("gateway log:\n{}", child.log_tail()))?;
    let rss_after = child.rss_kib()?;
    let log_growth = child.log_bytes().saturating_sub(log_before);
    let log_lines = child
        .log_text()
        .lines()
        .count()
        .saturating_sub(log_lines_before);
    let c = &counters;
    let lifetimes = Latency::of(take(&c.trickle_lifetimes));
    let attackers = AttackStats {
        seconds,
        ramp_s,
        idle_open_at_produce,
        idle_opened: c.idle_opened.load(Ordering::Relaxed),
        idle_closed_by_kgate: c.idle_closed.load(Ordering::Relaxed),
        idle_failed: c.idle_failed.load(Ordering::Relaxed),
        trickle_started: c.trickle_started.load(Ordering::Relaxed),
        trickle_closed_by_kgate: c.trickle_closed.load(Ordering::Relaxed),
        trickle_closed_after_s: lifetimes.p50_ms / 1e3,
        wrong_logins: c.wrong.load(Ordering::Relaxed),
        wrong_logins_refused: c.wrong_refused.load(Ordering::Relaxed),
        wrong_logins_accepted: c.wrong_accepted.load(Ordering::Relaxed),
        wrong_logins_other: c.wrong_other.load(Ordering::Relaxed),
        wrong_login_first_other: c
            .wrong_first_other
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        wrong_login_latency: Latency::of(take(&c.wrong_latencies)),
        legit_logins: c.legit.load(Ordering::Relaxed),
        legit_login_failures: c.legit_failed.load(Ordering::Relaxed),
        legit_login_latency: Latency::of(take(&c.legit_latencies)),
    };
    let round = Round {
        baseline: placeholder_run(),
        attack: placeholder_run(),
        throughput_ratio: 0.0,
        attackers,
        rss_before_kib: rss_before,
        rss_peak_kib: peak.max(rss_before).max(rss_after),
        rss_after_kib: rss_after,
        log_growth_bytes: log_growth,
        log_lines,
        kgate_cpu_s_attack: cpu_attack?.saturating_sub(cpu_before).as_secs_f64(),
    };
    Ok((produced, round))
}

/// Filled in by the caller.
fn placeholder_run() -> ProducerRun {
    ProducerRun {
        sent: 0,
        appended: 0,
        lost: 0,
        duplicated: 0,
        failed_deliveries: 0,
        first_error: None,
        mb_s: 0.0,
        elapsed_s: 0.0,
        latency: Latency::of(Vec::new()),
        kgate_cpu_s: 0.0,
    }
}

fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(
        out,
        "kgate bench hostile: {} build, {} CPUs, embedded 3-broker cluster, kgate child with TLS + SCRAM-SHA-512, log level {}",
        r.build, r.cpus, c.log_level
    );
    let _ = writeln!(
        out,
        "producer: {} records of {} B per phase (+{} warm-up), acks={}, linger.ms={}",
        c.records, c.record_bytes, c.warmup_records, c.acks, LINGER_MS
    );
    let _ = writeln!(
        out,
        "attack: {} idle TLS connections, {} TLS handshakes trickling 1 byte/s, {} wrong-password SCRAM logins/s, \
         {} s at full strength before the producer starts; all on 127.0.0.1, so kgate's max_connections_per_ip is {}\n",
        c.idle, c.trickle, c.wrong_logins_per_s, c.hold_s, c.max_connections_per_ip
    );
    let _ = writeln!(
        out,
        "{:>5} {:>9} {:>9} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>10} {:>10}",
        "round",
        "alone",
        "attacked",
        "ratio",
        "lost",
        "RSS peak",
        "log",
        "log",
        "attack",
        "kgate",
        "wrong",
        "real login"
    );
    let _ = writeln!(
        out,
        "{:>5} {:>9} {:>9} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>10} {:>10}",
        "", "MB/s", "MB/s", "", "", "MiB", "KiB", "lines", "s", "CPU s", "refused", "p99 ms"
    );
    for (i, round) in r.rounds.iter().enumerate() {
        let a = &round.attackers;
        let _ = writeln!(
            out,
            "{:>5} {:>9.1} {:>9.1} {:>6.2} {:>5} {:>9.1} {:>9.1} {:>9} {:>8.1} {:>8.2} {:>10} {:>10.1}",
            i + 1,
            round.baseline.mb_s,
            round.attack.mb_s,
            round.throughput_ratio,
            round.baseline.lost + round.attack.lost,
            round.rss_peak_kib as f64 / 1024.0,
            round.log_growth_bytes as f64 / 1024.0,
            round.log_lines,
            a.seconds,
            round.kgate_cpu_s_attack,
            format!("{}/{}", a.wrong_logins_refused, a.wrong_logins),
            a.legit_login_latency.p99_ms
        );
    }
    for (i, round) in r.rounds.iter().enumerate() {
        let a = &round.attackers;
        let _ = writeln!(
            out,
            "  round {}: ramp {:.1} s; idle {} open at produce, {} closed by kgate, {} failed; trickles {} started, {} closed by kgate (median after {:.1} s); \
             wrong logins {} other{}; real logins {} ({} failed, p50 {:.1} ms)",
            i + 1,
            a.ramp_s,
            a.idle_open_at_produce,
            a.idle_closed_by_kgate,
            a.idle_failed,
            a.trickle_started,
            a.trickle_closed_by_kgate,
            a.trickle_closed_after_s,
            a.wrong_logins_other,
            a.wrong_login_first_other
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            a.legit_logins,
            a.legit_login_failures,
            a.legit_login_latency.p50_ms,
        );
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\nover {} rounds, median (min–max): ratio {:.2} ({:.2}–{:.2}); alone {:.1} MB/s, attacked {:.1} MB/s; \
         kgate RSS peak {:.1} MiB ({:.1}–{:.1}); log growth {:.0} KiB ({:.0}–{:.0}); records lost {}\n",
        r.rounds.len(),
        s.throughput_ratio.median,
        s.throughput_ratio.min,
        s.throughput_ratio.max,
        s.baseline_mb_s.median,
        s.attack_mb_s.median,
        s.rss_peak_kib.median / 1024.0,
        s.rss_peak_kib.min / 1024.0,
        s.rss_peak_kib.max / 1024.0,
        s.log_growth_bytes.median / 1024.0,
        s.log_growth_bytes.min / 1024.0,
        s.log_growth_bytes.max / 1024.0,
        s.records_lost
    );
    let _ = writeln!(out, "Targets (issue 12)");
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
            "\nNote: a debug build; quote figures of a release build (cargo run --release -- bench hostile)."
        );
    }
    let _ = writeln!(out, "\nTotal time {:.1} s", r.elapsed_s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_fits_the_whole_attack() {
        let options = Options {
            records: 100,
            rounds: 1,
            idle: 2000,
            trickle: 200,
            wrong_logins_per_s: 50,
            hold_s: 0.0,
            json: false,
        };
        assert!(connection_cap(&options) >= 2000 + 200 + 50 * 5 + 4);
    }
}
