//! The lab file: a TOML document with Markdown narrative that an instructor writes without Rust.
//!
//! # Format
//! ```toml
//! id = "secure-the-cluster"          # the name used on the command line
//! title = "Secure the cluster"
//! summary = "one line for `kgate lab list`"
//! minutes = 25
//! intro = """Markdown shown before the first step."""
//!
//! [environment]                      # the live environment every step runs against
//! brokers = 3
//! topics = [{ name = "telemetry", partitions = 3, messages = 20 }]
//!
//! [[variant]]                        # optional: hidden faults, one chosen by the lab's seed
//! name = "slow-broker"
//! fault = [{ kind = "round-trip-time", broker = 2, ms = 400 }]
//! trail = { fault = ["slow broker"], symptom = ["late"], category = "technology" }
//! answers = { whys = "..." }         # the solution of each question for this variant
//! accept = { fix = ["broker 2"] }    # what a `text` answer must mention for this variant
//!
//! [[step]]
//! title = "Make a CA and a server certificate"
//! text = """Markdown: what happens and what to do."""
//! commands = ["kgate certs init --dir certs", { cmd = "kgate users add ...", stdin = "pw" }]
//! files = [{ path = "kgate.toml", content = "..." }]   # written by the solution
//! hints = ["..."]
//! explain = "why the solution works"
//! fault = [{ kind = "broker-down", broker = 2 }]        # applied when the step starts
//! # other kinds: broker-up, round-trip-time, partition-leader, move-leaders, request-errors,
//! # clear-request-errors (the cluster's hooks); gateway (a `kgate fault add` rule, e.g.
//! # { kind = "gateway", rule = "latency=300ms principal=User:telemetry" }), clear-gateway
//! variant_faults = true                                  # the hidden variant's faults start here
//! check = [{ kind = "file", path = "certs/ca.pem" }]
//! question = [{ id = "q1", kind = "choice", prompt = "...", options = ["a", "b"], answer = "b" }]
//! ```
//! The gateway of the environment is configured by `kgate.toml` in the lab's directory, with
//! the same keys as `kgate proxy --config` (`cert`, `key`, `users`, `policy`, `super_users`,
//! `audit_log`, ...); without that file it serves PLAINTEXT with no authentication, like the
//! insecure cluster it fronts.
//!
//! Mistakes are reported with the file, the line, the step and the field
//! ([`LabError`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// A commented lab file that validates and passes `--auto`: what `kgate lab new` writes.
pub const TEMPLATE: &str = include_str!("../templates/new-lab.toml");

/// The labs shipped in the binary: (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "secure-the-cluster.toml",
        include_str!("../scenarios/secure-the-cluster.toml"),
    ),
    (
        "cloud-services.toml",
        include_str!("../scenarios/cloud-services.toml"),
    ),
    (
        "delivery-guarantees.toml",
        include_str!("../scenarios/delivery-guarantees.toml"),
    ),
    (
        "delayed-sensor-data.toml",
        include_str!("../scenarios/delayed-sensor-data.toml"),
    ),
    (
        "troubleshooting-catalogue.toml",
        include_str!("../scenarios/troubleshooting-catalogue.toml"),
    ),
];

/// A mistake in a lab file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError {
    /// The file as the user named it (`labs/scenarios/x.toml` or `<embedded x.toml>`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based step number and title, when the mistake is inside a step.
    pub step: Option<(usize, String)>,
    /// The dotted field, such as `check[2].expect`.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some((n, title)) = &self.step {
            if title.is_empty() {
                write!(f, ": step {n}")?;
            } else {
                write!(f, ": step {n} ({title:?})")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LabError {}

/// One lab.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// The name used on the command line.
    pub id: String,
    /// The title.
    pub title: String,
    /// One line for `kgate lab list`.
    pub summary: String,
    /// About how long the lab takes in class.
    #[serde(default)]
    pub minutes: u32,
    /// Markdown shown before the first step.
    #[serde(default)]
    pub intro: String,
    /// The live environment.
    #[serde(default)]
    pub environment: Environment,
    /// Hidden faults, one chosen by the seed.
    #[serde(default, rename = "variant")]
    pub variants: Vec<Variant>,
    /// The steps, in order.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
    /// Where the lab came from, for messages.
    #[serde(skip)]
    pub source: String,
}

/// The embedded cluster every step runs against.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Brokers in the cluster.
    #[serde(default = "default_brokers")]
    pub brokers: i32,
    /// Topics created at start, with messages already in them.
    #[serde(default)]
    pub topics: Vec<TopicSpec>,
}

fn default_brokers() -> i32 {
    3
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            brokers: default_brokers(),
            topics: Vec::new(),
        }
    }
}

/// A topic of the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partitions.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Messages written to it when the environment starts.
    #[serde(default)]
    pub messages: usize,
}

fn default_partitions() -> i32 {
    3
}

/// A hidden fault chosen by the lab's seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// A short name, revealed at the end.
    pub name: String,
    /// What the instructor should know.
    #[serde(default)]
    pub summary: String,
    /// Faults injected into the live environment.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    /// The causal trail answers are graded against.
    pub trail: TrailSpec,
    /// The solution of each question for this variant, by question id.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// What a text question's answer must mention for this variant, by question id (replaces
    /// the question's own `accept`: a fix is right only for the fault that was hidden).
    #[serde(default)]
    pub accept: BTreeMap<String, Vec<String>>,
    /// Overrides of the simulator scenario used by `sim` checks of steps with
    /// `variant_faults`: TOML lines appended to the check's scenario.
    #[serde(default)]
    pub sim: String,
    /// Consumer processing time per message in probes of steps with `variant_faults`
    /// (a slow consumer: the consumer side has no cluster fault hook).
    #[serde(default)]
    pub processing_ms: Option<u64>,
    /// The solution's commands for this variant in the step with `variant_fix = true`:
    /// the fix a student applies (`kgate lab cluster move-leader ...`).
    #[serde(default)]
    pub fix: Vec<CommandSpec>,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The title.
    pub title: String,
    /// Markdown: what happens and what to do.
    pub text: String,
    /// The solution's commands (`kgate ...`), run in the lab directory.
    #[serde(default)]
    pub commands: Vec<CommandSpec>,
    /// Files the solution writes in the lab directory.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Hints, shown one at a time.
    #[serde(default)]
    pub hints: Vec<String>,
    /// Why the solution works.
    #[serde(default)]
    pub explain: String,
    /// Faults applied to the live environment when the step starts.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    /// The hidden variant's faults start with this step.
    #[serde(default)]
    pub variant_faults: bool,
    /// The hidden variant's faults are repaired when this step starts (the fix is applied).
    #[serde(default)]
    pub variant_fixed: bool,
    /// The student fixes the hidden fault in this step: its solution is the variant's `fix`.
    #[serde(default)]
    pub variant_fix: bool,
    /// Is the step done?
    #[serde(default, rename = "check")]
    pub checks: Vec<CheckSpec>,
    /// Questions graded by the runner.
    #[serde(default, rename = "question")]
    pub questions: Vec<Question>,
    /// The causal trail of this step's fault, for root-cause questions.
    #[serde(default)]
    pub trail: Option<TrailSpec>,
}

/// A command of a solution: `kgate ...`, optionally with standard input.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// `"kgate certs init --dir certs"`
    Plain(String),
    /// `{ cmd = "kgate users add alice --users users.toml --password-stdin", stdin = "pw" }`
    WithInput {
        /// The command line.
        cmd: String,
        /// Standard input.
        stdin: String,
    },
}

impl CommandSpec {
    /// The command line.
    pub fn line(&self) -> &str {
        match self {
            CommandSpec::Plain(c) | CommandSpec::WithInput { cmd: c, .. } => c,
        }
    }

    /// Standard input, if any.
    pub fn stdin(&self) -> Option<&str> {
        match self {
            CommandSpec::Plain(_) => None,
            CommandSpec::WithInput { stdin, .. } => Some(stdin),
        }
    }

    /// How a student types it in a shell.
    pub fn display(&self) -> String {
        match self.stdin() {
            Some(input) => format!("echo -n '{input}' | {}", self.line()),
            None => self.line().to_owned(),
        }
    }
}

/// A file the solution writes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Relative to the lab directory.
    pub path: String,
    /// The whole content.
    pub content: String,
}

/// A fault for the live cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultSpec {
    /// A broker refuses connections (-1: all).
    BrokerDown {
        /// Broker id (1-based).
        broker: i32,
    },
    /// A broker accepts connections again (-1: all).
    BrokerUp {
        /// Broker id.
        broker: i32,
    },
    /// Added round-trip time on one broker's responses.
    RoundTripTime {
        /// Broker id.
        broker: i32,
        /// Milliseconds (0 removes it).
        ms: u64,
    },
    /// Moves the leadership of a partition.
    PartitionLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// New leader (broker id).
        broker: i32,
    },
    /// Moves the leadership of every partition of a topic to the next broker (a leader
    /// election everywhere; clients with an old view write to the wrong broker).
    MoveLeaders {
        /// Topic.
        topic: String,
    },
    /// The next requests of an API fail with these Kafka error codes.
    RequestErrors {
        /// `produce`, `fetch`, `metadata`, ... or the API key number.
        api: String,
        /// Kafka error codes, one per request.
        errors: Vec<i16>,
    },
    /// Removes injected errors of an API.
    ClearRequestErrors {
        /// As in `request-errors`.
        api: String,
    },
    /// A fault rule in the gateway, in `kgate fault add` form: latency, a Kafka error or a
    /// disconnect for one principal, client id, topic or API
    /// (`rule = "latency=300ms topic=telemetry api=produce"`).
    Gateway {
        /// The rule.
        rule: String,
    },
    /// Removes the gateway fault rule(s) a `gateway` fault with this text added.
    RemoveGateway {
        /// The rule, as written in the `gateway` fault.
        rule: String,
    },
    /// Removes every gateway fault rule.
    ClearGateway,
}

impl FaultSpec {
    /// The fault that repairs this one, if it has one.
    pub fn undo(&self) -> Option<FaultSpec> {
        match self {
            FaultSpec::BrokerDown { broker } => Some(FaultSpec::BrokerUp { broker: *broker }),
            FaultSpec::RoundTripTime { broker, .. } => Some(FaultSpec::RoundTripTime {
                broker: *broker,
                ms: 0,
            }),
            FaultSpec::RequestErrors { api, .. } => {
                Some(FaultSpec::ClearRequestErrors { api: api.clone() })
            }
            FaultSpec::Gateway { rule } => Some(FaultSpec::RemoveGateway { rule: rule.clone() }),
            _ => None,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            FaultSpec::BrokerDown { broker } => format!("broker {broker} goes down"),
            FaultSpec::BrokerUp { broker } => format!("broker {broker} comes back"),
            FaultSpec::RoundTripTime { broker, ms } => {
                format!("broker {broker} answers {ms} ms late")
            }
            FaultSpec::PartitionLeader {
                topic,
                partition,
                broker,
            } => format!("leader of {topic}-{partition} moves to broker {broker}"),
            FaultSpec::MoveLeaders { topic } => {
                format!("the leader of every partition of {topic} moves to another broker")
            }
            FaultSpec::RequestErrors { api, errors } => {
                format!("the next {} {api} requests fail ({errors:?})", errors.len())
            }
            FaultSpec::ClearRequestErrors { api } => format!("{api} errors cleared"),
            FaultSpec::Gateway { rule } => format!("the gateway injects: {rule}"),
            FaultSpec::RemoveGateway { rule } => format!("the gateway stops injecting: {rule}"),
            FaultSpec::ClearGateway => "the gateway's fault rules are cleared".into(),
        }
    }
}

/// Kafka API key of a name used in lab files.
pub fn api_key(name: &str) -> Option<i16> {
    if let Ok(n) = name.parse::<i16>() {
        return Some(n);
    }
    Some(match name.to_ascii_lowercase().replace('_', "-").as_str() {
        "produce" => 0,
        "fetch" => 1,
        "list-offsets" => 2,
        "metadata" => 3,
        "offset-commit" => 8,
        "offset-fetch" => 9,
        "find-coordinator" => 10,
        "join-group" => 11,
        "heartbeat" => 12,
        "leave-group" => 13,
        "sync-group" => 14,
        "init-producer-id" => 22,
        _ => return None,
    })
}

/// What a client check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// It works.
    Ok,
    /// Authenticated, but an ACL says no (`TOPIC_AUTHORIZATION_FAILED`, ...).
    Denied,
    /// The connection is refused before any request: TLS or authentication failed.
    Rejected,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Ok => "ok",
            Expect::Denied => "denied",
            Expect::Rejected => "rejected",
        })
    }
}

/// How a check's client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// What the gateway currently serves (from `kgate.toml`).
    #[default]
    Auto,
    /// No TLS, no SASL.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// TLS and SASL.
    SaslSsl,
}

/// A check: is the step done?
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CheckSpec {
    /// A file exists in the lab directory (and contains a string).
    File {
        /// Shown to the student.
        #[serde(default)]
        name: Option<String>,
        /// Relative path.
        path: String,
        /// A string the file must contain.
        #[serde(default)]
        contains: Option<String>,
    },
    /// A `kgate` command succeeds (or fails) and prints something.
    Command {
        /// Shown to the student.
        #[serde(default)]
        name: Option<String>,
        /// The command line.
        cmd: String,
        /// Standard input.
        #[serde(default)]
        stdin: Option<String>,
        /// `true`: exit status 0 expected; `false`: non-zero expected.
        #[serde(default = "yes")]
        success: bool,
        /// A string the output (stdout and stderr) must contain.
        #[serde(default)]
        output_contains: Option<String>,
    },
    /// A real consumer reads through the gateway.
    Consume {
        /// Shown to the student.
        #[serde(default)]
        name: Option<String>,
        /// Topic.
        topic: String,
        /// Consumer group.
        #[serde(default)]
        group: Option<String>,
        /// SASL user.
        #[serde(default)]
        user: Option<String>,
        /// SASL password.
        #[serde(default)]
        password: Option<String>,
        /// SASL mechanism.
        #[serde(default)]
        mechanism: Option<String>,
        /// How to connect.
        #[serde(default)]
        security: Security,
        /// Messages that must arrive when `expect = "ok"`.
        #[serde(default = "one")]
        min: usize,
        /// What should happen.
        expect: Expect,
        /// The Kafka error a denial must carry (`TOPIC_AUTHORIZATION_FAILED`). Without a
        /// `group`, a denied consumer reads by assignment, so no group is ever asked for and
        /// the topic's own Read is what gets tested.
        #[serde(default)]
        error: Option<String>,
    },
    /// A real producer writes through the gateway.
    Produce {
        /// Shown to the student.
        #[serde(default)]
        name: Option<String>,
        /// Topic.
        topic: String,
        /// SASL user.
        #[serde(default)]
        user: Option<String>,
        /// SASL password.
        #[serde(default)]
        password: Option<String>,
        /// SASL mechanism.
        #[serde(default)]
        mechanism: Option<String>,
        /// How to connect.
        #[serde(default)]
        security: Security,
        /// Messages to write.
        #[serde(default = "five")]
        count: usize,
        /// What should happen.
        expect: Expect,
    },
    /// The gateway's audit log has a line whose fields equal these.
    Audit {
        /// Shown to the student.
        #[serde(default)]
        name: Option<String>,
        /// Field → value, e.g. `{ principal = "User:marketing", decision = "DENY" }`.
        fields: BTreeMap<String, String>,
    },
    /// A measured run of real clients through the gateway, with conditions on what it saw.
    Probe(ProbeSpec),
    /// A simulator run with conditions on its report.
    Sim {
        /// Shown to the student.
        #[serde(default)]
        name: Option<String>,
        /// The scenario, as a `kgate sim run` file's text.
        scenario: String,
        /// Conditions such as `"kafka.lost > 0"` or `"max(throttled) == eventhubs"`.
        #[serde(default)]
        expect: Vec<String>,
        /// Print the side-by-side table.
        #[serde(default = "yes")]
        show: bool,
        /// Print only the numbers, not the table's fault list or the causal trail (for labs
        /// whose fault is hidden).
        #[serde(default)]
        hide_faults: bool,
    },
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn five() -> usize {
    5
}

/// A measured client run: produce, optionally consume, report numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Shown to the student.
    #[serde(default)]
    pub name: Option<String>,
    /// Topic.
    pub topic: String,
    /// Messages to produce.
    #[serde(default = "default_probe_count")]
    pub count: usize,
    /// Producer `acks` (`0`, `1`, `all`).
    #[serde(default = "default_acks")]
    pub acks: String,
    /// `enable.idempotence`.
    #[serde(default)]
    pub idempotence: bool,
    /// Produce in one transaction (a `transactional.id`; implies idempotence). The embedded
    /// cluster only checks producer sequence numbers for transactional producers.
    #[serde(default)]
    pub transactional: bool,
    /// `request.timeout.ms`.
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// `message.timeout.ms`.
    #[serde(default = "default_message_timeout")]
    pub message_timeout_ms: u64,
    /// Messages produced and acknowledged before the faults, so the producer knows the
    /// partition leaders (a stale view is what some faults exploit).
    #[serde(default)]
    pub warmup: usize,
    /// Faults applied when producing starts and removed after `fault_for_ms`.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    /// How long the probe's faults last.
    #[serde(default)]
    pub fault_for_ms: u64,
    /// Consume afterwards: processing time per message.
    #[serde(default)]
    pub processing_ms: u64,
    /// Consume afterwards for at most this long (0: do not consume).
    #[serde(default)]
    pub consume_for_ms: u64,
    /// Conditions such as `"lost > 0"`, `"p99_ms >= 300"`, `"duplicates == 0"`.
    #[serde(default)]
    pub expect: Vec<String>,
    /// Show the evidence an operator reads: per broker the round trip split into broker
    /// time, network and throttle, the client's queue time; lag per partition; ISR changes.
    #[serde(default)]
    pub evidence: bool,
    /// This probe's p99 is the lab's baseline (kept in the progress file): the median of
    /// [`crate::check::BASELINE_RUNS`] runs' p99, the probe and produce-only repeats.
    #[serde(default)]
    pub baseline: bool,
    /// The check passes only if p99 (the median of [`crate::check::CHECK_RUNS`] runs) is
    /// within this factor of the baseline (`2.0`), or no slower than the baseline's slowest run.
    #[serde(default)]
    pub within_baseline: Option<f64>,
}

fn default_probe_count() -> usize {
    20
}
fn default_acks() -> String {
    "all".into()
}
fn default_message_timeout() -> u64 {
    10_000
}

/// Names a probe reports.
pub const PROBE_METRICS: &[&str] = &[
    "produced",
    "acked",
    "failed",
    "consumed",
    "distinct",
    "duplicates",
    "lost",
    "lag",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "throttle_ms",
    "isr_shrinks",
    "under_replicated",
];

/// Per-service metrics of a simulator report usable in `sim` conditions.
pub const SIM_METRICS: &[&str] = &[
    "produced",
    "acked",
    "delivered",
    "throttled",
    "retries",
    "redeliveries",
    "duplicated",
    "reordered",
    "lost",
    "failed",
    "dead_lettered",
    "pending",
    "latency_p50_ms",
    "latency_p99_ms",
    "ack_p99_ms",
    "cost_month_usd",
    "peak_lag",
    "peak_under_replicated",
];

/// A question graded by the runner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id (answers are stored under it).
    pub id: String,
    /// What kind of answer.
    pub kind: QuestionKind,
    /// The question.
    pub prompt: String,
    /// For `choice`: the options.
    #[serde(default)]
    pub options: Vec<String>,
    /// The solution (for `choice`: an option; for `text`: a model answer; for root-cause
    /// kinds: the model answer's lines).
    #[serde(default)]
    pub answer: Option<String>,
    /// For `text`: words, any of which makes the answer right (case-insensitive).
    #[serde(default)]
    pub accept: Vec<String>,
    /// For `choice` over services: the right option is computed from the step's `sim` check:
    /// `max(throttled)`, `min(latency_p99_ms)`, ...
    #[serde(default)]
    pub answer_from_sim: Option<String>,
}

/// Kinds of question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuestionKind {
    /// Pick one option.
    Choice,
    /// Free text graded by keywords.
    Text,
    /// 5 whys: one answer per line, from the problem down to the root cause.
    FiveWhys,
    /// Fishbone: lines `category: cause`.
    Fishbone,
    /// Fault tree: `top event = event AND|OR event ...`.
    FaultTree,
}

impl QuestionKind {
    /// Whether the answer is graded against a causal trail.
    pub fn is_root_cause(self) -> bool {
        matches!(
            self,
            QuestionKind::FiveWhys | QuestionKind::Fishbone | QuestionKind::FaultTree
        )
    }
}

/// A causal trail declared in a lab file: keywords for each stage of
/// fault → mechanism → metric → symptom, the fishbone category of the root cause and the
/// fault tree's gate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailSpec {
    /// The root cause: words a right answer uses.
    pub fault: Vec<String>,
    /// How the system reacted.
    #[serde(default)]
    pub mechanism: Vec<String>,
    /// What moved in the metrics.
    #[serde(default)]
    pub metric: Vec<String>,
    /// What users see.
    #[serde(default)]
    pub symptom: Vec<String>,
    /// Fishbone categories the root cause belongs under (any of them).
    #[serde(default)]
    pub category: Vec<String>,
    /// Fault tree gate joining the basic events (`AND` or `OR`).
    #[serde(default)]
    pub gate: Option<String>,
    /// Fault tree basic events: each a list of words, any of which names it.
    #[serde(default)]
    pub events: Vec<Vec<String>>,
}

/// Fishbone categories the runner accepts.
pub const FISHBONE_CATEGORIES: &[&str] = &[
    "people",
    "process",
    "technology",
    "equipment",
    "materials",
    "environment",
    "management",
    "configuration",
    "network",
    "disk",
    "clients",
    "quotas",
    "measurement",
];

// === loading ===

impl Lab {
    /// Parses and validates a lab file's text; `file` names it in messages.
    ///
    /// # Errors
    /// The first mistake, with file, line, step and field.
    pub fn parse(text: &str, file: &str) -> Result<Lab, LabError> {
        let mut lab: Lab = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| refine(text, s, e.message()));
            let line = offset.map(|o| line_of(text, o));
            let step = line.and_then(|l| step_at_line(text, l));
            let field = missing_field(e.message()).or_else(|| offset.and_then(|o| key_at(text, o)));
            LabError {
                file: file.to_owned(),
                line,
                step,
                field,
                message: e.message().trim().to_owned(),
            }
        })?;
        lab.source = file.to_owned();
        lab.validate()?;
        Ok(lab)
    }

    /// Reads a lab file from disk.
    ///
    /// # Errors
    /// The file cannot be read, or a mistake in it.
    pub fn load(path: &Path) -> Result<Lab, LabError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LabError {
            file: file.clone(),
            line: None,
            step: None,
            field: None,
            message: format!("cannot read it: {e}"),
        })?;
        Lab::parse(&text, &file)
    }

    /// Every embedded lab, in course order.
    ///
    /// # Errors
    /// A mistake in an embedded file (a bug caught by the tests).
    pub fn embedded() -> Result<Vec<Lab>, LabError> {
        EMBEDDED
            .iter()
            .map(|(name, text)| Lab::parse(text, &format!("<embedded {name}>")))
            .collect()
    }

    /// An embedded lab by id, or a lab file by path (anything with a `/` or ending `.toml`).
    ///
    /// # Errors
    /// No such lab, or a mistake in the file.
    pub fn find(name: &str) -> Result<Lab, LabError> {
        if name.ends_with(".toml") || name.contains('/') {
            return Lab::load(Path::new(name));
        }
        for lab in Lab::embedded()? {
            if lab.id == name {
                return Ok(lab);
            }
        }
        let ids: Vec<String> = EMBEDDED
            .iter()
            .map(|(n, _)| n.trim_end_matches(".toml").to_owned())
            .collect();
        Err(LabError {
            file: name.to_owned(),
            line: None,
            step: None,
            field: None,
            message: format!(
                "no such lab (the labs are: {}; or give the path of a lab file)",
                ids.join(", ")
            ),
        })
    }

    fn error(&self, step: Option<usize>, field: &str, message: String) -> LabError {
        let step = step.map(|i| {
            (
                i + 1,
                self.steps
                    .get(i)
                    .map(|s| s.title.clone())
                    .unwrap_or_default(),
            )
        });
        LabError {
            file: self.source.clone(),
            line: None,
            step,
            field: Some(field.to_owned()),
            message,
        }
    }

    /// Checks what serde cannot: references, names, conditions.
    ///
    /// # Errors
    /// The first mistake.
    pub fn validate(&self) -> Result<(), LabError> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.error(
                None,
                "id",
                format!("{:?} must be letters, digits and dashes", self.id),
            ));
        }
        if self.steps.is_empty() {
            return Err(self.error(None, "step", "a lab needs at least one [[step]]".into()));
        }
        if !(1..=5).contains(&self.environment.brokers) {
            return Err(self.error(
                None,
                "environment.brokers",
                format!("{} brokers: use 1 to 5", self.environment.brokers),
            ));
        }
        let topics: Vec<&str> = self
            .environment
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        for (i, t) in self.environment.topics.iter().enumerate() {
            if t.partitions < 1 {
                return Err(self.error(
                    None,
                    &format!("environment.topics[{i}].partitions"),
                    "must be at least 1".into(),
                ));
            }
        }
        for (v, variant) in self.variants.iter().enumerate() {
            for (f, fault) in variant.faults.iter().enumerate() {
                self.validate_fault(None, &format!("variant[{v}].fault[{f}]"), fault, &topics)?;
            }
            for (c, command) in variant.fix.iter().enumerate() {
                check_command_line(command.line())
                    .map_err(|m| self.error(None, &format!("variant[{v}].fix[{c}]"), m))?;
            }
            if variant.trail.fault.is_empty() {
                return Err(self.error(
                    None,
                    &format!("variant[{v}].trail.fault"),
                    "name the root cause with at least one keyword".into(),
                ));
            }
            for (id, words) in &variant.accept {
                let text_question = self
                    .steps
                    .iter()
                    .flat_map(|s| &s.questions)
                    .any(|q| &q.id == id && q.kind == QuestionKind::Text);
                if !text_question || words.is_empty() {
                    return Err(self.error(
                        None,
                        &format!("variant[{v}].accept.{id}"),
                        "give words for a `text` question of this lab".into(),
                    ));
                }
            }
        }
        for (s, step) in self.steps.iter().enumerate() {
            if (step.variant_faults || step.variant_fixed) && self.variants.is_empty() {
                return Err(self.error(
                    Some(s),
                    "variant_faults",
                    "the lab has no [[variant]] to inject".into(),
                ));
            }
            for (c, command) in step.commands.iter().enumerate() {
                check_command_line(command.line())
                    .map_err(|m| self.error(Some(s), &format!("commands[{c}]"), m))?;
            }
            for (f, fault) in step.faults.iter().enumerate() {
                self.validate_fault(Some(s), &format!("fault[{f}]"), fault, &topics)?;
            }
            for (c, check) in step.checks.iter().enumerate() {
                self.validate_check(s, c, check, &topics)?;
            }
            let mut ids = Vec::new();
            for (q, question) in step.questions.iter().enumerate() {
                let field = |name: &str| format!("question[{q}].{name}");
                if ids.contains(&question.id.as_str()) {
                    return Err(self.error(
                        Some(s),
                        &field("id"),
                        format!("{:?} is used twice in this step", question.id),
                    ));
                }
                ids.push(&question.id);
                match question.kind {
                    QuestionKind::Choice => {
                        if question.options.len() < 2 {
                            return Err(self.error(
                                Some(s),
                                &field("options"),
                                "a choice needs at least two options".into(),
                            ));
                        }
                        match (&question.answer, &question.answer_from_sim) {
                            (Some(a), None) => {
                                if !question.options.iter().any(|o| o == a) {
                                    return Err(self.error(
                                        Some(s),
                                        &field("answer"),
                                        format!("{a:?} is not one of the options"),
                                    ));
                                }
                            }
                            (None, Some(from)) => {
                                parse_pick(from).map_err(|m| {
                                    self.error(Some(s), &field("answer_from_sim"), m)
                                })?;
                                if !step
                                    .checks
                                    .iter()
                                    .any(|c| matches!(c, CheckSpec::Sim { .. }))
                                {
                                    return Err(self.error(
                                        Some(s),
                                        &field("answer_from_sim"),
                                        "the step has no `sim` check to take it from".into(),
                                    ));
                                }
                            }
                            _ => {
                                return Err(self.error(
                                    Some(s),
                                    &field("answer"),
                                    "give exactly one of `answer` or `answer_from_sim`".into(),
                                ))
                            }
                        }
                    }
                    QuestionKind::Text => {
                        if question.accept.is_empty() {
                            return Err(self.error(
                                Some(s),
                                &field("accept"),
                                "list the words a right answer contains".into(),
                            ));
                        }
                        if question.answer.is_none() {
                            return Err(self.error(
                                Some(s),
                                &field("answer"),
                                "give a model answer".into(),
                            ));
                        }
                    }
                    kind => {
                        let has_trail = step.trail.is_some()
                            || step
                                .checks
                                .iter()
                                .any(|c| matches!(c, CheckSpec::Sim { .. }))
                            || (!self.variants.is_empty()
                                && self.steps.iter().take(s + 1).any(|st| st.variant_faults));
                        if !has_trail {
                            return Err(self.error(
                                Some(s),
                                &field("kind"),
                                "a root-cause question needs a [step.trail], a `sim` check or \
                                 an injected [[variant]] to grade against"
                                    .into(),
                            ));
                        }
                        let solved = question.answer.is_some()
                            || (!self.variants.is_empty()
                                && self
                                    .variants
                                    .iter()
                                    .all(|v| v.answers.contains_key(&question.id)));
                        if !solved {
                            return Err(self.error(
                                Some(s),
                                &field("answer"),
                                format!(
                                    "give the model answer (or one per variant in \
                                     [[variant]].answers.{})",
                                    question.id
                                ),
                            ));
                        }
                        if kind == QuestionKind::FaultTree {
                            let trails = step
                                .trail
                                .iter()
                                .chain(self.variants.iter().map(|v| &v.trail));
                            for t in trails {
                                if t.gate.is_none() || t.events.is_empty() {
                                    return Err(self.error(
                                        Some(s),
                                        "trail.gate",
                                        "a fault-tree question needs the trail's `gate` and \
                                         `events`"
                                            .into(),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            if let Some(trail) = &step.trail {
                if trail.fault.is_empty() {
                    return Err(self.error(
                        Some(s),
                        "trail.fault",
                        "name the root cause with at least one keyword".into(),
                    ));
                }
                self.validate_trail(Some(s), "trail", trail)?;
            }
            if step.checks.is_empty() && step.questions.is_empty() {
                return Err(self.error(
                    Some(s),
                    "check",
                    "a step needs at least one check or question".into(),
                ));
            }
        }
        for (v, variant) in self.variants.iter().enumerate() {
            self.validate_trail(None, &format!("variant[{v}].trail"), &variant.trail)?;
        }
        Ok(())
    }

    fn validate_trail(&self, s: Option<usize>, field: &str, t: &TrailSpec) -> Result<(), LabError> {
        for c in &t.category {
            if !FISHBONE_CATEGORIES.contains(&c.as_str()) {
                return Err(self.error(
                    s,
                    &format!("{field}.category"),
                    format!(
                        "unknown category {c:?} (use {})",
                        FISHBONE_CATEGORIES.join(", ")
                    ),
                ));
            }
        }
        if let Some(g) = &t.gate {
            if g != "AND" && g != "OR" {
                return Err(self.error(
                    s,
                    &format!("{field}.gate"),
                    format!("{g:?}: use \"AND\" or \"OR\""),
                ));
            }
        }
        Ok(())
    }

    fn validate_fault(
        &self,
        s: Option<usize>,
        field: &str,
        fault: &FaultSpec,
        topics: &[&str],
    ) -> Result<(), LabError> {
        let brokers = self.environment.brokers;
        let broker_ok = |b: i32| b == -1 || (1..=brokers).contains(&b);
        match fault {
            FaultSpec::BrokerDown { broker }
            | FaultSpec::BrokerUp { broker }
            | FaultSpec::RoundTripTime { broker, .. } => {
                if !broker_ok(*broker) {
                    return Err(self.error(
                        s,
                        &format!("{field}.broker"),
                        format!(
                            "broker {broker}: the cluster has brokers 1 to {brokers} (-1: all)"
                        ),
                    ));
                }
            }
            FaultSpec::MoveLeaders { topic } => {
                if !topics.contains(&topic.as_str()) {
                    return Err(self.error(
                        s,
                        &format!("{field}.topic"),
                        format!("{topic:?} is not in [environment].topics"),
                    ));
                }
            }
            FaultSpec::PartitionLeader { topic, broker, .. } => {
                if !topics.contains(&topic.as_str()) {
                    return Err(self.error(
                        s,
                        &format!("{field}.topic"),
                        format!("{topic:?} is not in [environment].topics"),
                    ));
                }
                if !(1..=brokers).contains(broker) {
                    return Err(self.error(
                        s,
                        &format!("{field}.broker"),
                        format!("broker {broker}: the cluster has brokers 1 to {brokers}"),
                    ));
                }
            }
            FaultSpec::RequestErrors { api, .. } | FaultSpec::ClearRequestErrors { api } => {
                if api_key(api).is_none() {
                    return Err(self.error(
                        s,
                        &format!("{field}.api"),
                        format!("unknown API {api:?} (use produce, fetch, metadata, offset-commit, ...)"),
                    ));
                }
            }
            FaultSpec::Gateway { rule } => {
                let parsed = rule
                    .parse::<kgate_proxy::faults::FaultRule>()
                    .map_err(|e| {
                        self.error(s, &format!("{field}.rule"), format!("{rule:?}: {e}"))
                    })?;
                if let Some(t) = &parsed.topic {
                    if !topics.contains(&t.as_str()) {
                        return Err(self.error(
                            s,
                            &format!("{field}.rule"),
                            format!("topic {t:?} is not in [environment].topics"),
                        ));
                    }
                }
            }
            FaultSpec::RemoveGateway { .. } | FaultSpec::ClearGateway => {}
        }
        Ok(())
    }

    fn validate_check(
        &self,
        s: usize,
        c: usize,
        check: &CheckSpec,
        topics: &[&str],
    ) -> Result<(), LabError> {
        let field = |name: &str| format!("check[{c}].{name}");
        let topic_ok = |t: &str| -> Result<(), LabError> {
            if topics.contains(&t) {
                Ok(())
            } else {
                Err(self.error(
                    Some(s),
                    &field("topic"),
                    format!(
                        "{t:?} is not in [environment].topics ({})",
                        topics.join(", ")
                    ),
                ))
            }
        };
        match check {
            CheckSpec::File { path, .. } => {
                if Path::new(path).is_absolute() || path.contains("..") {
                    return Err(self.error(
                        Some(s),
                        &field("path"),
                        "must be relative to the lab directory".into(),
                    ));
                }
            }
            CheckSpec::Command { cmd, .. } => {
                check_command_line(cmd).map_err(|m| self.error(Some(s), &field("cmd"), m))?;
            }
            CheckSpec::Consume {
                topic,
                user,
                password,
                ..
            }
            | CheckSpec::Produce {
                topic,
                user,
                password,
                ..
            } => {
                topic_ok(topic)?;
                if user.is_some() != password.is_some() {
                    return Err(self.error(
                        Some(s),
                        &field("password"),
                        "give both `user` and `password`, or neither".into(),
                    ));
                }
            }
            CheckSpec::Audit { fields, .. } => {
                if fields.is_empty() {
                    return Err(self.error(
                        Some(s),
                        &field("fields"),
                        "name at least one field to match".into(),
                    ));
                }
            }
            CheckSpec::Probe(p) => {
                topic_ok(&p.topic)?;
                if !["0", "1", "all", "-1"].contains(&p.acks.as_str()) {
                    return Err(self.error(
                        Some(s),
                        &field("acks"),
                        format!("{:?}: use \"0\", \"1\" or \"all\"", p.acks),
                    ));
                }
                for (f, fault) in p.faults.iter().enumerate() {
                    self.validate_fault(Some(s), &field(&format!("fault[{f}]")), fault, topics)?;
                }
                if p.fault_for_ms == 0 && p.faults.iter().any(|f| f.undo().is_some()) {
                    return Err(self.error(
                        Some(s),
                        &field("fault_for_ms"),
                        "is 0, so the probe's faults are removed as soon as they start; \
                         set how long they last (e.g. fault_for_ms = 10000)"
                            .into(),
                    ));
                }
                for (e, cond) in p.expect.iter().enumerate() {
                    Condition::parse(cond, PROBE_METRICS, false)
                        .map_err(|m| self.error(Some(s), &field(&format!("expect[{e}]")), m))?;
                }
            }
            CheckSpec::Sim {
                scenario, expect, ..
            } => {
                kgate_sim::Scenario::from_toml_str(
                    scenario,
                    &format!("{} step {}", self.source, s + 1),
                )
                .map_err(|e| self.error(Some(s), &field("scenario"), e.to_string()))?;
                for (e, cond) in expect.iter().enumerate() {
                    Condition::parse(cond, SIM_METRICS, true)
                        .map_err(|m| self.error(Some(s), &field(&format!("expect[{e}]")), m))?;
                }
            }
        }
        Ok(())
    }

    /// The variant the seed picks, if the lab has any.
    pub fn variant(&self, seed: u64) -> Option<&Variant> {
        if self.variants.is_empty() {
            return None;
        }
        let n = self.variants.len() as u64;
        // A small mix so neighbouring seeds do not walk the variants in order.
        let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % n;
        self.variants.get(mixed as usize)
    }
}

/// `kgate` followed by arguments; nothing else runs.
fn check_command_line(line: &str) -> Result<(), String> {
    let words = split_words(line)?;
    match words.first().map(String::as_str) {
        Some("kgate") if words.len() > 1 => Ok(()),
        _ => Err(format!(
            "{line:?}: a lab command starts with `kgate` and names a subcommand"
        )),
    }
}

/// Splits a command line into words: spaces separate, '…' and "…" quote.
///
/// # Errors
/// An unclosed quote.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for ch in line.chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => word.push(ch),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                in_word = true;
            }
            None if ch.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(ch);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("{line:?}: unclosed quote"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `service.metric OP number`, `metric OP number` or `max(metric) == service`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A number compared.
    Compare {
        /// `kafka` in `kafka.lost > 0` (sim only).
        service: Option<String>,
        /// The metric.
        metric: String,
        /// `>`, `>=`, `<`, `<=`, `==`, `!=`.
        op: String,
        /// The number.
        value: f64,
    },
    /// The service with the highest (or lowest) value of a metric.
    Pick {
        /// `max` or `min`.
        max: bool,
        /// The metric.
        metric: String,
        /// The service expected.
        service: String,
    },
}

const OPS: [&str; 6] = [">=", "<=", "==", "!=", ">", "<"];

impl Condition {
    /// Parses a condition over `metrics`; `services` allows `service.metric` and picks.
    ///
    /// # Errors
    /// What is wrong, with the accepted names.
    pub fn parse(text: &str, metrics: &[&str], services: bool) -> Result<Condition, String> {
        let (left, op, right) = OPS
            .iter()
            .find_map(|op| {
                text.split_once(op)
                    .map(|(l, r)| (l.trim(), (*op).to_owned(), r.trim()))
            })
            .ok_or_else(|| format!("{text:?}: write `metric OP number`, e.g. \"lost > 0\""))?;
        let known = |m: &str| -> Result<(), String> {
            if metrics.contains(&m) {
                Ok(())
            } else {
                Err(format!(
                    "{text:?}: unknown metric {m:?} (use {})",
                    metrics.join(", ")
                ))
            }
        };
        if services {
            if let Some(inner) = left
                .strip_prefix("max(")
                .map(|r| (true, r))
                .or_else(|| left.strip_prefix("min(").map(|r| (false, r)))
            {
                let (max, rest) = inner;
                let metric = rest.trim_end_matches(')').trim();
                known(metric)?;
                if op != "==" {
                    return Err(format!("{text:?}: a pick compares with `==` a service"));
                }
                service_name(right).map_err(|e| format!("{text:?}: {e}"))?;
                return Ok(Condition::Pick {
                    max,
                    metric: metric.to_owned(),
                    service: right.to_owned(),
                });
            }
        }
        let (service, metric) = match left.split_once('.') {
            Some((svc, m)) if services => {
                service_name(svc).map_err(|e| format!("{text:?}: {e}"))?;
                (Some(svc.to_owned()), m)
            }
            _ if services => {
                return Err(format!(
                    "{text:?}: write `service.metric OP number`, e.g. \"kafka.lost == 0\""
                ))
            }
            _ => (None, left),
        };
        known(metric)?;
        let value: f64 = right
            .parse()
            .map_err(|_| format!("{text:?}: {right:?} is not a number"))?;
        Ok(Condition::Compare {
            service,
            metric: metric.to_owned(),
            op,
            value,
        })
    }

    /// Compares `actual` with the condition's number.
    pub fn holds(op: &str, actual: f64, value: f64) -> bool {
        match op {
            ">=" => actual >= value,
            "<=" => actual <= value,
            "==" => (actual - value).abs() < 1e-9,
            "!=" => (actual - value).abs() >= 1e-9,
            ">" => actual > value,
            "<" => actual < value,
            _ => false,
        }
    }
}

/// A simulator service by the name lab files use.
///
/// # Errors
/// An unknown name, with the known ones.
pub fn service_name(name: &str) -> Result<kgate_sim::ServiceKind, String> {
    kgate_sim::ServiceKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = kgate_sim::ServiceKind::ALL
                .iter()
                .map(|k| k.name())
                .collect();
            format!("unknown service {name:?} (use {})", names.join(", "))
        })
}

/// `max(metric)` / `min(metric)` of `answer_from_sim`.
///
/// # Errors
/// What is wrong.
pub fn parse_pick(text: &str) -> Result<(bool, String), String> {
    let (max, rest) = if let Some(r) = text.strip_prefix("max(") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("min(") {
        (false, r)
    } else {
        return Err(format!("{text:?}: write max(metric) or min(metric)"));
    };
    let metric = rest.trim_end_matches(')').trim();
    if !SIM_METRICS.contains(&metric) {
        return Err(format!(
            "{text:?}: unknown metric {metric:?} (use {})",
            SIM_METRICS.join(", ")
        ));
    }
    Ok((max, metric.to_owned()))
}

/// The name between the first pair of backquotes after `prefix` in a serde message.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix('`')?;
    Some(&rest[..rest.find('`')?])
}

fn missing_field(message: &str) -> Option<String> {
    quoted_after(message, "missing field ").map(str::to_owned)
}

/// serde reports errors inside internally tagged tables at the table's start; find the
/// offending value or key inside the span for a precise line and field.
fn refine(text: &str, span: std::ops::Range<usize>, message: &str) -> usize {
    let Some(region) = text.get(span.clone()) else {
        return span.start;
    };
    let needle = if let Some(v) = quoted_after(message, "unknown variant ") {
        format!("\"{v}\"")
    } else if let Some(f) = quoted_after(message, "unknown field ") {
        f.to_owned()
    } else {
        return span.start;
    };
    if let Some(i) = region.find(&needle) {
        return span.start + i;
    }
    // A `[[step.check]]` table: the span is its header; look in the table's own lines.
    let rest = text.get(span.start..).unwrap_or_default();
    let table_end = rest
        .match_indices("\n[")
        .map(|(i, _)| i)
        .find(|i| *i > 0)
        .unwrap_or(rest.len());
    rest.get(..table_end)
        .and_then(|t| t.find(&needle))
        .map_or(span.start, |i| span.start + i)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// The step a line falls in: the last `[[step]]` header before it.
fn step_at_line(text: &str, line: usize) -> Option<(usize, String)> {
    let mut step = None;
    let mut count = 0;
    let mut title = String::new();
    for (i, l) in text.lines().enumerate() {
        if i + 1 > line {
            break;
        }
        let t = l.trim();
        if t == "[[step]]" {
            count += 1;
            step = Some(count);
            title.clear();
        } else if t.starts_with("[[") && !t.starts_with("[[step.")
            || (t.starts_with('[') && !t.starts_with("[[") && !t.starts_with("[step"))
        {
            step = None;
        } else if step.is_some() && title.is_empty() {
            if let Some(v) = t
                .strip_prefix("title")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
            {
                title = v.trim().trim_matches('"').to_owned();
            }
        }
    }
    // The title may come after the error line; look ahead for it.
    if let Some(n) = step {
        if title.is_empty() {
            let mut seen = 0;
            let mut inside = false;
            for l in text.lines() {
                let t = l.trim();
                if t == "[[step]]" {
                    seen += 1;
                    inside = seen == n;
                } else if inside {
                    if let Some(v) = t
                        .strip_prefix("title")
                        .map(str::trim_start)
                        .and_then(|r| r.strip_prefix('='))
                    {
                        title = v.trim().trim_matches('"').to_owned();
                        break;
                    }
                }
            }
        }
        return Some((n, title));
    }
    None
}

/// The key written on the line holding `offset` (`expect` in `expect = "maybe"`).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let end = text
        .get(offset..)?
        .find('\n')
        .map_or(text.len(), |i| offset + i);
    let line = text.get(start..end)?.trim();
    // Inline tables: the key nearest before the offset.
    let before = text.get(start..offset)?;
    let candidate = before
        .rsplit([',', '{'])
        .next()
        .and_then(|seg| seg.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !k.contains(' '));
    candidate.or_else(|| {
        line.split_once('=')
            .map(|(k, _)| k.trim().to_owned())
            .filter(|k| !k.is_empty() && !k.starts_with('['))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
id = "mini"
title = "Mini"
summary = "a test lab"
[environment]
topics = [{ name = "t", partitions = 2, messages = 3 }]

[[step]]
title = "Look"
text = "Look around."
check = [{ kind = "file", path = "x" }]
"#;

    #[test]
    fn every_embedded_lab_parses_and_validates() {
        let labs = Lab::embedded().unwrap();
        assert_eq!(labs.len(), 5);
        for lab in labs {
            assert!(!lab.steps.is_empty(), "{}", lab.id);
        }
    }

    #[test]
    fn the_template_validates() {
        let lab = Lab::parse(TEMPLATE, "new-lab.toml").unwrap();
        assert_eq!(lab.id, "my-lab");
        assert_eq!(lab.steps.len(), 3);
    }

    #[test]
    fn parses_a_minimal_lab() {
        let lab = Lab::parse(MINIMAL, "mini.toml").unwrap();
        assert_eq!(lab.environment.brokers, 3);
        assert_eq!(lab.steps.len(), 1);
    }

    #[test]
    fn a_bad_value_names_file_line_step_and_field() {
        let text = MINIMAL.replace(
            r#"check = [{ kind = "file", path = "x" }]"#,
            "check = [{ kind = \"consume\", topic = \"t\",\n expect = \"maybe\" }]",
        );
        let err = Lab::parse(&text, "bad.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.toml:12: step 1 (\"Look\")"), "{msg}");
        assert!(msg.contains("field `expect`"), "{msg}");
        assert!(msg.contains("maybe"), "{msg}");
    }

    #[test]
    fn a_bad_value_in_a_check_table_names_its_line_and_field() {
        let text = MINIMAL.replace(
            r#"check = [{ kind = "file", path = "x" }]"#,
            "[[step.check]]\nkind = \"consume\"\ntopic = \"t\"\nexpect = \"maybe\"\n",
        );
        let err = Lab::parse(&text, "bad.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("bad.toml:14: step 1 (\"Look\"): field `expect`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = MINIMAL.replace("text = \"Look around.\"", "txet = \"Look around.\"");
        let err = Lab::parse(&text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("txet"), "{err}");
        assert!(err.contains("step 1"), "{err}");
    }

    #[test]
    fn a_semantic_mistake_names_step_and_field() {
        let text = MINIMAL.replace(
            r#"check = [{ kind = "file", path = "x" }]"#,
            r#"check = [{ kind = "consume", topic = "nope", expect = "ok" }]"#,
        );
        let err = Lab::parse(&text, "bad.toml").unwrap_err().to_string();
        assert_eq!(
            err,
            "bad.toml: step 1 (\"Look\"): field `check[0].topic`: \"nope\" is not in \
             [environment].topics (t)"
        );
    }

    #[test]
    fn a_bad_gateway_fault_names_step_field_and_fix() {
        let with = |rule: &str| {
            MINIMAL.replace(
                "text = \"Look around.\"",
                &format!("text = \"x\"\nfault = [{{ kind = \"gateway\", rule = \"{rule}\" }}]"),
            )
        };
        let err = Lab::parse(&with("latency=soon topic=t"), "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bad.toml: step 1 (\"Look\"): field `fault[0].rule`"),
            "{err}"
        );
        assert!(err.contains("write milliseconds (300ms)"), "{err}");
        let err = Lab::parse(&with("error=6 topic=nope"), "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"nope\" is not in [environment].topics"),
            "{err}"
        );
        Lab::parse(&with("latency=300ms topic=t api=produce"), "ok.toml").unwrap();
    }

    #[test]
    fn a_variant_accept_must_name_a_text_question() {
        let text = MINIMAL.replace(
            "[[step]]",
            "[[variant]]\nname = \"v\"\ntrail = { fault = [\"x\"] }\naccept = { nope = [\"y\"] }\n\n[[step]]",
        );
        let err = Lab::parse(&text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("field `variant[0].accept.nope`"), "{err}");
        assert!(err.contains("`text` question"), "{err}");
    }

    #[test]
    fn a_probe_fault_without_a_duration_is_refused() {
        let text = MINIMAL.replace(
            r#"check = [{ kind = "file", path = "x" }]"#,
            r#"check = [{ kind = "probe", topic = "t", fault = [{ kind = "gateway", rule = "error=6 api=produce" }] }]"#,
        );
        let err = Lab::parse(&text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("field `check[0].fault_for_ms`"), "{err}");
        assert!(err.contains("fault_for_ms = 10000"), "{err}");
        let ok = text.replace("}] }]", "}], fault_for_ms = 5000 }]");
        Lab::parse(&ok, "ok.toml").unwrap();
    }

    #[test]
    fn commands_must_be_kgate() {
        let text = MINIMAL.replace(
            "text = \"Look around.\"",
            "text = \"x\"\ncommands = [\"rm -rf /\"]",
        );
        let err = Lab::parse(&text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("field `commands[0]`"), "{err}");
    }

    #[test]
    fn conditions_parse() {
        assert_eq!(
            Condition::parse("lost > 0", PROBE_METRICS, false).unwrap(),
            Condition::Compare {
                service: None,
                metric: "lost".into(),
                op: ">".into(),
                value: 0.0
            }
        );
        assert!(Condition::parse("kafka.lost >= 1", SIM_METRICS, true).is_ok());
        assert!(Condition::parse("max(throttled) == kinesis", SIM_METRICS, true).is_ok());
        assert!(Condition::parse("kafka.nope > 1", SIM_METRICS, true).is_err());
        assert!(Condition::parse("lost", PROBE_METRICS, false).is_err());
    }

    #[test]
    fn splits_quoted_words() {
        assert_eq!(
            split_words("kgate acl add --topic 'a b' \"c\"").unwrap(),
            vec!["kgate", "acl", "add", "--topic", "a b", "c"]
        );
        assert!(split_words("kgate 'x").is_err());
    }

    #[test]
    fn seeds_pick_every_variant() {
        let text = format!(
            "{MINIMAL}\n{}",
            r#"
[[variant]]
name = "a"
trail = { fault = ["a"] }
[[variant]]
name = "b"
trail = { fault = ["b"] }
"#
        );
        let lab = Lab::parse(&text, "v.toml").unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            seen.insert(lab.variant(seed).unwrap().name.clone());
        }
        assert_eq!(seen.len(), 2);
    }
}
