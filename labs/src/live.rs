//! The live view for the instructor and the class view, in the browser.
//!
//! - **Live view** of a running lab (`kgate lab run LAB --view 127.0.0.1:PORT`): brokers,
//!   partitions, leaders and in-sync replicas; per partition the produce rate (its high
//!   watermark, whoever writes) and the consume rate (records the lab's own probes and checks
//!   read: kgate does not count the records in a student's fetches); per broker kgate's p99
//!   for produce requests (the same figure on each partition it leads); consumer lag as the
//!   last probe left it, with its age; the faults in force (a hidden fault stays hidden until
//!   the instructor reveals it); the stream of authorization denials from the audit log; each
//!   step's check results. It also takes `kgate fault add --admin ADDR RULE` as the gateway's
//!   admin endpoint does.
//! - **Class view** (`kgate lab serve --listen 127.0.0.1:PORT`): it prints a class token, students
//!   run `kgate lab run LAB --class http://HOST:PORT --class-token TOKEN` (or the one URL
//!   `http://HOST:PORT/?token=TOKEN` it prints), and the page shows each student's progress per
//!   step, nothing else about their machine. Progress without the token is refused (401), with
//!   another token too (403): the class view may listen on the class's network, and whoever can
//!   reach it must not write into the projected page.
//!
//! Both are one page embedded in the binary (no CDN, works offline), updated by server-sent
//! events twice a second. The HTTP server is the same small one as kgate's admin endpoint: one
//! bounded request per connection, `/events` kept open.
//!
//! | request | does |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /events` | server-sent events: one JSON snapshot per update |
//! | `GET /state` | the current snapshot |
//! | `POST /reveal` | (live) shows the hidden fault |
//! | `GET`, `POST`, `DELETE /faults[/<id>]` | (live) the gateway's fault rules, as the admin endpoint; changes need its bearer token, in a 0600 file where `kgate fault --admin` looks |
//! | `POST /progress` | (class) a student's progress, JSON, with `Authorization: Bearer <class token>` |

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kgate_proxy::faults::{FaultRule, FaultTable};
use kgate_proxy::timings::Timings;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::env::{ClusterHealth, ReadMeter};

const LIVE_PAGE: &str = include_str!("../assets/live.html");
const CLASS_PAGE: &str = include_str!("../assets/class.html");
/// Largest request head and body the server reads.
const MAX_REQUEST: usize = 64 * 1024;
/// How often snapshots are pushed.
pub const PUSH_EVERY: Duration = Duration::from_millis(500);

/// Why the view cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The token file for fault changes cannot be written.
    #[error(transparent)]
    Token(#[from] kgate_proxy::admin_token::TokenError),
    /// The live view serves loopback only: the page shows the lab's internals.
    #[error("{0} is not a loopback address: the live view binds 127.0.0.1 or ::1 only")]
    NotLoopback(SocketAddr),
    /// A class token the instructor chose is too short to keep others out.
    #[error("the class token must be at least {0} characters, without spaces")]
    ShortToken(usize),
}

/// One check result, as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckView {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
}

/// One step of a lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct StepView {
    /// The title.
    pub title: String,
    /// `todo`, `current`, `done` or `failed`.
    pub state: String,
    /// The last check results (live view only; a student's progress carries none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckView>,
}

/// What the running lab tells its live view; the session updates it.
#[derive(Debug, Default)]
pub struct LabStatus {
    /// The lab's id.
    pub lab: String,
    /// Its steps.
    pub steps: Vec<StepView>,
    /// Faults in force, as `status` lists them (the hidden one as one line).
    pub faults: Vec<String>,
    /// What the hidden fault is (shown only once revealed).
    pub hidden: Vec<String>,
    /// Ids of the gateway rules the hidden fault added (masked until revealed).
    pub hidden_rules: Vec<u64>,
    /// Ids of every gateway rule the lab added: `DELETE /faults` leaves them.
    pub lab_rules: Vec<u64>,
    /// The instructor revealed the hidden fault.
    pub revealed: bool,
    /// Replication health as the lab models it.
    pub health: ClusterHealth,
    /// Consumer lag per `topic-partition` from the last probe.
    pub lag: BTreeMap<String, i64>,
    /// When the last probe measured `lag` (the page says how old the figure is).
    pub lag_at: Option<std::time::SystemTime>,
    /// The audit log, to stream its denials.
    pub audit_log: Option<PathBuf>,
}

/// The running lab's side of the live view.
#[derive(Debug)]
pub struct Live {
    /// Updated by the session.
    pub status: Mutex<LabStatus>,
    cluster: String,
    topics: Vec<String>,
    faults: Arc<FaultTable>,
    timings: Arc<Timings>,
    reads: Arc<ReadMeter>,
}

impl Live {
    /// The live state of a lab whose cluster is at `cluster` (bootstrap servers), from the
    /// lab environment's gateway faults, timings and read counts.
    pub fn new(
        cluster: String,
        topics: Vec<String>,
        faults: Arc<FaultTable>,
        (timings, reads): (Arc<Timings>, Arc<ReadMeter>),
    ) -> Self {
        Live {
            status: Mutex::new(LabStatus::default()),
            cluster,
            topics,
            faults,
            timings,
            reads,
        }
    }
}

/// A student's progress, as `--class` posts it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// The student's name.
    pub student: String,
    /// The lab.
    pub lab: String,
    /// Each step's state (no check details).
    pub steps: Vec<StepView>,
}

/// A running view server; dropping it does not stop it (it ends with the runtime), but
/// removes the live view's token file: keep it as long as the view should take changes.
#[derive(Debug)]
pub struct ViewServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The live view's token file, removed when this is dropped.
    token_file: Option<kgate_proxy::admin_token::StoredToken>,
}

enum Mode {
    /// The lab, its sampler, and the token fault changes need.
    Live(Arc<Live>, Arc<Mutex<Sampler>>, Arc<Mutex<String>>),
    /// The students' progress by name, and the class token their posts must carry.
    Class(Arc<Mutex<BTreeMap<String, Progress>>>, Arc<str>),
}

impl Clone for Mode {
    fn clone(&self) -> Self {
        match self {
            Mode::Live(l, s, t) => Mode::Live(l.clone(), s.clone(), t.clone()),
            Mode::Class(c, t) => Mode::Class(c.clone(), t.clone()),
        }
    }
}

/// Starts the live view of a running lab.
///
/// # Errors
/// The address is not loopback or cannot be bound.
pub async fn serve_live(addr: SocketAddr, live: Arc<Live>) -> Result<ViewServer, LiveError> {
    let token = Arc::new(Mutex::new(String::new()));
    let mut server = serve(addr, Mode::Live(live, Arc::default(), token.clone())).await?;
    // `kgate fault --admin` finds the token where it finds the gateway's.
    let written = kgate_proxy::admin_token::generate();
    server.token_file = Some(kgate_proxy::admin_token::store_owned(
        &token_path(server.addr.port()),
        &written,
    )?);
    if let Ok(mut t) = token.lock() {
        *t = written;
    }
    Ok(server)
}

/// Starts the class view. Unlike the live view it may listen beyond loopback when told to
/// (students' laptops post their progress to it; it shows progress per step and nothing else
/// about their machines), with a warning. Posts must carry `token` ([`class_token`] makes
/// one), so that reaching the port is not enough to write into the projected page.
///
/// # Errors
/// The address cannot be bound, or the token is shorter than 16 characters.
pub async fn serve_class(addr: SocketAddr, token: &str) -> Result<ViewServer, LiveError> {
    let min = kgate_proxy::admin_token::MIN_TOKEN;
    if token.trim().len() < min || token.trim() != token {
        return Err(LiveError::ShortToken(min));
    }
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the class view listens beyond loopback: anyone on the network can read the class's \
             progress; only holders of the class token can post it"
        );
    }
    serve(addr, Mode::Class(Arc::default(), Arc::from(token))).await
}

/// A new class token: 16 hex digits (64 random bits), short enough to read off a projector
/// and type, long enough that a guess is hopeless at one HTTP request per try.
pub fn class_token() -> String {
    kgate_proxy::admin_token::generate()
        .chars()
        .take(kgate_proxy::admin_token::MIN_TOKEN)
        .collect()
}

async fn serve(addr: SocketAddr, mode: Mode) -> Result<ViewServer, LiveError> {
    if matches!(mode, Mode::Live(..)) && !addr.ip().is_loopback() {
        return Err(LiveError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| LiveError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| LiveError::Bind { addr, source })?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mode = mode.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, mode).await {
                    tracing::debug!(error = %e, "live view connection");
                }
            });
        }
    });
    Ok(ViewServer {
        addr,
        token_file: None,
    })
}

struct Request {
    method: String,
    path: String,
    head: String,
    body: Vec<u8>,
}

/// Where `kgate fault --admin 127.0.0.1:PORT` looks for the token of the endpoint on `port`
/// (the same place as for the gateway's admin endpoint).
pub fn token_path(port: u16) -> PathBuf {
    kgate_proxy::admin_token::default_path(port)
}

fn authorized(head: &str, token: &str) -> bool {
    kgate_proxy::admin_token::bearer_matches(head, token)
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return Ok(None);
    }
    let mut body = buf.get(head_end..).unwrap_or_default().to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request body"))??;
        if n == 0 {
            break;
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        path,
        head,
        body,
    }))
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn text_plain() -> &'static str {
    "text/plain; charset=utf-8"
}

/// Whether a request comes from the live view's own page on loopback: its Host is a
/// loopback name, and a browser's Origin, if any, is that same host. A page of another site
/// (its own Origin) or reached through DNS rebinding (another Host) is refused.
fn from_own_page(head: &str) -> bool {
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    let Some(host) = header("host") else {
        return false;
    };
    let loopback = ["127.0.0.1:", "localhost:", "[::1]:"]
        .iter()
        .any(|p| host.starts_with(p));
    loopback && header("origin").is_none_or(|o| o == format!("http://{host}"))
}

async fn handle(mut stream: TcpStream, mode: Mode) -> std::io::Result<()> {
    let Some(req) = read_request(&mut stream).await? else {
        return respond(&mut stream, 400, "text/plain", "bad request\n").await;
    };
    let html = "text/html; charset=utf-8";
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    if let Mode::Live(_, _, token) = &mode {
        let changes_faults = req.path.starts_with("/faults") && req.method != "GET";
        let token = token.lock().map(|t| t.clone()).unwrap_or_default();
        if changes_faults && (token.is_empty() || !authorized(&req.head, &token)) {
            return respond(
                &mut stream,
                401,
                text_plain(),
                "changes need Authorization: Bearer <token> (kgate fault reads it from the token file)\n",
            )
            .await;
        }
    }
    // `?token=...` in the URL printed for students (and opened in a browser) is not a path.
    let path = req.path.split('?').next().unwrap_or_default();
    match (&mode, req.method.as_str(), path) {
        (Mode::Live(..), "GET", "/") => respond(&mut stream, 200, html, LIVE_PAGE).await,
        (Mode::Class(..), "GET", "/") => respond(&mut stream, 200, html, CLASS_PAGE).await,
        (_, "GET", "/state") => {
            let snap = snapshot(&mode).await;
            respond(&mut stream, 200, json, &snap).await
        }
        (_, "GET", "/events") => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        cache-control: no-store\r\nconnection: keep-alive\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            loop {
                let snap = snapshot(&mode).await;
                stream
                    .write_all(format!("data: {snap}\n\n").as_bytes())
                    .await?;
                stream.flush().await?;
                tokio::time::sleep(PUSH_EVERY).await;
            }
        }
        (Mode::Live(live, _, _), "POST", "/reveal") => {
            if !from_own_page(&req.head) {
                return respond(
                    &mut stream,
                    403,
                    text,
                    "reveal from the live view's own page (another site or host name is refused)\n",
                )
                .await;
            }
            if let Ok(mut s) = live.status.lock() {
                s.revealed = true;
            }
            respond(&mut stream, 200, text, "the hidden fault is shown\n").await
        }
        (Mode::Live(live, _, _), "GET", "/faults") => {
            let rules = visible_rules(live).join("\n");
            let body = if rules.is_empty() {
                "no fault rules in force\n".to_owned()
            } else {
                format!("{rules}\n")
            };
            respond(&mut stream, 200, text, &body).await
        }
        (Mode::Live(live, _, _), "POST", "/faults") => {
            let rule = String::from_utf8_lossy(&req.body).into_owned();
            match rule.parse::<FaultRule>() {
                Ok(rule) => {
                    let line = rule.to_string();
                    match live.faults.add(rule) {
                        Ok(id) => respond(&mut stream, 200, text, &format!("#{id} {line}\n")).await,
                        Err(e) => respond(&mut stream, 409, text, &format!("{e}\n")).await,
                    }
                }
                Err(e) => respond(&mut stream, 400, text, &format!("{e}\n")).await,
            }
        }
        (Mode::Live(live, _, _), "DELETE", "/faults") => {
            // Only the rules anyone added here: the lab's own (and hidden) faults stay.
            let keep = hidden_and_lab_rules(live);
            let mut n = 0;
            for r in live.faults.rules() {
                if !keep.contains(&r.id) && live.faults.remove(r.id) {
                    n += 1;
                }
            }
            respond(
                &mut stream,
                200,
                text,
                &format!("{n} fault rules removed\n"),
            )
            .await
        }
        (Mode::Live(live, _, _), "DELETE", p) if p.starts_with("/faults/") => {
            let id = p.trim_start_matches("/faults/").trim_start_matches('#');
            match id.parse::<u64>() {
                Ok(id) if !hidden_and_lab_rules(live).contains(&id) && live.faults.remove(id) => {
                    respond(
                        &mut stream,
                        200,
                        text,
                        &format!("fault rule #{id} removed\n"),
                    )
                    .await
                }
                _ => respond(&mut stream, 404, text, "no such fault rule of yours\n").await,
            }
        }
        (Mode::Class(class, token), "POST", "/progress") => {
            match class_auth(&req.head, token) {
                ClassAuth::Missing => {
                    return respond(
                        &mut stream,
                        401,
                        text,
                        "progress needs the class token: kgate lab run LAB --class URL \
                         --class-token TOKEN (the instructor's `kgate lab serve` prints both)\n",
                    )
                    .await
                }
                ClassAuth::Wrong => {
                    return respond(
                        &mut stream,
                        403,
                        text,
                        "this is not the class token: ask the instructor for the one \
                         `kgate lab serve` printed\n",
                    )
                    .await
                }
                ClassAuth::Granted => {}
            }
            match serde_json::from_slice::<Progress>(&req.body) {
                Ok(p) if !p.student.trim().is_empty() && p.student.len() <= 64 => {
                    if let Ok(mut c) = class.lock() {
                        if c.len() < 500 || c.contains_key(&p.student) {
                            c.insert(p.student.clone(), p);
                        }
                    }
                    respond(&mut stream, 200, text, "ok\n").await
                }
                _ => respond(&mut stream, 400, text, "expected a progress JSON\n").await,
            }
        }
        _ => respond(&mut stream, 404, text, "not found\n").await,
    }
}

/// What a progress post's `Authorization` header says.
#[derive(Debug, PartialEq, Eq)]
enum ClassAuth {
    /// The class token.
    Granted,
    /// No `Authorization` header: the student did not pass the token (401).
    Missing,
    /// Something else: another class's token or a guess (403).
    Wrong,
}

fn class_auth(head: &str, token: &str) -> ClassAuth {
    let has_header = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .any(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"));
    if !has_header {
        ClassAuth::Missing
    } else if kgate_proxy::admin_token::bearer_matches(head, token) {
        ClassAuth::Granted
    } else {
        ClassAuth::Wrong
    }
}

/// Ids of the rules the lab added (hidden or not): not the user's to remove or (hidden) see.
fn hidden_and_lab_rules(live: &Live) -> Vec<u64> {
    live.status
        .lock()
        .map(|s| {
            let mut ids = s.hidden_rules.clone();
            ids.extend(&s.lab_rules);
            ids
        })
        .unwrap_or_default()
}

/// The gateway's rules as the page shows them: the hidden fault's masked until revealed.
fn visible_rules(live: &Live) -> Vec<String> {
    let (hidden, revealed) = live
        .status
        .lock()
        .map(|s| (s.hidden_rules.clone(), s.revealed))
        .unwrap_or_default();
    live.faults
        .rules()
        .iter()
        .filter(|r| revealed || !hidden.contains(&r.id))
        .map(|r| format!("#{} {r}   (applied {})", r.id, r.applied()))
        .collect()
}

/// A per-second rate from a counter sampled now and then: the change since the previous
/// sample over the time between them. Samples closer than [`RateMeter::MIN_GAP`] keep the
/// last rate (two pages asking at once must not divide by almost nothing).
#[derive(Debug, Default)]
struct RateMeter {
    last: BTreeMap<(String, i32), (u64, Instant)>,
    rates: BTreeMap<(String, i32), f64>,
}

impl RateMeter {
    const MIN_GAP: Duration = Duration::from_millis(50);

    /// The rate of `key` given its counter `value` at `now`; 0 on the first sample, and a
    /// counter that went down (a restarted cluster) restarts the measurement.
    fn update(&mut self, key: &(String, i32), value: u64, now: Instant) -> f64 {
        let rate = match self.last.get(key) {
            Some((_, at)) if now.saturating_duration_since(*at) < Self::MIN_GAP => {
                return self.rates.get(key).copied().unwrap_or(0.0);
            }
            Some((prev, at)) if value >= *prev => {
                (value - prev) as f64 / now.saturating_duration_since(*at).as_secs_f64()
            }
            _ => 0.0,
        };
        self.last.insert(key.clone(), (value, now));
        self.rates.insert(key.clone(), rate);
        rate
    }
}

/// What the live view keeps between pushes: the rate meters, the audit log read so far, the
/// last denials, and the last snapshot (shared by pages asking at once).
#[derive(Debug, Default)]
struct Sampler {
    produced: RateMeter,
    consumed: RateMeter,
    audit_read: u64,
    denials: VecDeque<serde_json::Value>,
    cache: Option<(Instant, String)>,
}

/// One partition as the page shows it; each figure's name says what it measures.
#[derive(Serialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Records appended per second: the change of the high watermark (any producer,
    /// transaction markers included).
    produce_rate: f64,
    /// Records per second the lab's own probes and checks read.
    consume_rate: f64,
    /// Records the lab's probes and checks have read from it since the lab started.
    read_by_lab: u64,
    /// kgate's p99 for produce requests to this partition's leader (a broker figure, the
    /// same on each partition it leads); `None` before any produce request.
    leader_produce_p99_ms: Option<f64>,
    /// Consumer lag the last probe left (see `lag_age_s`).
    lag: Option<i64>,
    /// Records gone from the start of the partition: the embedded cluster keeps only the last
    /// 5 MB (or 100,000 batches) of each partition and drops older ones, where a real broker
    /// keeps 7 days by default. The page says so, lest a replay from offset 0 look like a loss.
    dropped: i64,
}

/// One broker as the page shows it.
#[derive(Serialize)]
struct BrokerRow {
    id: i32,
    up: bool,
    /// kgate's p99 for produce requests to this broker (arrival at kgate → answer leaving
    /// it), over its most recent requests since the last probe started.
    produce_p99_ms: Option<f64>,
    /// How many produce requests that p99 is over (the window holds the last 2048).
    produce_requests: u64,
}

async fn snapshot(mode: &Mode) -> String {
    match mode {
        Mode::Class(class, _) => {
            let students: Vec<Progress> = class
                .lock()
                .map(|c| c.values().cloned().collect())
                .unwrap_or_default();
            serde_json::json!({ "students": students }).to_string()
        }
        Mode::Live(live, sampler, _) => {
            // Several open pages share one sample per push interval.
            if let Ok(s) = sampler.lock() {
                if let Some((at, snap)) = &s.cache {
                    if at.elapsed() < PUSH_EVERY / 2 {
                        return snap.clone();
                    }
                }
            }
            let live2 = live.clone();
            let sampler2 = sampler.clone();
            let snap = tokio::task::spawn_blocking(move || live_snapshot(&live2, &sampler2))
                .await
                .unwrap_or_else(|_| "{}".into());
            if let Ok(mut s) = sampler.lock() {
                s.cache = Some((Instant::now(), snap.clone()));
            }
            snap
        }
    }
}

fn live_snapshot(live: &Live, sampler: &Mutex<Sampler>) -> String {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let status = match live.status.lock() {
        Ok(s) => (
            s.lab.clone(),
            s.steps.clone(),
            s.faults.clone(),
            s.hidden.clone(),
            s.revealed,
            s.health.clone(),
            s.lag.clone(),
            s.audit_log.clone(),
        ),
        Err(_) => return "{}".into(),
    };
    let (lab, steps, faults, hidden, revealed, health, lag, audit_log) = status;
    let lag_at = live.status.lock().ok().and_then(|s| s.lag_at);
    let consumer: Option<BaseConsumer> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &live.cluster)
        .set("log_level", "0")
        .create()
        .ok();
    let mut brokers = Vec::new();
    let mut rows = Vec::new();
    // Produce (API key 0) timings per broker; the window is since the last probe reset it.
    let timings: BTreeMap<i32, (f64, u64)> = live
        .timings
        .summary()
        .into_iter()
        .filter(|t| t.api == 0)
        .map(|t| (t.broker, (t.total_p99_ms, t.count)))
        .collect();
    let reads = live.reads.totals();
    if let Some(c) = &consumer {
        if let Ok(md) = c.fetch_metadata(None, Duration::from_secs(2)) {
            for b in md.brokers() {
                let t = timings.get(&b.id());
                brokers.push(BrokerRow {
                    id: b.id(),
                    up: !health.down.contains(&b.id()),
                    produce_p99_ms: t.map(|t| t.0),
                    produce_requests: t.map_or(0, |t| t.1),
                });
            }
            let now = Instant::now();
            let mut s = sampler.lock().ok();
            for t in md
                .topics()
                .iter()
                .filter(|t| live.topics.iter().any(|n| n == t.name()))
            {
                for p in t.partitions() {
                    let replicas: Vec<i32> = p.replicas().to_vec();
                    let isr: Vec<i32> = p
                        .isr()
                        .iter()
                        .copied()
                        .filter(|b| !health.down.contains(b))
                        .collect();
                    let marks = c
                        .fetch_watermarks(t.name(), p.id(), Duration::from_millis(500))
                        .ok();
                    let hi = marks.map(|(_, hi)| hi);
                    let dropped = marks.map_or(0, |(lo, _)| lo.max(0));
                    let key = (t.name().to_owned(), p.id());
                    let read = reads.get(&key).copied().unwrap_or(0);
                    let (mut produce_rate, mut consume_rate) = (0.0, 0.0);
                    if let Some(s) = s.as_mut() {
                        if let Some(hi) = hi.and_then(|h| u64::try_from(h).ok()) {
                            produce_rate = s.produced.update(&key, hi, now);
                        }
                        consume_rate = s.consumed.update(&key, read, now);
                    }
                    let tenth = |r: f64| (r * 10.0).round() / 10.0;
                    rows.push(PartitionRow {
                        topic: t.name().to_owned(),
                        partition: p.id(),
                        leader: p.leader(),
                        replicas,
                        isr,
                        produce_rate: tenth(produce_rate),
                        consume_rate: tenth(consume_rate),
                        read_by_lab: read,
                        leader_produce_p99_ms: timings.get(&p.leader()).map(|t| t.0),
                        lag: lag.get(&format!("{}-{}", t.name(), p.id())).copied(),
                        dropped,
                    });
                }
            }
        }
    }
    // New denials from the audit log.
    if let (Some(path), Ok(mut s)) = (audit_log, sampler.lock()) {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let start = usize::try_from(s.audit_read).unwrap_or(0).min(text.len());
            let fresh = text.get(start..).unwrap_or_default();
            // Only whole lines; a partial last line waits for the next push.
            let upto = fresh.rfind('\n').map_or(0, |i| i + 1);
            for line in fresh.get(..upto).unwrap_or_default().lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    if v.get("decision").and_then(|d| d.as_str()) == Some("DENY") {
                        s.denials.push_back(v);
                        while s.denials.len() > 30 {
                            s.denials.pop_front();
                        }
                    }
                }
            }
            s.audit_read += upto as u64;
        }
    }
    let denials: Vec<serde_json::Value> = sampler
        .lock()
        .map(|s| s.denials.iter().rev().cloned().collect())
        .unwrap_or_default();
    let mut fault_lines: Vec<String> = faults;
    if revealed {
        fault_lines.retain(|f| f != crate::env::HIDDEN_FAULT);
        fault_lines.extend(
            hidden
                .iter()
                .map(|h| format!("hidden fault, revealed: {h}")),
        );
    }
    serde_json::json!({
        "lab": lab,
        "brokers": brokers,
        "partitions": rows,
        "lag_age_s": lag_at
            .and_then(|at| at.elapsed().ok())
            .map(|d| d.as_secs()),
        "faults": fault_lines,
        "rules": visible_rules(live),
        "revealed": revealed,
        "replication": {
            "isr_shrinks": health.isr_shrinks,
            "isr_expands": health.isr_expands,
            "under_replicated": health.under_replicated,
        },
        "denials": denials,
        "steps": steps,
    })
    .to_string()
}

/// Where a student's progress goes: the class view's `HOST:PORT` and the class token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassTarget {
    /// `HOST:PORT` of the class view.
    pub host: String,
    /// The class token `kgate lab serve` printed.
    pub token: String,
}

/// Why progress cannot be posted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClassError {
    /// `--class` is not an `http://HOST:PORT` address.
    #[error(
        "{0:?}: the class view is an http://HOST:PORT address (as `kgate lab serve` prints it)"
    )]
    Url(String),
    /// Neither `--class-token` nor the URL carries the token.
    #[error(
        "the class view needs the class token: pass --class-token TOKEN, or the URL with \
         ?token=TOKEN, as the instructor's `kgate lab serve` printed them"
    )]
    NoToken,
    /// `--class-token` and the URL's token differ.
    #[error("--class-token and the token in the --class URL differ: pass one of them")]
    TwoTokens,
    /// The class view cannot be reached (reported once, never fatal).
    #[error("the class view does not answer: {0}")]
    Unreachable(String),
    /// The class view refused the post (a wrong token: 401 or 403).
    #[error("the class view refused your progress: {0}")]
    Refused(String),
}

impl ClassTarget {
    /// Reads `--class URL` (`http://HOST:PORT`, optionally `/?token=TOKEN`) and
    /// `--class-token`.
    ///
    /// # Errors
    /// Not an `http://` URL, no token at all, or two different tokens.
    pub fn parse(url: &str, token: Option<&str>) -> Result<ClassTarget, ClassError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| ClassError::Url(url.to_owned()))?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(ClassError::Url(url.to_owned()));
        }
        let in_url = path
            .split_once('?')
            .map_or("", |(_, q)| q)
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .filter(|t| !t.is_empty());
        let token = match (in_url, token.map(str::trim).filter(|t| !t.is_empty())) {
            (Some(a), Some(b)) if a != b => return Err(ClassError::TwoTokens),
            (Some(t), _) | (None, Some(t)) => t.to_owned(),
            (None, None) => return Err(ClassError::NoToken),
        };
        Ok(ClassTarget {
            host: host.to_owned(),
            token,
        })
    }
}

/// Posts a student's progress to a class view (`--class`); a class view that does not answer
/// or refuses is reported once by the caller, never fatal.
///
/// # Errors
/// The class view cannot be reached or does not answer 200 (then its own words say why).
pub fn post_progress(class: &ClassTarget, progress: &Progress) -> Result<(), ClassError> {
    use std::io::{Read, Write};
    let host = class.host.as_str();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| ClassError::Unreachable(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| ClassError::Unreachable(format!("{host}: no address")))?;
    let body =
        serde_json::to_string(progress).map_err(|e| ClassError::Unreachable(e.to_string()))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| ClassError::Unreachable(format!("{addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    write!(
        s,
        "POST /progress HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
         authorization: Bearer {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        class.token,
        body.len()
    )
    .map_err(|e| ClassError::Unreachable(e.to_string()))?;
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    if reply.starts_with("HTTP/1.1 200") {
        return Ok(());
    }
    let status = reply.lines().next().unwrap_or("nothing").to_owned();
    let said = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .filter(|b| !b.is_empty());
    let detail = said.map_or(status.clone(), |b| format!("{status}: {b}"));
    if reply.starts_with("HTTP/1.1 401") || reply.starts_with("HTTP/1.1 403") {
        Err(ClassError::Refused(detail))
    } else {
        Err(ClassError::Unreachable(format!("it answered {detail}")))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{class_auth, from_own_page, ClassAuth, ClassError, ClassTarget, RateMeter};

    #[test]
    fn a_rate_is_the_counters_change_over_the_time_between_samples() {
        let mut m = RateMeter::default();
        let key = ("t".to_owned(), 0);
        let t0 = Instant::now();
        assert_eq!(m.update(&key, 100, t0), 0.0, "no rate from one sample");
        assert_eq!(m.update(&key, 150, t0 + Duration::from_millis(500)), 100.0);
        // A second page asking 10 ms later gets the same figure, not 0 or a spike.
        assert_eq!(m.update(&key, 151, t0 + Duration::from_millis(510)), 100.0);
        assert_eq!(m.update(&key, 150, t0 + Duration::from_millis(1500)), 0.0);
        // A counter that goes back (the cluster restarted) restarts the measurement.
        assert_eq!(m.update(&key, 10, t0 + Duration::from_millis(2500)), 0.0);
        assert_eq!(m.update(&key, 40, t0 + Duration::from_millis(3500)), 30.0);
    }

    #[test]
    fn records_the_embedded_cluster_dropped_are_counted_per_partition() {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let cluster = crate::cluster::EmbeddedCluster::start(1).expect("cluster");
        cluster.create_topic("big", 1).expect("topic");
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("linger.ms", "20")
            .set("compression.type", "none")
            .create()
            .expect("producer");
        // 8 MB in 1 KB records: more than the 5 MB the embedded cluster keeps.
        let payload = vec![b'x'; 1024];
        for _ in 0..8 * 1024 {
            while let Err((e, _)) = producer.send(BaseRecord::<(), _>::to("big").payload(&payload))
            {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "{e}"
                );
                producer.poll(Duration::from_millis(10));
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).expect("flushed");
        let live = super::Live::new(
            cluster.bootstrap_servers().to_owned(),
            vec!["big".into()],
            std::sync::Arc::new(kgate_proxy::faults::FaultTable::new()),
            (Default::default(), Default::default()),
        );
        let snap: serde_json::Value = serde_json::from_str(&super::live_snapshot(
            &live,
            &std::sync::Mutex::new(super::Sampler::default()),
        ))
        .expect("JSON");
        let dropped = snap["partitions"][0]["dropped"].as_i64().expect("dropped");
        // About 3 of the 8 MB are gone; the count is whatever the cluster says its log start is.
        assert!(
            (1_000..8 * 1024).contains(&dropped),
            "records dropped: {dropped} ({snap})"
        );
    }

    #[test]
    fn a_class_url_carries_the_token_or_the_flag_does() {
        let t = ClassTarget::parse("http://10.0.0.5:8080/?token=0123456789abcdef", None);
        assert_eq!(
            t,
            Ok(ClassTarget {
                host: "10.0.0.5:8080".into(),
                token: "0123456789abcdef".into()
            })
        );
        let t = ClassTarget::parse("http://10.0.0.5:8080", Some("0123456789abcdef"));
        assert_eq!(t.map(|t| t.token), Ok("0123456789abcdef".into()));
        assert_eq!(
            ClassTarget::parse("http://10.0.0.5:8080/", None),
            Err(ClassError::NoToken)
        );
        assert_eq!(
            ClassTarget::parse("http://h:1/?token=aaaa", Some("bbbb")),
            Err(ClassError::TwoTokens)
        );
        assert!(matches!(
            ClassTarget::parse("10.0.0.5:8080", Some("x")),
            Err(ClassError::Url(_))
        ));
    }

    #[test]
    fn progress_without_the_class_token_is_told_apart_from_a_wrong_one() {
        let head = |extra: &str| format!("POST /progress HTTP/1.1\r\nhost: h\r\n{extra}\r\n");
        let token = "0123456789abcdef";
        assert_eq!(class_auth(&head(""), token), ClassAuth::Missing);
        assert_eq!(
            class_auth(&head("authorization: Bearer 0123456789abcdee\r\n"), token),
            ClassAuth::Wrong
        );
        assert_eq!(
            class_auth(&head("Authorization: Basic eDp5\r\n"), token),
            ClassAuth::Wrong
        );
        assert_eq!(
            class_auth(&head("authorization: Bearer 0123456789abcdef\r\n"), token),
            ClassAuth::Granted
        );
    }

    #[test]
    fn only_the_live_views_own_page_may_reveal() {
        let req = |extra: &str| format!("POST /reveal HTTP/1.1\r\n{extra}\r\n");
        assert!(from_own_page(&req("host: 127.0.0.1:7000\r\n")));
        assert!(from_own_page(&req(
            "host: 127.0.0.1:7000\r\norigin: http://127.0.0.1:7000\r\n"
        )));
        assert!(!from_own_page(&req(
            "host: 127.0.0.1:7000\r\norigin: http://evil.example\r\n"
        )));
        assert!(!from_own_page(&req(
            "host: evil.example:7000\r\norigin: http://evil.example:7000\r\n"
        )));
        assert!(!from_own_page(&req("")));
    }
}
