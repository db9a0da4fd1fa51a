//! Faults the gateway injects on purpose: added latency, Kafka errors or dropped
//! connections for the requests of one principal, client id, topic or API.
//!
//! A teaching lab needs symptoms that real clients see (a slow producer, a partition that
//! answers `NOT_LEADER_OR_FOLLOWER`, a consumer whose connection keeps dropping) without
//! touching the cluster behind the gateway, and an operator needs the same to rehearse an
//! incident on one client while the others run normally. The gateway is the one place that
//! knows who sends each request, so the faults live here.
//!
//! A rule is one line of text, the same for the admin endpoint, `kgate fault` and lab files:
//! ```text
//! latency=300ms principal=User:alice
//! error=NOT_LEADER_OR_FOLLOWER topic=telemetry api=produce count=3
//! disconnect client-id=slow-consumer every=10
//! throttle=250ms principal=User:batch api=produce
//! ```
//! The table is empty unless someone fills it; an empty table costs one atomic load per
//! request.
//!
//! # Layout
//! - this file: [`FaultRule`] (parsing, matching), [`FaultTable`] (the live rules);
//! - [`inject`]: what an injected error looks like for each API.

pub mod inject;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// Longest latency a rule may add: a fault that holds a connection for minutes is a mistake.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);
/// Most rules in force at once.
pub const MAX_RULES: usize = 256;

/// What a matching request suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Its response is held back this long (later responses on the connection wait too, as
    /// Kafka answers a connection's requests in order).
    Latency(Duration),
    /// It fails with this Kafka error code. A produce is not written; for other APIs the
    /// broker's answer is replaced by the error. Without `api`, only Produce and Fetch.
    Error(i16),
    /// Its connection is closed before it is forwarded.
    Disconnect,
    /// A broker quota: the response is held back this long and says so in its
    /// `throttle_time_ms` (Produce and Fetch), so clients count it as throttling.
    Throttle(Duration),
}

/// One fault: an effect and the requests it applies to.
#[derive(Debug)]
pub struct FaultRule {
    /// Set by the table when the rule is added.
    pub id: u64,
    /// What happens.
    pub effect: Effect,
    /// Only this principal (`User:alice`).
    pub principal: Option<String>,
    /// Only requests with this client id.
    pub client_id: Option<String>,
    /// Only requests that name this topic.
    pub topic: Option<String>,
    /// Only this API.
    pub api: Option<ApiKey>,
    /// Only every n-th matching request (1: all of them).
    pub every: u64,
    /// Applies this many times, then the rule is removed; `None`: until removed.
    pub count: Option<u64>,
    seen: AtomicU64,
    applied: AtomicU64,
}

/// Why a rule's text was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RuleError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError(msg.into()))
}

/// The APIs an error rule without `api` applies to.
pub const DEFAULT_ERROR_APIS: &[ApiKey] = &[ApiKey::Produce, ApiKey::Fetch];

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// An API by its Kafka name in any spelling (`produce`, `ListOffsets`, `list-offsets`) or
/// its key number.
pub fn parse_api(name: &str) -> Option<ApiKey> {
    if let Ok(n) = name.parse::<i16>() {
        return ApiKey::try_from(n).ok();
    }
    let want = squash(name);
    (0..=i16::from(u8::MAX))
        .filter_map(|k| ApiKey::try_from(k).ok())
        .find(|k| squash(&format!("{k:?}")) == want)
}

/// A Kafka error by its name in any spelling (`NOT_LEADER_OR_FOLLOWER`,
/// `NotLeaderOrFollower`) or its code; 0 (no error) is refused.
pub fn parse_error(name: &str) -> Option<i16> {
    if let Ok(n) = name.parse::<i16>() {
        return match ResponseError::try_from_code(n) {
            Some(ResponseError::Unknown(_)) | None => None,
            Some(_) => Some(n),
        };
    }
    let want = squash(name);
    (-1..=200)
        .filter_map(ResponseError::try_from_code)
        .filter(|e| !matches!(e, ResponseError::Unknown(_)))
        .find(|e| squash(&e.to_string()) == want)
        .map(|e| e.code())
}

/// An API's name as rules write it (`list-offsets`).
pub fn api_name(api: ApiKey) -> String {
    let mut out = String::new();
    for (i, ch) in format!("{api:?}").chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// Kafka's name of an error code, as clients print it (`NOT_LEADER_OR_FOLLOWER`).
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => format!("error {code}"),
        Some(e) => {
            let mut out = String::new();
            for (i, ch) in e.to_string().chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        _ => None,
    }
}

const USAGE: &str = "write e.g. `latency=300ms principal=User:alice`, `throttle=250ms api=produce`, \
`error=NOT_LEADER_OR_FOLLOWER topic=orders api=produce count=3` or `disconnect client-id=app every=10`";

impl std::str::FromStr for FaultRule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Self, RuleError> {
        let mut effect = None;
        let mut rule = FaultRule {
            id: 0,
            effect: Effect::Disconnect,
            principal: None,
            client_id: None,
            topic: None,
            api: None,
            every: 1,
            count: None,
            seen: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        };
        let mut set_effect = |e: Effect| {
            if effect.replace(e).is_some() {
                return err("one effect per rule: latency, throttle, error or disconnect");
            }
            Ok(())
        };
        for word in text.split_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            let raw_value = value;
            let value = || -> Result<&str, RuleError> {
                match raw_value {
                    Some(v) if !v.is_empty() => Ok(v),
                    _ => err(format!("`{key}` needs a value ({key}=...)")),
                }
            };
            let duration = |v: &str| -> Result<Duration, RuleError> {
                let d = parse_duration(v).ok_or_else(|| {
                    RuleError(format!(
                        "{key}={v}: write milliseconds (300ms) or seconds (2s)"
                    ))
                })?;
                if d > MAX_LATENCY {
                    return err(format!("{key}={v}: at most {}s", MAX_LATENCY.as_secs()));
                }
                Ok(d)
            };
            match key {
                "latency" => set_effect(Effect::Latency(duration(value()?)?))?,
                "throttle" => set_effect(Effect::Throttle(duration(value()?)?))?,
                "error" => {
                    let v = value()?;
                    let code = parse_error(v).ok_or_else(|| {
                        RuleError(format!(
                            "error={v}: not a Kafka error; write its name (NOT_LEADER_OR_FOLLOWER) or code (6)"
                        ))
                    })?;
                    set_effect(Effect::Error(code))?;
                }
                "disconnect" => {
                    if raw_value.is_some() {
                        return err("`disconnect` takes no value");
                    }
                    set_effect(Effect::Disconnect)?;
                }
                "principal" => {
                    let v = value()?;
                    if !v.contains(':') {
                        return err(format!("principal={v}: write the type too (User:{v})"));
                    }
                    rule.principal = Some(v.to_owned());
                }
                "client-id" | "client_id" => rule.client_id = Some(value()?.to_owned()),
                "topic" => rule.topic = Some(value()?.to_owned()),
                "api" => {
                    let v = value()?;
                    rule.api = Some(parse_api(v).ok_or_else(|| {
                        RuleError(format!(
                            "api={v}: not a Kafka API (produce, fetch, metadata, ...)"
                        ))
                    })?);
                }
                "count" => {
                    let v = value()?;
                    match v.parse::<u64>() {
                        Ok(n) if n > 0 => rule.count = Some(n),
                        _ => return err(format!("count={v}: a number of requests, at least 1")),
                    }
                }
                "every" => {
                    let v = value()?;
                    match v.parse::<u64>() {
                        Ok(n) if n > 0 => rule.every = n,
                        _ => {
                            return err(format!(
                                "every={v}: a number, at least 1 (every=10: one request in ten)"
                            ))
                        }
                    }
                }
                _ => return err(format!("unknown word `{word}`: {USAGE}")),
            }
        }
        rule.effect = match effect {
            Some(e) => e,
            None => return err(format!("no effect: {USAGE}")),
        };
        if let Some(api) = rule.api {
            if crate::registry::answered_by_kgate(api) {
                return err(format!(
                    "api={}: kgate answers it itself, so no rule can touch it",
                    api_name(api)
                ));
            }
            if rule.topic.is_some() && !crate::registry::faults_by_topic(api) {
                return err(format!(
                    "topic= with api={}: its requests name no topic, so the rule would never apply",
                    api_name(api)
                ));
            }
        }
        if let (Effect::Error(_), Some(api)) = (rule.effect, rule.api) {
            if !crate::registry::error_apis().any(|a| a == api) {
                return err(format!(
                    "error faults apply to {}; not to {api:?}",
                    crate::registry::error_apis()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(rule)
    }
}

impl fmt::Display for FaultRule {
    /// The rule's canonical text (what [`FaultRule::from_str`](std::str::FromStr) reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.effect {
            Effect::Latency(d) => write!(f, "latency={}ms", d.as_millis())?,
            Effect::Throttle(d) => write!(f, "throttle={}ms", d.as_millis())?,
            Effect::Error(code) => write!(f, "error={}", error_name(code))?,
            Effect::Disconnect => f.write_str("disconnect")?,
        }
        if let Some(p) = &self.principal {
            write!(f, " principal={p}")?;
        }
        if let Some(c) = &self.client_id {
            write!(f, " client-id={c}")?;
        }
        if let Some(t) = &self.topic {
            write!(f, " topic={t}")?;
        }
        if let Some(a) = self.api {
            write!(f, " api={}", api_name(a))?;
        }
        if self.every > 1 {
            write!(f, " every={}", self.every)?;
        }
        if let Some(c) = self.count {
            write!(f, " count={c}")?;
        }
        Ok(())
    }
}

/// What a request is, for matching.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// `User:alice`.
    pub principal: &'a str,
    /// The API.
    pub api: ApiKey,
    /// The client id of the header, when a rule asked for it.
    pub client_id: Option<&'a str>,
    /// The topics the request names, when a rule asked for them.
    pub topics: Option<&'a [String]>,
    /// The request is about every topic (Metadata for all topics).
    pub all_topics: bool,
}

impl FaultRule {
    /// Does the rule's filter cover this request? (Its `every` and `count` are applied by
    /// the table.)
    fn covers(&self, r: &RequestFacts<'_>) -> bool {
        if self.principal.as_deref().is_some_and(|p| p != r.principal) {
            return false;
        }
        if self.api.is_some_and(|a| a != r.api) {
            return false;
        }
        if let (Effect::Error(_), None) = (self.effect, self.api) {
            // Without `api`, an error hits the data path only: failing Metadata or the group
            // protocol too would hide the symptom a lab wants to show behind a stalled client.
            if !DEFAULT_ERROR_APIS.contains(&r.api) {
                return false;
            }
        }
        if let Some(c) = &self.client_id {
            if r.client_id != Some(c.as_str()) {
                return false;
            }
        }
        if let Some(t) = &self.topic {
            if !r.all_topics && !r.topics.is_some_and(|ts| ts.iter().any(|x| x == t)) {
                return false;
            }
        }
        true
    }

    /// Requests this rule changed so far.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }
}

/// What the table decided for one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Close the connection (the id of the rule).
    pub disconnect: Option<u64>,
    /// Fail with this error, for these topics (`None`: the whole request).
    pub error: Option<(i16, Option<String>)>,
    /// Hold the response back this long.
    pub latency: Duration,
    /// Throttle like a quota: hold back and report this long in `throttle_time_ms`.
    pub throttle: Duration,
}

impl Verdict {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.disconnect.is_none()
            && self.error.is_none()
            && self.latency.is_zero()
            && self.throttle.is_zero()
    }
}

/// The rules in force, shared by every connection and changed live from the admin endpoint
/// or a lab.
#[derive(Debug, Default)]
pub struct FaultTable {
    rules: RwLock<Vec<Arc<FaultRule>>>,
    active: AtomicBool,
    next_id: AtomicU64,
    injected_latency: AtomicU64,
    injected_errors: AtomicU64,
    injected_disconnects: AtomicU64,
    injected_throttles: AtomicU64,
}

/// Requests a fault rule changed, by effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injected {
    /// Held back by a latency rule.
    pub latency: u64,
    /// Failed with an error.
    pub errors: u64,
    /// Whose connection was closed.
    pub disconnects: u64,
    /// Throttled.
    pub throttles: u64,
}

/// What a request must reveal before the table can decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some rule filters on the client id.
    pub client_id: bool,
    /// Some rule filters on topics.
    pub topics: bool,
}

impl FaultTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Any rule in force? One atomic load: the per-request fast path.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Adds a rule; returns its id.
    ///
    /// # Errors
    /// The table already holds [`MAX_RULES`].
    pub fn add(&self, mut rule: FaultRule) -> Result<u64, RuleError> {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        if rules.len() >= MAX_RULES {
            return err(format!(
                "{MAX_RULES} fault rules are in force already; remove some first"
            ));
        }
        rule.id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = rule.id;
        tracing::info!(id, rule = %rule, "fault rule added");
        rules.push(Arc::new(rule));
        self.active.store(true, Ordering::Release);
        Ok(id)
    }

    /// Removes one rule; `false` if no rule has this id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.active.store(!rules.is_empty(), Ordering::Release);
        let removed = rules.len() != before;
        if removed {
            tracing::info!(id, "fault rule removed");
        }
        removed
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let n = rules.len();
        rules.clear();
        self.active.store(false, Ordering::Release);
        if n > 0 {
            tracing::info!(rules = n, "fault rules cleared");
        }
        n
    }

    /// The rules in force, in the order they apply.
    pub fn rules(&self) -> Vec<Arc<FaultRule>> {
        self.rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One line per rule: `#id <rule> (applied N)`; a line saying so when there is none.
    pub fn render(&self) -> String {
        let rules = self.rules();
        if rules.is_empty() {
            return "no fault rules in force\n".into();
        }
        rules
            .iter()
            .map(|r| {
                let left = match r.count {
                    Some(c) => format!(", {} left", c.saturating_sub(r.applied())),
                    None => String::new(),
                };
                format!("#{} {r}   (applied {}{left})\n", r.id, r.applied())
            })
            .collect()
    }

    /// What a request must reveal for the rules that could apply to `api`.
    pub fn needs(&self, principal: &str, api: ApiKey) -> Needs {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        let mut needs = Needs::default();
        for r in rules.iter() {
            if r.principal.as_deref().is_some_and(|p| p != principal)
                || r.api.is_some_and(|a| a != api)
            {
                continue;
            }
            needs.client_id |= r.client_id.is_some();
            needs.topics |= r.topic.is_some();
        }
        needs
    }

    /// Decides what happens to one request and counts it: every matching rule adds its
    /// latency; the first matching error and any matching disconnect apply. Rules whose
    /// `count` is used up are removed.
    pub fn decide(&self, facts: &RequestFacts<'_>) -> Verdict {
        let mut verdict = Verdict::default();
        let mut spent = Vec::new();
        {
            let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
            // Disconnect rules first: a request whose connection is closed uses up no other
            // rule's count.
            let ordered = rules
                .iter()
                .filter(|r| r.effect == Effect::Disconnect)
                .chain(rules.iter().filter(|r| r.effect != Effect::Disconnect));
            for r in ordered {
                if verdict.disconnect.is_some() {
                    break;
                }
                if !r.covers(facts) {
                    continue;
                }
                if matches!(r.effect, Effect::Error(_)) && verdict.error.is_some() {
                    continue;
                }
                let seen = r.seen.fetch_add(1, Ordering::Relaxed) + 1;
                if seen % r.every != 0 {
                    continue;
                }
                if let Some(limit) = r.count {
                    let taken = r
                        .applied
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                            (n < limit).then_some(n + 1)
                        });
                    match taken {
                        Ok(n) if n + 1 == limit => spent.push(r.id),
                        Ok(_) => {}
                        Err(_) => continue,
                    }
                } else {
                    r.applied.fetch_add(1, Ordering::Relaxed);
                }
                match r.effect {
                    Effect::Latency(d) => {
                        verdict.latency = (verdict.latency + d).min(MAX_LATENCY);
                    }
                    Effect::Error(code) => verdict.error = Some((code, r.topic.clone())),
                    Effect::Disconnect => verdict.disconnect = Some(r.id),
                    Effect::Throttle(d) => verdict.throttle = verdict.throttle.max(d),
                }
            }
        }
        for id in spent {
            self.remove(id);
        }
        if verdict.disconnect.is_some() {
            self.injected_disconnects.fetch_add(1, Ordering::Relaxed);
        } else {
            if verdict.error.is_some() {
                self.injected_errors.fetch_add(1, Ordering::Relaxed);
            }
            if !verdict.latency.is_zero() {
                self.injected_latency.fetch_add(1, Ordering::Relaxed);
            }
            if !verdict.throttle.is_zero() {
                self.injected_throttles.fetch_add(1, Ordering::Relaxed);
            }
        }
        verdict
    }

    /// Requests changed so far, by effect.
    pub fn injected(&self) -> Injected {
        Injected {
            latency: self.injected_latency.load(Ordering::Relaxed),
            errors: self.injected_errors.load(Ordering::Relaxed),
            disconnects: self.injected_disconnects.load(Ordering::Relaxed),
            throttles: self.injected_throttles.load(Ordering::Relaxed),
        }
    }

    /// Prometheus lines for the admin endpoint.
    pub fn render_metrics(&self) -> String {
        let Injected {
            latency,
            errors,
            disconnects,
            throttles,
        } = self.injected();
        let rules = self.rules().len();
        format!(
            "# HELP kgate_faults_injected_total Requests changed by a fault rule, by effect.\n\
             # TYPE kgate_faults_injected_total counter\n\
             kgate_faults_injected_total{{effect=\"latency\"}} {latency}\n\
             kgate_faults_injected_total{{effect=\"error\"}} {errors}\n\
             kgate_faults_injected_total{{effect=\"disconnect\"}} {disconnects}\n\
             kgate_faults_injected_total{{effect=\"throttle\"}} {throttles}\n\
             # HELP kgate_fault_rules Fault rules in force.\n\
             # TYPE kgate_fault_rules gauge\n\
             kgate_fault_rules {rules}\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> FaultRule {
        s.parse().unwrap()
    }

    fn facts<'a>(principal: &'a str, api: ApiKey, topics: &'a [String]) -> RequestFacts<'a> {
        RequestFacts {
            principal,
            api,
            client_id: Some("app"),
            topics: Some(topics),
            all_topics: false,
        }
    }

    #[test]
    fn rules_read_back_as_written() {
        for text in [
            "latency=300ms principal=User:alice",
            "error=NOT_LEADER_OR_FOLLOWER topic=orders api=produce count=3",
            "disconnect client-id=app every=10",
            "latency=2000ms api=list-offsets",
            "throttle=250ms principal=User:batch api=produce",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
        assert_eq!(
            rule("latency=2s").effect,
            Effect::Latency(Duration::from_secs(2))
        );
        assert_eq!(
            rule("latency=250").effect,
            Effect::Latency(Duration::from_millis(250))
        );
        assert_eq!(rule("error=6").effect, Effect::Error(6));
        assert_eq!(rule("error=not-enough-replicas").effect, Effect::Error(19));
        assert_eq!(rule("error=RequestTimedOut").effect, Effect::Error(7));
        assert_eq!(
            rule("latency=1ms api=list-offsets").api,
            Some(ApiKey::ListOffsets)
        );
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
    }

    #[test]
    fn mistakes_are_named_with_the_fix() {
        let cases = [
            ("", "no effect"),
            ("principal=User:a", "no effect"),
            ("latency=3 minutes", "unknown word `minutes`"),
            ("latency=fast", "write milliseconds"),
            ("latency=61s", "at most 60s"),
            ("throttle=1h", "write milliseconds"),
            ("error=OOPS", "not a Kafka error"),
            ("error=0", "not a Kafka error"),
            ("error=9999", "not a Kafka error"),
            ("latency=1ms error=6", "one effect per rule"),
            ("disconnect=yes", "takes no value"),
            ("latency=1ms principal=alice", "User:alice"),
            ("latency=1ms api=frobnicate", "not a Kafka API"),
            ("error=6 api=create-topics", "error faults apply to Produce"),
            ("latency=1ms count=0", "at least 1"),
            ("latency=1ms every=x", "at least 1"),
            ("latency= ", "needs a value"),
            ("latency=1ms api=api-versions", "answers it itself"),
            ("error=6 topic=x api=heartbeat", "would never apply"),
            ("topic=", "needs a value"),
        ];
        for (text, want) in cases {
            let e = text.parse::<FaultRule>().unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn filters_select_the_requests() {
        let t = FaultTable::new();
        assert!(!t.is_active());
        t.add(rule("latency=100ms principal=User:alice")).unwrap();
        t.add(rule(
            "error=NOT_LEADER_OR_FOLLOWER topic=orders api=produce",
        ))
        .unwrap();
        assert!(t.is_active());
        let orders = ["orders".to_string()];
        let other = ["other".to_string()];
        let v = t.decide(&facts("User:alice", ApiKey::Produce, &orders));
        assert_eq!(v.latency, Duration::from_millis(100));
        assert_eq!(v.error, Some((6, Some("orders".into()))));
        let v = t.decide(&facts("User:bob", ApiKey::Produce, &other));
        assert!(v.is_empty(), "{v:?}");
        let v = t.decide(&facts("User:bob", ApiKey::Fetch, &orders));
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(
            t.injected(),
            Injected {
                latency: 1,
                errors: 1,
                ..Injected::default()
            }
        );
        assert_eq!(
            t.needs("User:bob", ApiKey::Produce),
            Needs {
                client_id: false,
                topics: true
            }
        );
        assert_eq!(t.needs("User:bob", ApiKey::Fetch), Needs::default());
    }

    #[test]
    fn error_rules_skip_apis_they_cannot_fail() {
        let t = FaultTable::new();
        t.add(rule("error=UNKNOWN_SERVER_ERROR")).unwrap();
        let v = t.decide(&facts("User:a", ApiKey::ApiVersions, &[]));
        assert!(v.is_empty());
        let v = t.decide(&facts("User:a", ApiKey::Metadata, &[]));
        assert!(v.is_empty(), "without api=, only the data path");
        let v = t.decide(&facts("User:a", ApiKey::Fetch, &[]));
        assert_eq!(v.error, Some((-1, None)));
        t.clear();
        t.add(rule("error=REBALANCE_IN_PROGRESS api=heartbeat"))
            .unwrap();
        let v = t.decide(&facts("User:a", ApiKey::Heartbeat, &[]));
        assert_eq!(v.error, Some((27, None)));
    }

    #[test]
    fn a_disconnect_uses_up_no_other_rule() {
        let t = FaultTable::new();
        t.add(rule("latency=5ms count=1")).unwrap();
        t.add(rule("disconnect count=1")).unwrap();
        let v = t.decide(&facts("User:a", ApiKey::Fetch, &[]));
        assert!(v.disconnect.is_some() && v.latency.is_zero(), "{v:?}");
        let v = t.decide(&facts("User:a", ApiKey::Fetch, &[]));
        assert_eq!(
            v.latency,
            Duration::from_millis(5),
            "the latency rule is still there"
        );
        assert!(!t.is_active());
    }

    #[test]
    fn count_and_every_are_honoured_then_the_rule_goes() {
        let t = FaultTable::new();
        let id = t.add(rule("disconnect every=2 count=2")).unwrap();
        let hits: Vec<bool> = (0..8)
            .map(|_| {
                t.decide(&facts("User:a", ApiKey::Fetch, &[]))
                    .disconnect
                    .is_some()
            })
            .collect();
        assert_eq!(hits, [false, true, false, true, false, false, false, false]);
        assert!(!t.is_active(), "spent rule {id} removed");
        assert!(t.render().contains("no fault rules"));
    }

    #[test]
    fn rules_are_removed_by_id_or_all_at_once() {
        let t = FaultTable::new();
        let a = t.add(rule("latency=5ms")).unwrap();
        let b = t.add(rule("latency=7ms topic=x")).unwrap();
        assert!(t.render().contains(&format!("#{b} latency=7ms topic=x")));
        assert!(t.remove(a));
        assert!(!t.remove(a));
        assert!(t.is_active());
        assert_eq!(t.clear(), 1);
        assert!(!t.is_active());
        for _ in 0..MAX_RULES {
            t.add(rule("latency=1ms")).unwrap();
        }
        assert!(t.add(rule("latency=1ms")).is_err());
    }

    #[test]
    fn latencies_add_up_to_the_cap() {
        let t = FaultTable::new();
        t.add(rule("latency=40s")).unwrap();
        t.add(rule("latency=40s principal=User:a")).unwrap();
        let v = t.decide(&facts("User:a", ApiKey::Fetch, &[]));
        assert_eq!(v.latency, MAX_LATENCY);
    }
}
