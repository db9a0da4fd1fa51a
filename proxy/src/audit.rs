//! The audit log: one JSON line per authentication, and per kind of authorization decision
//! in a request.
//!
//! Denials are always written; allows only when configured (they are as many as requests).
//! Secrets never reach this log: it records who, from where, what and the rule that decided.
//! Names a client chose (user names, resource names) are capped and escaped with
//! [`LogSafe`](crate::log_safe::LogSafe).
//!
//! # One line per kind of decision per request
//! A request can name millions of resources (a Metadata request of three million topics), and
//! one line per check would turn it into millions of writes. The gateway runs each request's
//! authorization inside [`collect`]: the decisions it makes are gathered by kind (API,
//! resource type, operation, ALLOW or DENY, principal and address) into one line each, which
//! names the first resource of that kind and `count`, how many checks the line stands for.
//! The rule is the first resource's. A decision made outside [`collect`] (a direct caller,
//! such as a test) is one line of `count` 1.
//!
//! # Written off the async runtime
//! Lines go through a bounded queue ([`QUEUE_CAPACITY`] batches) to a thread of their own,
//! which writes them through a buffer and flushes whenever the queue is empty. The gateway
//! sends with `send().await` from the connection's own task: when the writer falls behind
//! (a slow disk) and the queue is full, only a connection that has a line to add waits, its
//! request loop stops reading, and TCP pushes back on that client; the runtime's threads and
//! the other connections go on. Nothing is dropped on that path. [`Audit::flush`] waits until
//! everything queued so far is written; dropping the [`Audit`] writes the rest and stops the
//! thread, and [`Gateway::shutdown`](crate::Gateway::shutdown) flushes.

use std::cell::RefCell;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use kafka_protocol::messages::ApiKey;
use kgate_policies::{Decision, Operation, Principal, ResourceType};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::authz::Session;
use crate::log_safe::log_safe;

/// How many batches of lines (one per request, at most) may wait for the writer thread
/// before a connection that has lines to add waits.
pub const QUEUE_CAPACITY: usize = 1024;

/// Where audit lines go: a queue to the writer thread, and what that thread has written.
pub struct Audit {
    /// `None` only while dropping: closing the queue stops the writer thread.
    queue: Option<mpsc::Sender<Vec<u8>>>,
    /// Joined on drop, so that every queued line is written first.
    writer: Option<std::thread::JoinHandle<()>>,
    /// Batches queued (or being queued) so far, for [`Audit::flush`].
    queued: AtomicU64,
    /// Batches the writer thread has written and flushed, and a signal when that grows.
    written: Arc<(Mutex<u64>, Condvar)>,
    /// Batches dropped because the queue was full for a caller that cannot wait.
    lost: AtomicU64,
    /// Whether allowed decisions are written too.
    log_allows: bool,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("log_allows", &self.log_allows)
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("lost", &self.lost.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AuthzLine<'a> {
    time: String,
    event: &'static str,
    principal: String,
    client: String,
    api: String,
    resource_type: String,
    resource: &'a str,
    operation: String,
    decision: &'static str,
    rule: &'a str,
    /// How many checks of this kind the request made (the line names the first).
    count: u64,
}

#[derive(Serialize)]
struct AuthnLine<'a> {
    time: String,
    event: &'static str,
    client: String,
    listener: &'a str,
    mechanism: String,
    principal: Option<String>,
    user: Option<String>,
    outcome: &'static str,
    reason: Option<String>,
}

impl Audit {
    /// Appends to `path` (created with mode 0600 if missing).
    ///
    /// # Errors
    /// The file cannot be opened, or the writer thread cannot be started.
    pub fn to_file(path: &Path, log_allows: bool) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Self::start(Box::new(file), log_allows)
    }

    /// Writes to any writer (stdout, a buffer in tests).
    ///
    /// # Panics
    /// When the operating system cannot start the writer thread (as `std::thread::spawn`);
    /// [`Audit::start`] returns that error instead.
    pub fn to_writer(out: Box<dyn Write + Send>, log_allows: bool) -> Self {
        match Self::start(out, log_allows) {
            Ok(audit) => audit,
            Err(e) => panic!("cannot start the audit writer thread: {e}"),
        }
    }

    /// Starts the writer thread on `out`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(out: Box<dyn Write + Send>, log_allows: bool) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let written = Arc::new((Mutex::new(0u64), Condvar::new()));
        let progress = written.clone();
        let writer = std::thread::Builder::new()
            .name("kgate-audit".into())
            .spawn(move || write_loop(rx, out, &progress))?;
        Ok(Self {
            queue: Some(queue),
            writer: Some(writer),
            queued: AtomicU64::new(0),
            written,
            lost: AtomicU64::new(0),
            log_allows,
        })
    }

    /// Records an authorization decision (denials always, allows when configured): into the
    /// current request's lines inside [`collect`], else as a line of its own.
    pub fn decision(
        self: &Arc<Self>,
        session: &Session,
        api: ApiKey,
        resource_type: ResourceType,
        resource: &str,
        operation: Operation,
        decision: &Decision,
    ) {
        if decision.allowed && !self.log_allows {
            return;
        }
        let kind = Kind {
            api,
            resource_type,
            operation,
            allowed: decision.allowed,
            host: session.host,
        };
        let gathered = SCOPE.with(|scope| {
            let mut scope = scope.borrow_mut();
            let Some(entries) = scope.as_mut() else {
                return false;
            };
            match entries.iter_mut().find(|e| {
                e.kind == kind && Arc::ptr_eq(&e.audit, self) && e.principal == session.principal
            }) {
                Some(entry) => entry.count += 1,
                None => entries.push(Entry::new(self, session, kind, resource, decision)),
            }
            true
        });
        if !gathered {
            let line = Entry::new(self, session, kind, resource, decision).line();
            self.send_now(line);
        }
    }

    /// Records an authentication, successful or not. `user` is the name the client claimed
    /// (capped and escaped here); `reason` is the cause kept from the client (unknown user,
    /// wrong password), never a credential.
    pub async fn authentication(
        &self,
        client: SocketAddr,
        listener: &str,
        mechanism: &str,
        principal: Option<&str>,
        user: Option<&str>,
        reason: Option<&str>,
    ) {
        let line = json_line(&AuthnLine {
            time: now(SystemTime::now()),
            event: "authentication",
            client: client.ip().to_string(),
            listener,
            mechanism: log_safe(mechanism),
            principal: principal.map(log_safe),
            user: user.map(log_safe),
            outcome: if principal.is_some() {
                "SUCCESS"
            } else {
                "FAILURE"
            },
            reason: reason.map(log_safe),
        });
        self.send(line).await;
    }

    /// Waits until every line queued before this call is written and flushed, at most
    /// `limit`; `false` if that did not happen in time (or the writer thread is gone).
    ///
    /// This blocks the calling thread: from async code, call it inside `spawn_blocking`.
    pub fn flush(&self, limit: Duration) -> bool {
        let target = self.queued.load(Ordering::SeqCst);
        let (written, signal) = &*self.written;
        let written = written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (written, _) = signal
            .wait_timeout_while(written, limit, |w| *w < target)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *written >= target
    }

    /// Lines dropped because the queue was full for a caller that could not wait (never on
    /// the gateway's paths, which wait).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Queues `lines`, waiting while the queue is full.
    async fn send(&self, lines: Vec<u8>) {
        let Some(queue) = &self.queue else { return };
        let pending = Queued::new(&self.queued);
        if queue.send(lines).await.is_ok() {
            pending.done();
        }
    }

    /// Queues `lines` from code that cannot wait: outside a runtime it blocks; inside one,
    /// a full queue drops the line (counted in [`Audit::lost`] and warned about).
    fn send_now(&self, lines: Vec<u8>) {
        let Some(queue) = &self.queue else { return };
        let pending = Queued::new(&self.queued);
        let sent = match queue.try_send(lines) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(lines))
                if tokio::runtime::Handle::try_current().is_err() =>
            {
                queue.blocking_send(lines).is_ok()
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.lost.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "audit queue full: a decision made outside a request was not recorded"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        };
        if sent {
            pending.done();
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        // Closing the queue lets the writer write what is left, then return.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Counts a batch as queued from before it is sent (so [`Audit::flush`] waits for a send in
/// progress) and takes it back if the send fails or is cancelled.
struct Queued<'a> {
    queued: &'a AtomicU64,
    done: bool,
}

impl<'a> Queued<'a> {
    fn new(queued: &'a AtomicU64) -> Self {
        queued.fetch_add(1, Ordering::SeqCst);
        Self {
            queued,
            done: false,
        }
    }

    fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The writer thread: writes each batch, flushes whenever the queue is empty (or after a
/// bounded run of batches), and counts what is written for [`Audit::flush`].
fn write_loop(
    mut rx: mpsc::Receiver<Vec<u8>>,
    out: Box<dyn Write + Send>,
    written: &(Mutex<u64>, Condvar),
) {
    /// Batches written between two flushes at most, so a busy queue still reaches the disk.
    const MAX_UNFLUSHED: u64 = 256;
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut failing = false;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Some(first);
        let mut n = 0u64;
        while let Some(lines) = batch.take() {
            let result = out.write_all(&lines);
            report(&mut failing, result);
            n += 1;
            if n < MAX_UNFLUSHED {
                batch = rx.try_recv().ok();
            }
        }
        report(&mut failing, out.flush());
        let (count, signal) = written;
        *count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += n;
        signal.notify_all();
    }
    report(&mut failing, out.flush());
}

/// Warns when writing starts failing and when it works again, not at every line.
fn report(failing: &mut bool, result: std::io::Result<()>) {
    match result {
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(error = %e, "cannot write the audit log");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("the audit log is written again");
        }
        _ => {}
    }
}

// === per-request gathering ===

/// What makes two decisions of one request share a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    api: ApiKey,
    resource_type: ResourceType,
    operation: Operation,
    allowed: bool,
    host: IpAddr,
}

/// One line in the making: the first decision of its kind, and how many there were.
struct Entry {
    audit: Arc<Audit>,
    kind: Kind,
    principal: Principal,
    time: SystemTime,
    /// The first resource, already capped and escaped.
    resource: String,
    rule: String,
    count: u64,
}

impl Entry {
    fn new(
        audit: &Arc<Audit>,
        session: &Session,
        kind: Kind,
        resource: &str,
        decision: &Decision,
    ) -> Self {
        Self {
            audit: audit.clone(),
            kind,
            principal: session.principal.clone(),
            time: SystemTime::now(),
            resource: log_safe(resource),
            rule: log_safe(&decision.rule.to_string()),
            count: 1,
        }
    }

    fn line(&self) -> Vec<u8> {
        let k = &self.kind;
        json_line(&AuthzLine {
            time: now(self.time),
            event: "authorization",
            principal: log_safe(&self.principal.to_string()),
            client: k.host.to_string(),
            api: format!("{:?}", k.api),
            resource_type: format!("{:?}", k.resource_type),
            resource: &self.resource,
            operation: format!("{:?}", k.operation),
            decision: if k.allowed { "ALLOW" } else { "DENY" },
            rule: &self.rule,
            count: self.count,
        })
    }
}

thread_local! {
    /// The lines of the request being authorized on this thread, inside [`collect`].
    static SCOPE: RefCell<Option<Vec<Entry>>> = const { RefCell::new(None) };
}

/// The audit lines one request produced, to be sent with [`Recorded::send`].
#[must_use = "recorded audit lines are lost unless sent"]
#[derive(Default)]
pub struct Recorded {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("lines", &self.entries.len())
            .finish()
    }
}

impl Recorded {
    /// Whether no line was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues the lines, waiting while the audit queue is full (this is the back-pressure on
    /// the connection that produced them).
    pub async fn send(self) {
        let mut batches: Vec<(Arc<Audit>, Vec<u8>)> = Vec::new();
        for entry in &self.entries {
            let line = entry.line();
            match batches
                .iter_mut()
                .find(|(a, _)| Arc::ptr_eq(a, &entry.audit))
            {
                Some((_, bytes)) => bytes.extend_from_slice(&line),
                None => batches.push((entry.audit.clone(), line)),
            }
        }
        for (audit, bytes) in batches {
            audit.send(bytes).await;
        }
    }
}

/// Runs `f` (the authorization of one request, or the fixup of its response) and gathers
/// the decisions it records into one line per kind; see the module docs.
///
/// The gathering is per thread and `f` is synchronous, so nothing else can add to it. Calls
/// may nest: the inner one gets its own lines.
pub fn collect<R>(f: impl FnOnce() -> R) -> (R, Recorded) {
    /// Puts back the enclosing gathering, also if `f` panics.
    struct Restore(Option<Option<Vec<Entry>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                SCOPE.with(|scope| *scope.borrow_mut() = outer);
            }
        }
    }
    let restore = Restore(Some(SCOPE.with(|scope| scope.replace(Some(Vec::new())))));
    let result = f();
    let entries = SCOPE
        .with(|scope| scope.borrow_mut().take())
        .unwrap_or_default();
    drop(restore);
    (result, Recorded { entries })
}

fn json_line<T: Serialize>(line: &T) -> Vec<u8> {
    // Strings, numbers and options always serialize; an empty line is the unreachable
    // fallback rather than a panic.
    let mut text = serde_json::to_vec(line).unwrap_or_default();
    text.push(b'\n');
    text
}

fn now(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<serde_json::Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn session() -> Session {
        Session {
            principal: Principal::user("bob").unwrap(),
            host: "10.0.0.5".parse().unwrap(),
            authz: None,
            share_sessions: Default::default(),
        }
    }

    fn deny() -> Decision {
        Decision {
            allowed: false,
            rule: kgate_policies::Rule::DefaultDeny,
        }
    }

    #[test]
    fn one_request_gives_one_line_per_kind_with_the_count() {
        let out = Shared::default();
        let audit = Arc::new(Audit::to_writer(Box::new(out.clone()), false));
        let s = session();
        let ((), recorded) = collect(|| {
            for i in 0..100_000 {
                let topic = format!("t{i}");
                audit.decision(
                    &s,
                    ApiKey::Metadata,
                    ResourceType::Topic,
                    &topic,
                    Operation::Describe,
                    &deny(),
                );
            }
            audit.decision(
                &s,
                ApiKey::Metadata,
                ResourceType::Cluster,
                "kafka-cluster",
                Operation::Create,
                &deny(),
            );
        });
        assert!(out.lines().is_empty(), "nothing is written before the send");
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(recorded.send());
        assert!(audit.flush(Duration::from_secs(5)));
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["resource"], "t0");
        assert_eq!(lines[0]["count"], 100_000);
        assert_eq!(lines[0]["decision"], "DENY");
        assert_eq!(lines[1]["resource_type"], "Cluster");
        assert_eq!(lines[1]["count"], 1);
    }

    #[test]
    fn a_decision_outside_a_request_is_a_line_of_its_own_and_drop_writes_it() {
        let out = Shared::default();
        let audit = Arc::new(Audit::to_writer(Box::new(out.clone()), true));
        let s = session();
        let allow = Decision {
            allowed: true,
            rule: kgate_policies::Rule::DefaultDeny,
        };
        for _ in 0..3 {
            audit.decision(
                &s,
                ApiKey::Fetch,
                ResourceType::Topic,
                "a\nb",
                Operation::Read,
                &allow,
            );
        }
        drop(audit);
        let lines = out.lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["resource"], "a\\nb");
        assert_eq!(lines[0]["count"], 1);
        assert_eq!(lines[0]["decision"], "ALLOW");
    }

    #[test]
    fn nested_gathering_keeps_each_requests_lines_apart() {
        let out = Shared::default();
        let audit = Arc::new(Audit::to_writer(Box::new(out.clone()), false));
        let s = session();
        let ((inner, ()), outer) = collect(|| {
            audit.decision(
                &s,
                ApiKey::Fetch,
                ResourceType::Topic,
                "x",
                Operation::Read,
                &deny(),
            );
            let nested = collect(|| {
                audit.decision(
                    &s,
                    ApiKey::Fetch,
                    ResourceType::Topic,
                    "y",
                    Operation::Read,
                    &deny(),
                );
            });
            audit.decision(
                &s,
                ApiKey::Fetch,
                ResourceType::Topic,
                "z",
                Operation::Read,
                &deny(),
            );
            (nested.1, ())
        });
        assert_eq!(inner.entries.len(), 1);
        assert_eq!(inner.entries[0].count, 1);
        assert_eq!(outer.entries.len(), 1);
        assert_eq!(outer.entries[0].count, 2);
        assert_eq!(outer.entries[0].resource, "x");
        SCOPE.with(|scope| assert!(scope.borrow().is_none()));
    }

    #[test]
    fn authentication_lines_cap_and_escape_the_user_name() {
        let out = Shared::default();
        let audit = Audit::to_writer(Box::new(out.clone()), false);
        let hostile = format!(
            "mallory\n{{\"event\":\"authentication\"}}{}",
            "\n".repeat(10 * 1024)
        );
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(audit.authentication(
                "10.0.0.5:5000".parse().unwrap(),
                "bootstrap",
                "PLAIN",
                None,
                Some(&hostile),
                Some("unknown user"),
            ));
        drop(audit);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.len() < 1024, "{}", text.len());
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        let user = line["user"].as_str().unwrap();
        assert!(user.starts_with("mallory\\n{\"event\""), "{user}");
        assert!(!user.contains('\n'));
        assert!(user.ends_with("bytes]"), "{user}");
    }
}
