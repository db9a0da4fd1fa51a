//! Checks: files, `kgate` commands, real clients through the gateway, measured probes with
//! faults, the audit log and simulator runs. Each returns a [`CheckResult`] for the student.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::env::LabEnv;
use crate::lab::{CheckSpec, Condition, Expect, ProbeSpec, Security, PROBE_METRICS, SIM_METRICS};

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen (numbers, errors, the table).
    pub detail: String,
}

/// What a check left behind for questions (the simulator report) and later checks (the
/// baseline).
#[derive(Debug, Default)]
pub struct Evidence {
    /// The baseline's p99 produce latency, ms: the median of its runs' p99s.
    pub baseline_p99_ms: Option<f64>,
    /// The p99 of each baseline run, ms, in the order measured (the median above is theirs).
    pub baseline_runs_ms: Vec<f64>,
    /// Consumer lag per `topic-partition` of the last probe that consumed (the live view).
    pub last_lag: BTreeMap<String, i64>,
    /// When that probe measured it.
    pub last_lag_at: Option<std::time::SystemTime>,
    /// The last `sim` check's report.
    pub sim: Option<kgate_sim::Report>,
    /// Reports by scenario text: the simulator is deterministic, so a scenario runs once.
    pub cache: BTreeMap<String, kgate_sim::Report>,
}

/// What the hidden variant changes in checks once its faults are injected.
#[derive(Debug, Clone, Default)]
pub struct VariantContext {
    /// TOML appended to `sim` scenarios (the variant's simulated fault).
    pub sim: String,
    /// Consumer processing time per message in probes (a slow consumer).
    pub processing_ms: Option<u64>,
}

/// The default name of a check.
pub fn check_name(check: &CheckSpec) -> String {
    match check {
        CheckSpec::File { name, path, .. } => {
            name.clone().unwrap_or_else(|| format!("{path} exists"))
        }
        CheckSpec::Command { name, cmd, .. } => name.clone().unwrap_or_else(|| format!("`{cmd}`")),
        CheckSpec::Consume {
            name,
            topic,
            user,
            expect,
            ..
        } => name.clone().unwrap_or_else(|| {
            format!(
                "{} reads {topic}: {expect}",
                user.as_deref().unwrap_or("an anonymous client")
            )
        }),
        CheckSpec::Produce {
            name,
            topic,
            user,
            expect,
            ..
        } => name.clone().unwrap_or_else(|| {
            format!(
                "{} writes {topic}: {expect}",
                user.as_deref().unwrap_or("an anonymous client")
            )
        }),
        CheckSpec::Audit { name, fields } => name.clone().unwrap_or_else(|| {
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("the audit log has a line with {}", parts.join(", "))
        }),
        CheckSpec::Probe(p) => p
            .name
            .clone()
            .unwrap_or_else(|| format!("probe: {} messages to {}", p.count, p.topic)),
        CheckSpec::Sim { name, .. } => name.clone().unwrap_or_else(|| "simulator run".into()),
    }
}

/// Runs one check against the environment.
pub async fn run_check(
    env: &mut LabEnv,
    check: &CheckSpec,
    variant: &VariantContext,
    evidence: &mut Evidence,
) -> CheckResult {
    let extra_sim = variant.sim.as_str();
    let name = check_name(check);
    let outcome: anyhow::Result<(bool, String)> = match check {
        CheckSpec::File { path, contains, .. } => file_check(env.dir(), path, contains.as_deref()),
        CheckSpec::Command {
            cmd,
            stdin,
            success,
            output_contains,
            ..
        } => command_check(
            env.dir(),
            cmd,
            stdin.as_deref(),
            *success,
            output_contains.as_deref(),
        ),
        CheckSpec::Consume {
            topic,
            group,
            user,
            password,
            mechanism,
            security,
            min,
            expect,
            error,
            ..
        } => {
            let client = client_config(
                env,
                *security,
                user.as_deref().zip(password.as_deref()),
                mechanism.as_deref(),
            );
            let reads = env.reads_handle();
            let seen = match group {
                None if *expect == Expect::Denied => consume_assigned(client, topic).await,
                _ => {
                    let group = group.clone().unwrap_or_else(|| "kgate-lab-check".into());
                    consume_outcome(client, topic, &group, *min, *expect, &reads).await
                }
            };
            let (passed, detail) = judge(*expect, seen, "messages read");
            match error {
                Some(want) if passed && !detail.contains(want.as_str()) => {
                    Ok((false, format!("denied, but not with {want}: {detail}")))
                }
                _ => Ok((passed, detail)),
            }
        }
        CheckSpec::Produce {
            topic,
            user,
            password,
            mechanism,
            security,
            count,
            expect,
            ..
        } => {
            let client = client_config(
                env,
                *security,
                user.as_deref().zip(password.as_deref()),
                mechanism.as_deref(),
            );
            let seen = produce_outcome(client, topic, *count).await;
            Ok(judge(*expect, seen, "messages written"))
        }
        CheckSpec::Audit { fields, .. } => audit_check(env, fields).await,
        CheckSpec::Probe(p) => {
            let mut p = p.clone();
            if let Some(ms) = variant.processing_ms {
                p.processing_ms = ms;
            }
            probe(env, &p, evidence).await
        }
        CheckSpec::Sim {
            scenario,
            expect,
            show,
            hide_faults,
            ..
        } => sim_check(scenario, extra_sim, expect, *show, *hide_faults, evidence),
    };
    match outcome {
        Ok((passed, detail)) => CheckResult {
            name,
            passed,
            detail,
        },
        Err(e) => CheckResult {
            name,
            passed: false,
            detail: format!("{e:#}"),
        },
    }
}

fn file_check(dir: &Path, path: &str, contains: Option<&str>) -> anyhow::Result<(bool, String)> {
    let full = dir.join(path);
    match std::fs::read(&full) {
        Ok(bytes) => match contains {
            Some(needle) if !String::from_utf8_lossy(&bytes).contains(needle) => {
                Ok((false, format!("{path} does not contain {needle:?}")))
            }
            _ => Ok((true, format!("{path} ({} bytes)", bytes.len()))),
        },
        Err(_) => Ok((false, format!("{path} is missing in {}", dir.display()))),
    }
}

/// The `kgate` executable step commands run: this very binary.
pub fn kgate_exe() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("KGATE_LAB_EXE") {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe().context("cannot find the kgate executable")
}

/// Runs `kgate ...` in the lab directory; returns status and combined output.
///
/// # Errors
/// The command cannot start.
pub fn run_kgate(dir: &Path, line: &str, stdin: Option<&str>) -> anyhow::Result<(bool, String)> {
    let words = crate::lab::split_words(line).map_err(anyhow::Error::msg)?;
    let Some((first, args)) = words.split_first() else {
        anyhow::bail!("empty command");
    };
    anyhow::ensure!(
        first == "kgate",
        "{line:?}: lab commands start with `kgate`"
    );
    let mut child = Command::new(kgate_exe()?)
        .args(args)
        .current_dir(dir)
        .env("KGATE_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {line:?}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("cannot write the input of {line:?}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot run {line:?}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

fn command_check(
    dir: &Path,
    cmd: &str,
    stdin: Option<&str>,
    success: bool,
    contains: Option<&str>,
) -> anyhow::Result<(bool, String)> {
    let (ok, out) = run_kgate(dir, cmd, stdin)?;
    let shown = out.trim_end().to_owned();
    if ok != success {
        let want = if success { "succeed" } else { "fail" };
        return Ok((
            false,
            format!("expected it to {want}; it printed:\n{shown}"),
        ));
    }
    if let Some(needle) = contains {
        if !out.contains(needle) {
            return Ok((false, format!("the output lacks {needle:?}:\n{shown}")));
        }
    }
    Ok((true, shown))
}

/// librdkafka settings for a check client.
fn client_config(
    env: &LabEnv,
    security: Security,
    user: Option<(&str, &str)>,
    mechanism: Option<&str>,
) -> ClientConfig {
    let gw = env.config();
    let (tls, sasl) = match security {
        Security::Auto => (gw.tls(), gw.sasl() || user.is_some()),
        Security::Plaintext => (false, false),
        Security::Ssl => (true, false),
        Security::SaslSsl => (true, true),
    };
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", env.bootstrap())
        .set("socket.timeout.ms", "6000")
        .set("log_level", "0");
    c.set(
        "security.protocol",
        match (tls, sasl) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        },
    );
    if tls {
        let ca = gw
            .cert
            .as_ref()
            .and_then(|c| c.parent().map(|p| p.join("ca.pem")))
            .unwrap_or_else(|| PathBuf::from("certs/ca.pem"));
        let ca = if ca.is_absolute() {
            ca
        } else {
            env.dir().join(ca)
        };
        c.set("ssl.ca.location", ca.display().to_string());
    }
    if sasl {
        let (u, p) = user.unwrap_or(("nobody", "nobody"));
        c.set("sasl.mechanisms", mechanism.unwrap_or("SCRAM-SHA-512"))
            .set("sasl.username", u)
            .set("sasl.password", p);
    }
    c
}

/// Errors librdkafka reported outside of results (authentication, transport).
/// An error code (when librdkafka gives one) and its reason.
type Reported = (Option<RDKafkaErrorCode>, String);

#[derive(Clone, Default)]
struct Recorder {
    errors: Arc<Mutex<Vec<Reported>>>,
    /// The largest broker throttle time (ms) in librdkafka's statistics, when they are on.
    throttle_ms: Arc<std::sync::atomic::AtomicI64>,
    /// Per broker (node id): the client's view from librdkafka's statistics.
    brokers: Arc<Mutex<BTreeMap<i32, ClientSide>>>,
}

/// What librdkafka's statistics said about one broker, the worst window of the run (µs).
#[derive(Debug, Clone, Copy, Default)]
struct ClientSide {
    /// Round trip as the client measures it (request sent → response read).
    rtt_p99_us: i64,
    /// Time in the producer's queue before a request is sent.
    queue_p99_us: i64,
    /// Throttle time the broker reported (ms).
    throttle_ms: i64,
}

impl ClientContext for Recorder {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Ok(mut per) = self.brokers.lock() else {
            return;
        };
        for b in statistics.brokers.values() {
            if let Some(w) = &b.throttle {
                self.throttle_ms
                    .fetch_max(w.max, std::sync::atomic::Ordering::Relaxed);
            }
            if b.nodeid < 0 {
                continue;
            }
            let side = per.entry(b.nodeid).or_default();
            if let Some(w) = b.rtt.as_ref().filter(|w| w.cnt > 0) {
                // The worst request of a window: a probe sends few per window.
                side.rtt_p99_us = side.rtt_p99_us.max(w.max);
            }
            if let Some(w) = b.int_latency.as_ref().filter(|w| w.cnt > 0) {
                side.queue_p99_us = side.queue_p99_us.max(w.p99);
            }
            if let Some(w) = &b.throttle {
                side.throttle_ms = side.throttle_ms.max(w.max);
            }
        }
    }
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut e) = self.errors.lock() {
            if e.len() < 50 {
                e.push((error.rdkafka_error_code(), reason.to_owned()));
            }
        }
    }
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, _fac: &str, _log_message: &str) {}
}

impl ConsumerContext for Recorder {}

impl Recorder {
    /// A topic authorization error, if librdkafka reported one.
    fn topic_denial(&self) -> Option<Seen> {
        let errors = self.errors.lock().ok()?;
        errors
            .iter()
            .filter(|(code, _)| *code == Some(RDKafkaErrorCode::TopicAuthorizationFailed))
            .find_map(|(code, reason)| classify_code(*code, reason))
    }

    fn classify(&self) -> Option<Seen> {
        let errors = self.errors.lock().ok()?;
        for (code, reason) in errors.iter() {
            if let Some(seen) = classify_code(*code, reason) {
                return Some(seen);
            }
        }
        None
    }
}

/// What a client saw.
#[derive(Debug)]
enum Seen {
    Worked(usize),
    Denied(String),
    Rejected(String),
    Nothing(String),
}

/// Kafka's name of an authorization error, as the protocol and the Java client's docs spell it.
fn denial_name(code: RDKafkaErrorCode) -> &'static str {
    use RDKafkaErrorCode as E;
    match code {
        E::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
        E::GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED",
        E::ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED",
        E::TransactionalIdAuthorizationFailed => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        _ => "",
    }
}

fn classify_code(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<Seen> {
    use RDKafkaErrorCode as E;
    let code = code?;
    match code {
        E::TopicAuthorizationFailed
        | E::GroupAuthorizationFailed
        | E::ClusterAuthorizationFailed
        | E::TransactionalIdAuthorizationFailed => Some(Seen::Denied(format!(
            "{} ({})",
            denial_name(code),
            first_line(reason)
        ))),
        E::Authentication | E::SaslAuthenticationFailed | E::SSL => {
            Some(Seen::Rejected(reason.to_owned()))
        }
        E::BrokerTransportFailure | E::AllBrokersDown => Some(Seen::Rejected(reason.to_owned())),
        _ => None,
    }
}

fn judge(expect: Expect, seen: Seen, what: &str) -> (bool, String) {
    match (expect, seen) {
        (Expect::Ok, Seen::Worked(n)) => (true, format!("{n} {what}")),
        (Expect::Denied, Seen::Denied(r)) => (true, format!("denied as expected: {r}")),
        (Expect::Rejected, Seen::Rejected(r)) => {
            (true, format!("refused as expected: {}", first_line(&r)))
        }
        (_, Seen::Worked(n)) => (
            false,
            format!("expected {expect}, but it worked ({n} {what})"),
        ),
        (_, Seen::Denied(r)) => (false, format!("expected {expect}, but it was denied: {r}")),
        (_, Seen::Rejected(r)) => (
            false,
            format!(
                "expected {expect}, but the connection was refused: {}",
                first_line(&r)
            ),
        ),
        (_, Seen::Nothing(r)) => (false, format!("expected {expect}: {r}")),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

async fn consume_outcome(
    config: ClientConfig,
    topic: &str,
    group: &str,
    min: usize,
    expect: Expect,
    reads: &crate::env::ReadMeter,
) -> Seen {
    let recorder = Recorder::default();
    let consumer: StreamConsumer<Recorder> = match config
        .clone()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create_with_context(recorder.clone())
    {
        Ok(c) => c,
        Err(e) => return Seen::Nothing(format!("cannot create the consumer: {e}")),
    };
    if let Err(e) = consumer.subscribe(&[topic]) {
        return Seen::Nothing(format!("cannot subscribe: {e}"));
    }
    let wait = if expect == Expect::Ok { 20 } else { 10 };
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut got = 0;
    loop {
        if got >= min.max(1) {
            return Seen::Worked(got);
        }
        if expect != Expect::Ok {
            if let Some(seen) = recorder.classify() {
                return seen;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let step = left.min(Duration::from_millis(300));
        match tokio::time::timeout(step, consumer.recv()).await {
            Ok(Ok(m)) => {
                got += 1;
                reads.add(m.topic(), m.partition(), 1);
            }
            Ok(Err(e)) => {
                if let Some(seen) = classify_code(e.rdkafka_error_code(), &e.to_string()) {
                    return seen;
                }
            }
            Err(_) => {}
        }
    }
    if got > 0 {
        return Seen::Worked(got);
    }
    recorder.classify().unwrap_or_else(|| {
        Seen::Nothing(format!(
            "no message arrived within {wait} s and no error either (is the topic empty?)"
        ))
    })
}

/// A consumer without a group, reading by assignment: the topic's metadata and fetches are
/// all that is asked, so a denial is the topic's own (never the group's).
async fn consume_assigned(config: ClientConfig, topic: &str) -> Seen {
    let recorder = Recorder::default();
    // librdkafka needs a group id to assign partitions; no group request is ever answered
    // for it here (no subscription, no commits), and a group denial is only a fallback.
    let consumer: StreamConsumer<Recorder> = match config
        .clone()
        .set("group.id", "kgate-lab-check-assigned")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(recorder.clone())
    {
        Ok(c) => c,
        Err(e) => return Seen::Nothing(format!("cannot create the consumer: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let md = loop {
        let md = tokio::task::block_in_place(|| {
            consumer.fetch_metadata(Some(topic), Duration::from_secs(2))
        });
        match md {
            Ok(md) => break md,
            Err(e) => {
                if let Some(seen) = recorder.classify() {
                    return seen;
                }
                if Instant::now() >= deadline {
                    return classify_code(e.rdkafka_error_code(), &e.to_string()).unwrap_or_else(
                        || Seen::Nothing(format!("cannot read the metadata of {topic}: {e}")),
                    );
                }
            }
        }
    };
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Seen::Nothing(format!("the metadata does not list {topic}"));
    };
    if let Some(err) = t.error() {
        let code = RDKafkaErrorCode::from(err);
        return classify_code(Some(code), &code.to_string())
            .unwrap_or_else(|| Seen::Nothing(format!("{topic}: {code}")));
    }
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in t.partitions() {
        if assignment
            .add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)
            .is_err()
        {
            return Seen::Nothing("cannot assign the partitions".into());
        }
    }
    if let Err(e) = consumer.assign(&assignment) {
        return Seen::Nothing(format!("cannot assign the partitions: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    let mut other: Option<Seen> = None;
    loop {
        if let Some(seen) = recorder.topic_denial() {
            return seen;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left.min(Duration::from_millis(300)), consumer.recv()).await {
            Ok(Ok(_)) => got += 1,
            Ok(Err(e)) => {
                let code = e.rdkafka_error_code();
                let seen = classify_code(code, &e.to_string());
                if code == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
                    if let Some(seen) = seen {
                        return seen;
                    }
                }
                other = other.or(seen);
            }
            Err(_) => {
                if got > 0 {
                    break;
                }
            }
        }
    }
    if got > 0 {
        return Seen::Worked(got);
    }
    other
        .or_else(|| recorder.classify())
        .unwrap_or_else(|| Seen::Nothing("no message and no error within 10 s".into()))
}

async fn produce_outcome(config: ClientConfig, topic: &str, count: usize) -> Seen {
    let recorder = Recorder::default();
    let producer: FutureProducer<Recorder> = match config
        .clone()
        .set("message.timeout.ms", "8000")
        .set("linger.ms", "1")
        .create_with_context(recorder.clone())
    {
        Ok(p) => p,
        Err(e) => return Seen::Nothing(format!("cannot create the producer: {e}")),
    };
    let mut acks = Vec::new();
    for i in 0..count {
        let value = format!("{i} written by a lab check");
        let key = format!("key-{i}");
        let record = FutureRecord::to(topic).key(&key).payload(&value);
        match producer.send_result(record) {
            Ok(ack) => acks.push(ack),
            Err((e, _)) => return Seen::Nothing(format!("cannot send: {e}")),
        }
    }
    let mut ok = 0;
    let mut first_error: Option<KafkaError> = None;
    for ack in acks {
        match ack.await {
            Ok(Ok(_)) => ok += 1,
            Ok(Err((e, _))) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    match first_error {
        None if ok == count => Seen::Worked(ok),
        None => Seen::Nothing(format!("{ok} of {count} acknowledged")),
        Some(e) => classify_code(e.rdkafka_error_code(), &e.to_string())
            .or_else(|| recorder.classify())
            .unwrap_or_else(|| Seen::Nothing(format!("{ok} of {count} acknowledged; {e}"))),
    }
}

/// Looks for an audit line with `fields`. The gateway writes audit lines from a thread of its
/// own, a moment after the decision: a missing line is looked for again for up to a second.
async fn audit_check(
    env: &LabEnv,
    fields: &BTreeMap<String, String>,
) -> anyhow::Result<(bool, String)> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let (found, detail) = audit_lines(env, fields)?;
        if found || tokio::time::Instant::now() >= deadline {
            return Ok((found, detail));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn audit_lines(env: &LabEnv, fields: &BTreeMap<String, String>) -> anyhow::Result<(bool, String)> {
    let Some(log) = &env.config().audit_log else {
        return Ok((
            false,
            "kgate.toml has no `audit_log` (add audit_log = \"audit.jsonl\")".into(),
        ));
    };
    let path = if log.is_absolute() {
        log.clone()
    } else {
        env.dir().join(log)
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Ok((false, format!("cannot read {}: {e}", path.display()))),
    };
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let matches = fields.iter().all(|(k, want)| match value.get(k) {
            Some(serde_json::Value::String(s)) => s == want,
            Some(other) => &other.to_string() == want,
            None => false,
        });
        if matches {
            return Ok((true, line.to_owned()));
        }
    }
    Ok((
        false,
        format!("none of the {lines} lines of {} matches", path.display()),
    ))
}

/// What a probe measured.
#[derive(Debug, Default, Clone)]
pub struct ProbeReport {
    /// Metric name → value.
    pub values: BTreeMap<&'static str, f64>,
    /// Errors seen, by kind, with counts.
    pub errors: BTreeMap<String, usize>,
    /// One line per partition: leader, acknowledged messages, p99 latency.
    pub partitions: Vec<String>,
    /// One line per broker: the client's round trip split into the broker's own time, the
    /// network and throttling, and the producer's queue time.
    pub brokers: Vec<BrokerEvidence>,
    /// Consumer lag per partition, when the probe consumed.
    pub lag: BTreeMap<i32, i64>,
    /// The cluster's replication health when the probe ran.
    pub health: Option<crate::env::ClusterHealth>,
    /// p99 produce latency before rounding, ms (`values["p99_ms"]` is rounded for display;
    /// comparisons with a baseline of a few ms need the fraction).
    pub p99_exact_ms: Option<f64>,
}

/// One broker's timings in a probe: what the client waited for, and where the time went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerEvidence {
    /// Node id.
    pub broker: i32,
    /// Partitions of the probe's topic it leads.
    pub leads: Vec<i32>,
    /// The client's round trip p99 (librdkafka's `rtt`), ms.
    pub rtt_ms: f64,
    /// The broker's own time for produce requests p99 (kgate → broker → kgate), ms.
    pub broker_ms: f64,
    /// Throttle time the broker reported, ms (librdkafka's `throttle`).
    pub throttle_ms: f64,
    /// The rest of the round trip: on the network between the client and the broker, ms.
    pub network_ms: f64,
    /// Time produce requests queued in the client before being sent, p99 ms
    /// (librdkafka's `int_latency`).
    pub queue_ms: f64,
}

impl BrokerEvidence {
    /// One line for the student.
    pub fn line(&self) -> String {
        let leads = if self.leads.is_empty() {
            "no partition".to_owned()
        } else {
            format!(
                "partition{} {}",
                if self.leads.len() == 1 { "" } else { "s" },
                self.leads
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        format!(
            "broker {}: leads {leads} | round trip p99 {} ms = broker {} + network {} + throttle {} | client queue p99 {} ms",
            self.broker,
            fmt_num(self.rtt_ms.round()),
            fmt_num(self.broker_ms.round()),
            fmt_num(self.network_ms.round()),
            fmt_num(self.throttle_ms.round()),
            fmt_num(self.queue_ms.round()),
        )
    }
}

fn partition_leaders<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
) -> BTreeMap<i32, i32> {
    let Ok(md) = client.fetch_metadata(Some(topic), Duration::from_secs(3)) else {
        return BTreeMap::new();
    };
    md.topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader())))
        .collect()
}

/// How many times a baseline probe measures p99 (the probe itself, then produce-only repeats):
/// one run's p99 of a few dozen records is its slowest record, and one scheduling hiccup on a
/// shared laptop would set the baseline; the median of five does not move with one.
pub const BASELINE_RUNS: usize = 5;

/// How many times a check against the baseline measures p99, compared by their median.
pub const CHECK_RUNS: usize = 3;

/// The median of `runs` (the mean of the middle two for an even count); `None` if empty.
pub fn median(runs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

/// Scheduling noise added to the baseline's median before "within 2×" applies: a p99 of a few
/// milliseconds on a loaded 2-core laptop (a build beside the lab) moves by several ms with
/// no fault at all, so 2 × 1.5 ms would call a fixed cluster broken. The check prints this
/// term with the others; a p99 of 50 ms against a 2 ms baseline still fails.
pub const NOISE_MS: f64 = 10.0;

/// The terms of a check against the baseline, each printed: `factor` × the baseline's median,
/// the baseline's own slowest run (the healthy cluster measured it, so it is no symptom), and
/// the median plus [`NOISE_MS`]. The check passes at or below the largest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineLimit {
    /// `factor` × the baseline's median.
    pub scaled: f64,
    /// The slowest baseline run (0 if the runs were not kept).
    pub slowest: f64,
    /// The baseline's median + [`NOISE_MS`].
    pub noise: f64,
}

impl BaselineLimit {
    /// The limit: the largest term.
    pub fn ms(&self) -> f64 {
        self.scaled.max(self.slowest).max(self.noise)
    }
}

/// The limit of a check against a baseline of `median_ms` (from `runs_ms`).
pub fn baseline_limit(factor: f64, median_ms: f64, runs_ms: &[f64]) -> BaselineLimit {
    BaselineLimit {
        scaled: factor * median_ms,
        slowest: runs_ms.iter().copied().fold(0.0, f64::max),
        noise: median_ms + NOISE_MS,
    }
}

fn runs_text(runs: &[f64]) -> String {
    runs.iter()
        .map(|r| fmt_ms(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A latency in ms for the student: one decimal below 10 ms, whole ms above.
fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `n` more p99 measurements of the probe's produce side (no consuming, same faults and
/// settings), for a median.
async fn more_p99_runs(env: &mut LabEnv, p: &ProbeSpec, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut produce_only = p.clone();
    produce_only.consume_for_ms = 0;
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        let r = run_probe(env, &produce_only).await?;
        if let Some(v) = r.p99_exact_ms {
            runs.push(v);
        }
    }
    Ok(runs)
}

async fn probe(
    env: &mut LabEnv,
    p: &ProbeSpec,
    evidence: &mut Evidence,
) -> anyhow::Result<(bool, String)> {
    let report = run_probe(env, p).await?;
    for (part, lag) in &report.lag {
        evidence
            .last_lag
            .insert(format!("{}-{part}", p.topic), *lag);
    }
    if !report.lag.is_empty() {
        evidence.last_lag_at = Some(std::time::SystemTime::now());
    }
    // The baseline and the checks against it compare medians of several runs' p99, so that
    // one slow run on a busy laptop neither sets the baseline nor counts as the symptom.
    let mut runs: Vec<f64> = report.p99_exact_ms.into_iter().collect();
    let mut first_runs: Vec<f64> = Vec::new();
    if p.baseline {
        runs.extend(more_p99_runs(env, p, BASELINE_RUNS.saturating_sub(1)).await?);
    } else if let Some(factor) = p.within_baseline {
        runs.extend(more_p99_runs(env, p, CHECK_RUNS.saturating_sub(1)).await?);
        // Over the limit: measure once more before calling it a symptom (a moment of load
        // passes; a fault stays). The output shows both sets.
        if let Some(base) = evidence.baseline_p99_ms {
            let limit = baseline_limit(factor, base, &evidence.baseline_runs_ms).ms();
            if median(&runs).is_some_and(|m| m > limit) {
                let again = more_p99_runs(env, p, CHECK_RUNS).await?;
                if median(&again).is_some_and(|m| m <= limit) {
                    first_runs = std::mem::replace(&mut runs, again);
                }
            }
        }
    }
    let mut detail = String::new();
    for name in PROBE_METRICS {
        if let Some(v) = report.values.get(name) {
            detail.push_str(&format!("{name}={} ", fmt_num(*v)));
        }
    }
    for line in &report.partitions {
        detail.push_str(&format!("\n  {line}"));
    }
    if p.evidence {
        for b in &report.brokers {
            detail.push_str(&format!("\n  {}", b.line()));
        }
        if !report.lag.is_empty() {
            let parts: Vec<String> = report
                .lag
                .iter()
                .map(|(p, l)| format!("partition {p}: {l}"))
                .collect();
            detail.push_str(&format!(
                "\n  consumer lag per partition: {}",
                parts.join(", ")
            ));
        }
        if let Some(h) = &report.health {
            detail.push_str(&format!(
                "\n  replication: {} ISR shrink(s), {} ISR expand(s) since the lab started; {} partition(s) under-replicated now{}",
                h.isr_shrinks,
                h.isr_expands,
                h.under_replicated,
                if h.down.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; brokers not answering: {}",
                        h.down.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
                    )
                }
            ));
        }
    }
    for (e, n) in &report.errors {
        detail.push_str(&format!("\n  error ×{n}: {e}"));
        if e.contains("AllBrokersDown") || e.contains("brokers are down") {
            detail.push_str(
                "\n    (the client counts the brokers it knows: before it has any metadata, \
                 that is only its bootstrap address, the gateway's one port, hence `1/1`; \
                 behind it are the cluster's brokers)",
            );
        }
    }
    let mut passed = true;
    if let Some(factor) = p.within_baseline {
        match (evidence.baseline_p99_ms, median(&runs)) {
            (Some(base), Some(p99)) => {
                let terms = baseline_limit(factor, base, &evidence.baseline_runs_ms);
                let limit = terms.ms();
                let base_runs = if evidence.baseline_runs_ms.is_empty() {
                    String::new()
                } else {
                    format!(
                        " of {} runs ({} ms)",
                        evidence.baseline_runs_ms.len(),
                        runs_text(&evidence.baseline_runs_ms)
                    )
                };
                let again = if first_runs.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (measured again: the first {} runs had median {} ms: {} ms)",
                        first_runs.len(),
                        median(&first_runs).map_or_else(String::new, fmt_ms),
                        runs_text(&first_runs)
                    )
                };
                detail.push_str(&format!(
                    "\n  baseline p99: median {} ms{base_runs}\
                     \n  now p99: median {} ms of {} runs ({} ms){again}\
                     \n  compared: median {} ms against at most {} ms, the largest of {}× the baseline \
                     median ({} ms), its slowest run ({} ms) and the median + {} ms of scheduling \
                     noise ({} ms)",
                    fmt_ms(base),
                    fmt_ms(p99),
                    runs.len(),
                    runs_text(&runs),
                    fmt_ms(p99),
                    fmt_ms(limit),
                    fmt_num(factor),
                    fmt_ms(terms.scaled),
                    fmt_ms(terms.slowest),
                    fmt_num(NOISE_MS),
                    fmt_ms(terms.noise),
                ));
                if p99 > limit {
                    passed = false;
                    detail.push_str(&format!(
                        "\n  not met: p99 {} ms is more than {}× the baseline: the symptom is still there",
                        fmt_ms(p99),
                        fmt_num(factor)
                    ));
                }
            }
            (None, _) => {
                passed = false;
                detail.push_str(
                    "\n  not met: no baseline measured yet (the first step's check measures it)",
                );
            }
            (_, None) => {
                passed = false;
                detail.push_str("\n  not met: no latency measured");
            }
        }
    }
    if p.baseline {
        if let Some(base) = median(&runs) {
            evidence.baseline_p99_ms = Some(base);
            evidence.baseline_runs_ms = runs.clone();
            detail.push_str(&format!(
                "\n  baseline kept: p99 median {} ms of {} runs ({} ms); checks after a fix compare with this median",
                fmt_ms(base),
                runs.len(),
                runs_text(&runs)
            ));
        }
    }
    for cond in &p.expect {
        let c = Condition::parse(cond, PROBE_METRICS, false).map_err(anyhow::Error::msg)?;
        if let Condition::Compare {
            metric, op, value, ..
        } = c
        {
            let Some(actual) = report.values.get(metric.as_str()).copied() else {
                passed = false;
                detail.push_str(&format!(
                    "\n  not met: {cond} ({metric} was not measured: the consumer did not reach \
                     the end of the topic)"
                ));
                continue;
            };
            if !Condition::holds(&op, actual, value) {
                passed = false;
                detail.push_str(&format!(
                    "\n  not met: {cond} (measured {})",
                    fmt_num(actual)
                ));
            }
        }
    }
    Ok((passed, detail.trim_end().to_owned()))
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Produces (with the probe's settings and faults), then consumes what is there.
///
/// # Errors
/// A client that cannot be created.
pub async fn run_probe(env: &mut LabEnv, p: &ProbeSpec) -> anyhow::Result<ProbeReport> {
    let mut report = ProbeReport::default();
    let base = client_config(env, Security::Auto, None, None);
    let run: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_007);
    let mut producer_config = base.clone();
    producer_config
        // Statistics carry the broker's throttle time (quota evidence for the student).
        .set("statistics.interval.ms", "100")
        .set(
            "acks",
            if p.acks == "all" {
                "-1"
            } else {
                p.acks.as_str()
            },
        )
        .set(
            "enable.idempotence",
            if p.idempotence { "true" } else { "false" },
        )
        .set("message.timeout.ms", p.message_timeout_ms.to_string())
        .set("linger.ms", "1")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "200");
    if let Some(t) = p.request_timeout_ms {
        // librdkafka's client-side wait for an answer is socket.timeout.ms;
        // request.timeout.ms is the broker-side ack timeout.
        producer_config
            .set("request.timeout.ms", t.to_string())
            .set("socket.timeout.ms", t.to_string());
    }
    if !p.idempotence {
        // Several requests in flight, as a default producer has.
        producer_config.set("max.in.flight.requests.per.connection", "5");
    }
    if p.transactional {
        producer_config
            .set("enable.idempotence", "true")
            .set("transactional.id", format!("kgate-lab-probe-{run}"));
    }
    let recorder = Recorder::default();
    let producer: FutureProducer<Recorder> = producer_config
        .create_with_context(recorder.clone())
        .context("cannot create the probe producer")?;
    if p.transactional {
        producer
            .init_transactions(Duration::from_secs(10))
            .context("the probe producer cannot start its transactions")?;
        producer
            .begin_transaction()
            .context("the probe producer cannot begin a transaction")?;
    }
    for i in 0..p.warmup {
        let value = format!("warmup:{run}:{i}");
        let key = format!("key-{}", i % 8);
        let ack = producer
            .send_result(FutureRecord::to(&p.topic).key(&key).payload(&value))
            .map_err(|(e, _)| anyhow::anyhow!("warm-up send failed: {e}"))?;
        let _ = tokio::time::timeout(Duration::from_secs(10), ack).await;
    }
    // Where each partition ends now: the probe's consumer starts there, caught up.
    let start = if p.consume_for_ms > 0 {
        end_offsets(&base, &p.topic)
    } else {
        BTreeMap::new()
    };
    env.timings().reset();
    for f in &p.faults {
        env.apply(f)?;
    }
    let fault_started = Instant::now();
    let mut acks = Vec::with_capacity(p.count);
    for i in 0..p.count {
        let value = format!("{run}:{i}");
        let key = format!("key-{}", i % 8);
        let record = FutureRecord::to(&p.topic).key(&key).payload(&value);
        let sent = Instant::now();
        match producer.send_result(record) {
            // Each acknowledgement is timed when it arrives, not when it is looked at.
            Ok(ack) => acks.push((
                i,
                sent,
                tokio::spawn(async move { (ack.await, Instant::now()) }),
            )),
            Err((e, _)) => {
                *report.errors.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    let mut latencies = Vec::new();
    let mut by_partition: BTreeMap<i32, Vec<Duration>> = BTreeMap::new();
    let mut acked = BTreeSet::new();
    let mut failed = 0usize;
    let mut pending = acks.into_iter();
    let mut faults_cleared = p.faults.is_empty();
    loop {
        if !faults_cleared && fault_started.elapsed() >= Duration::from_millis(p.fault_for_ms) {
            clear_faults(env, &p.faults)?;
            faults_cleared = true;
        }
        let Some((i, sent, ack)) = pending.next() else {
            break;
        };
        let mut ack = ack;
        let joined = loop {
            if faults_cleared {
                break (&mut ack).await;
            }
            match tokio::time::timeout(Duration::from_millis(50), &mut ack).await {
                Ok(r) => break r,
                Err(_) => {
                    if fault_started.elapsed() >= Duration::from_millis(p.fault_for_ms) {
                        clear_faults(env, &p.faults)?;
                        faults_cleared = true;
                    }
                }
            }
        };
        let Ok((result, done)) = joined else {
            failed += 1;
            continue;
        };
        match result {
            Ok(Ok(delivery)) => {
                let took = done.saturating_duration_since(sent);
                latencies.push(took);
                by_partition
                    .entry(delivery.partition)
                    .or_default()
                    .push(took);
                acked.insert(i as u64);
            }
            Ok(Err((e, _))) => {
                failed += 1;
                *report.errors.entry(e.to_string()).or_default() += 1;
            }
            Err(_) => failed += 1,
        }
    }
    if !faults_cleared {
        clear_faults(env, &p.faults)?;
    }
    if p.transactional {
        if let Err(e) = producer.commit_transaction(Duration::from_secs(15)) {
            *report.errors.entry(format!("commit: {e}")).or_default() += 1;
        }
    }
    let leaders = partition_leaders(producer.client(), &p.topic);
    // Two more statistics intervals, so the windows with the last answers are counted.
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Per broker: the client's round trip (librdkafka) against the broker's own time (kgate).
    let client_side = recorder
        .brokers
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default();
    let gateway_side: BTreeMap<i32, f64> = env
        .timings()
        .summary()
        .into_iter()
        .filter(|t| t.api == 0)
        .map(|t| (t.broker, t.broker_p99_ms))
        .collect();
    let mut ids: BTreeSet<i32> = client_side.keys().copied().collect();
    ids.extend(gateway_side.keys().copied());
    ids.extend(leaders.values().copied().filter(|l| *l >= 0));
    for id in ids {
        let c = client_side.get(&id).copied().unwrap_or_default();
        let rtt = c.rtt_p99_us as f64 / 1000.0;
        let broker = gateway_side.get(&id).copied().unwrap_or(0.0);
        let throttle = c.throttle_ms as f64;
        report.brokers.push(BrokerEvidence {
            broker: id,
            leads: leaders
                .iter()
                .filter(|(_, l)| **l == id)
                .map(|(p, _)| *p)
                .collect(),
            rtt_ms: rtt,
            broker_ms: broker,
            throttle_ms: throttle,
            network_ms: (rtt - broker - throttle).max(0.0),
            queue_ms: c.queue_p99_us as f64 / 1000.0,
        });
    }
    report.health = Some(env.health.clone());
    report
        .values
        .insert("isr_shrinks", env.health.isr_shrinks as f64);
    report
        .values
        .insert("under_replicated", env.health.under_replicated as f64);
    for (partition, mut lat) in by_partition {
        lat.sort();
        let p99 = lat
            .get(((lat.len() as f64 - 1.0) * 0.99).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let leader = leaders
            .get(&partition)
            .map_or_else(|| "?".to_owned(), |l| l.to_string());
        report.partitions.push(format!(
            "partition {partition} (leader broker {leader}): {} acked, p99 {p99:.0} ms",
            lat.len()
        ));
    }
    drop(producer);
    latencies.sort();
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies
            .get(idx.min(latencies.len() - 1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    report.values.insert("produced", p.count as f64);
    report.values.insert("acked", acked.len() as f64);
    report.values.insert("failed", failed as f64);
    report.values.insert("p50_ms", pct(0.5).round());
    report.values.insert("p99_ms", pct(0.99).round());
    report.p99_exact_ms = (!latencies.is_empty()).then(|| pct(0.99));
    report.values.insert("max_ms", pct(1.0).round());
    report.values.insert(
        "throttle_ms",
        recorder
            .throttle_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0) as f64,
    );
    if p.consume_for_ms > 0 {
        let (counts, others, end, lag) = consume_run(
            &base,
            &p.topic,
            run,
            p,
            (env.consumers.max(1), env.reads_handle()),
            &start,
        )
        .await?;
        report.lag = lag;
        let consumed: usize = counts.values().sum();
        let distinct = counts.len();
        let lost = acked.iter().filter(|i| !counts.contains_key(i)).count();
        report.values.insert("consumed", consumed as f64);
        report.values.insert("distinct", distinct as f64);
        report
            .values
            .insert("duplicates", consumed.saturating_sub(distinct) as f64);
        let read = (consumed + others) as i64;
        let lag = (end - read).max(0);
        report.values.insert("lag", lag as f64);
        // Missing records only count as lost once the consumer has read everything.
        if lag == 0 {
            report.values.insert("lost", lost as f64);
        }
    }
    for (code, reason) in recorder
        .errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default()
    {
        let key = match code {
            Some(c) => format!("{c:?}: {}", first_line(&reason)),
            None => first_line(&reason).to_owned(),
        };
        *report.errors.entry(key).or_default() += 1;
    }
    Ok(report)
}

fn clear_faults(env: &mut LabEnv, faults: &[crate::lab::FaultSpec]) -> anyhow::Result<()> {
    for f in faults {
        if let Some(u) = f.undo() {
            env.apply(&u)?;
            env.faults
                .retain(|d| d != &f.describe() && d != &u.describe());
        }
    }
    Ok(())
}

/// What [`consume_run`] found: the count of each of this run's message numbers, the number of
/// other records read, the topic's total record count, and the lag left per partition.
type Consumed = (BTreeMap<u64, usize>, usize, i64, BTreeMap<i32, i64>);

/// Reads the topic from `start` (each partition's end before the probe produced, so the
/// consumer was caught up) with the probe's processing time, with `consumers` consumers
/// sharing the partitions (as a consumer group spreads them).
async fn consume_run(
    base: &ClientConfig,
    topic: &str,
    run: u64,
    p: &ProbeSpec,
    (consumers, reads): (usize, Arc<crate::env::ReadMeter>),
    start: &BTreeMap<i32, i64>,
) -> anyhow::Result<Consumed> {
    let probe_consumer = |k: usize| -> anyhow::Result<StreamConsumer> {
        base.clone()
            .set("group.id", format!("kgate-lab-probe-{run}-{k}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .context("cannot create the probe consumer")
    };
    let first = probe_consumer(0)?;
    let all = partitions(&first, topic);
    let mut ends = BTreeMap::new();
    for part in &all {
        let (lo, hi) = tokio::task::block_in_place(|| {
            first.fetch_watermarks(topic, *part, Duration::from_secs(5))
        })
        .unwrap_or((0, 0));
        let from = start.get(part).copied().unwrap_or(lo).max(lo);
        ends.insert(*part, (hi - from).max(0));
    }
    drop(first);
    let end: i64 = ends.values().sum();
    let deadline = Instant::now() + Duration::from_millis(p.consume_for_ms);
    let mut tasks = Vec::new();
    for k in 0..consumers.min(all.len().max(1)) {
        // Assigned partitions, not a group subscription: no group join to wait for.
        let mine: Vec<i32> = all
            .iter()
            .copied()
            .filter(|part| (*part as usize) % consumers == k)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let consumer = probe_consumer(k)?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for part in &mine {
            let offset = match start.get(part) {
                Some(o) => rdkafka::Offset::Offset(*o),
                None => rdkafka::Offset::Beginning,
            };
            assignment
                .add_partition_offset(topic, *part, offset)
                .context("cannot assign the probe consumer")?;
        }
        consumer
            .assign(&assignment)
            .context("cannot assign the probe consumer")?;
        let want: i64 = mine.iter().filter_map(|part| ends.get(part)).sum();
        let prefix = format!("{run}:");
        let processing = p.processing_ms;
        let reads = reads.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
            let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
            let mut others = 0usize;
            let mut read = 0i64;
            loop {
                if read >= want {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(left, consumer.recv()).await {
                    Ok(Ok(msg)) => {
                        read += 1;
                        *per_partition.entry(msg.partition()).or_default() += 1;
                        reads.add(msg.topic(), msg.partition(), 1);
                        let number = msg
                            .payload()
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.strip_prefix(&prefix))
                            .and_then(|n| n.parse::<u64>().ok());
                        match number {
                            Some(n) => *counts.entry(n).or_default() += 1,
                            None => others += 1,
                        }
                        if processing > 0 {
                            tokio::time::sleep(Duration::from_millis(processing)).await;
                        }
                    }
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(_) => break,
                }
            }
            (counts, others, per_partition)
        }));
    }
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    let mut others = 0;
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    for t in tasks {
        let (c, o, r) = t.await.context("a probe consumer failed")?;
        for (n, k) in c {
            *counts.entry(n).or_default() += k;
        }
        others += o;
        for (part, k) in r {
            *read.entry(part).or_default() += k;
        }
    }
    let lag = ends
        .iter()
        .map(|(part, e)| (*part, (e - read.get(part).copied().unwrap_or(0)).max(0)))
        .collect();
    Ok((counts, others, end, lag))
}

/// The high watermark of each partition of `topic` (empty if the cluster does not answer).
fn end_offsets(base: &ClientConfig, topic: &str) -> BTreeMap<i32, i64> {
    let Ok(consumer) = base.create::<StreamConsumer>() else {
        return BTreeMap::new();
    };
    tokio::task::block_in_place(|| {
        partitions(&consumer, topic)
            .into_iter()
            .filter_map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .ok()
                    .map(|(_, hi)| (p, hi))
            })
            .collect()
    })
}

fn partitions(consumer: &StreamConsumer, topic: &str) -> Vec<i32> {
    let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    md.topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect()
}

fn sim_metric(s: &kgate_sim::ServiceReport, metric: &str) -> f64 {
    match metric {
        "produced" => s.produced as f64,
        "acked" => s.acked as f64,
        "delivered" => s.delivered as f64,
        "throttled" => s.throttled as f64,
        "retries" => s.retries as f64,
        "redeliveries" => s.redeliveries as f64,
        "duplicated" => s.duplicated.count as f64,
        "reordered" => s.reordered.count as f64,
        "lost" => s.lost.count as f64,
        "failed" => s.failed.count as f64,
        "dead_lettered" => s.dead_lettered.count as f64,
        "pending" => s.pending as f64,
        "latency_p50_ms" => s.latency.p50_ms,
        "latency_p99_ms" => s.latency.p99_ms,
        "ack_p99_ms" => s.ack_latency.p99_ms,
        "cost_month_usd" => s.cost.month_usd,
        "peak_lag" => s.samples.iter().map(|x| x.lag_messages).max().unwrap_or(0) as f64,
        "peak_under_replicated" => s
            .samples
            .iter()
            .map(|x| x.under_replicated)
            .max()
            .unwrap_or(0) as f64,
        _ => f64::NAN,
    }
}

/// The service with the highest (or lowest) value of `metric` in a report; `None` when two
/// services share it (a question about it would have two right answers).
pub fn sim_pick(report: &kgate_sim::Report, max: bool, metric: &str) -> Option<String> {
    let mut values: Vec<(f64, &str)> = report
        .services
        .iter()
        .map(|s| (sim_metric(s, metric), s.service.name()))
        .filter(|(v, _)| !v.is_nan())
        .collect();
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    if max {
        values.reverse();
    }
    match values.as_slice() {
        [(best, name), (second, _), ..] if best != second => Some((*name).to_owned()),
        [(_, name)] => Some((*name).to_owned()),
        _ => None,
    }
}

fn sim_check(
    scenario: &str,
    extra: &str,
    expect: &[String],
    show: bool,
    hide_faults: bool,
    evidence: &mut Evidence,
) -> anyhow::Result<(bool, String)> {
    let text = if extra.is_empty() {
        scenario.to_owned()
    } else {
        format!("{scenario}\n{extra}\n")
    };
    let report = match evidence.cache.get(&text) {
        Some(r) => r.clone(),
        None => {
            let sc = kgate_sim::Scenario::from_toml_str(&text, "lab scenario")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let r = sc.run().map_err(|e| anyhow::anyhow!("{e}"))?;
            evidence.cache.insert(text.clone(), r.clone());
            r
        }
    };
    let mut detail = String::new();
    if hide_faults {
        for s in &report.services {
            let values: Vec<String> = SIM_METRICS
                .iter()
                .filter(|m| !matches!(**m, "cost_month_usd" | "dead_lettered" | "redeliveries"))
                .map(|m| format!("{m}={}", fmt_num(sim_metric(s, m))))
                .collect();
            detail.push_str(&format!("{}: {}\n", s.service.name(), values.join(" ")));
        }
    } else {
        if show {
            // The table ends with the causal trails.
            detail.push_str(&report.to_table());
        }
        for trail in report.trails.iter().filter(|_| !show) {
            detail.push_str(&format!(
                "\ncausal trail ({}): {}",
                trail.service.name(),
                trail.summary()
            ));
        }
    }
    let mut passed = true;
    for cond in expect {
        let c = Condition::parse(cond, SIM_METRICS, true).map_err(anyhow::Error::msg)?;
        let (ok, seen) = match &c {
            Condition::Compare {
                service,
                metric,
                op,
                value,
            } => {
                let kind = crate::lab::service_name(service.as_deref().unwrap_or("kafka"))
                    .map_err(anyhow::Error::msg)?;
                let actual = report
                    .service(kind)
                    .map_or(f64::NAN, |s| sim_metric(s, metric));
                (Condition::holds(op, actual, *value), fmt_num(actual))
            }
            Condition::Pick {
                max,
                metric,
                service,
            } => {
                let got = sim_pick(&report, *max, metric)
                    .unwrap_or_else(|| "a tie between services".into());
                (&got == service, got)
            }
        };
        if !ok {
            passed = false;
            detail.push_str(&format!("\n  not met: {cond} (got {seen})"));
        }
    }
    evidence.sim = Some(report);
    Ok((passed, detail.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_is_the_median_of_its_runs_and_one_slow_run_does_not_set_it() {
        assert_eq!(median(&[2.0, 40.0, 1.5, 2.5, 2.0]), Some(2.0));
        assert_eq!(median(&[1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_limit_is_the_largest_of_its_printed_terms() {
        // A 2 ms baseline: 2× is 4 ms, noise allows 12 ms; a 52 ms p99 is a symptom.
        let l = baseline_limit(2.0, 2.0, &[1.8, 2.0, 2.0, 2.1, 2.4]);
        assert_eq!(
            (l.scaled, l.slowest, l.noise, l.ms()),
            (4.0, 2.4, 12.0, 12.0)
        );
        assert!(52.0 > l.ms());
        // The healthy cluster's own slowest run is not a symptom.
        assert_eq!(
            baseline_limit(2.0, 2.0, &[1.8, 2.0, 2.0, 2.1, 30.0]).ms(),
            30.0
        );
        // Above the noise, 2× the median decides (a progress file without runs: no slowest).
        assert_eq!(baseline_limit(2.0, 40.0, &[]).ms(), 80.0);
    }

    fn report() -> kgate_sim::Report {
        kgate_sim::Scenario::from_toml_str(
            r#"
name = "tiny"
seed = 1
duration = "2s"
services = ["kafka", "pubsub"]
[workload]
kind = "telemetry"
rate = "100/s"
"#,
            "tiny.toml",
        )
        .unwrap()
        .run()
        .unwrap()
    }

    #[test]
    fn a_tie_has_no_pick() {
        let r = report();
        assert_eq!(
            sim_pick(&r, true, "throttled"),
            None,
            "both throttle nothing"
        );
        assert_eq!(
            sim_pick(&r, false, "latency_p99_ms").as_deref(),
            Some("kafka")
        );
    }

    #[test]
    fn sim_conditions_are_evaluated() {
        let mut evidence = Evidence::default();
        let scenario = r#"
name = "tiny"
seed = 1
duration = "2s"
services = ["kafka", "pubsub"]
[workload]
kind = "telemetry"
rate = "100/s"
"#;
        let (ok, _) = sim_check(
            scenario,
            "",
            &[
                "kafka.lost == 0".into(),
                "min(latency_p99_ms) == kafka".into(),
            ],
            false,
            false,
            &mut evidence,
        )
        .unwrap();
        assert!(ok);
        let (ok, detail) = sim_check(
            scenario,
            "",
            &["kafka.lost > 0".into()],
            false,
            false,
            &mut evidence,
        )
        .unwrap();
        assert!(!ok);
        assert!(
            detail.contains("not met: kafka.lost > 0 (got 0)"),
            "{detail}"
        );
        assert_eq!(evidence.cache.len(), 1, "the same scenario runs once");
    }

    #[test]
    fn errors_are_classified_as_a_student_reads_them() {
        assert!(matches!(
            classify_code(Some(RDKafkaErrorCode::TopicAuthorizationFailed), "x"),
            Some(Seen::Denied(_))
        ));
        assert!(matches!(
            classify_code(Some(RDKafkaErrorCode::Authentication), "x"),
            Some(Seen::Rejected(_))
        ));
        assert!(classify_code(Some(RDKafkaErrorCode::MessageTimedOut), "x").is_none());
    }
}
