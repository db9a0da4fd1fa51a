//! The gateway's counters, exposed in Prometheus' text format by the admin endpoint.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the gateway; cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
    auth_success: AtomicU64,
    auth_failure: AtomicU64,
    reauth_success: AtomicU64,
    refused_connections: AtomicU64,
    reauth_failure: AtomicU64,
    sessions_expired: AtomicU64,
    requests_forwarded: AtomicU64,
    requests_answered: AtomicU64,
    requests_refused: AtomicU64,
    bytes_from_clients: AtomicU64,
    bytes_to_clients: AtomicU64,
    /// How long kgate held each forwarded request and its answer, and how long it took to
    /// arrive, by API.
    pub times: crate::held::RequestTimes,
}

impl Metrics {
    /// A client connection was accepted.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
    /// A client authenticated.
    pub fn auth_success(&self) {
        self.auth_success.fetch_add(1, Ordering::Relaxed);
    }
    /// A client failed to authenticate.
    pub fn auth_failure(&self) {
        self.auth_failure.fetch_add(1, Ordering::Relaxed);
    }
    /// A connection was refused at accept (a connection limit).
    pub fn refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }
    /// A client re-authenticated on its connection (KIP-368).
    pub fn reauth_success(&self) {
        self.reauth_success.fetch_add(1, Ordering::Relaxed);
    }
    /// A re-authentication was refused (wrong password, other principal or mechanism).
    pub fn reauth_failure(&self) {
        self.reauth_failure.fetch_add(1, Ordering::Relaxed);
    }
    /// A connection was closed because its session expired without re-authentication.
    pub fn session_expired(&self) {
        self.sessions_expired.fetch_add(1, Ordering::Relaxed);
    }
    /// A request went to the upstream broker.
    pub fn forwarded(&self) {
        self.requests_forwarded.fetch_add(1, Ordering::Relaxed);
    }
    /// kgate answered a request itself (a denial, ApiVersions, ACL administration).
    pub fn answered(&self) {
        self.requests_answered.fetch_add(1, Ordering::Relaxed);
    }
    /// A request closed its connection (outside the allow-table, malformed, hostile).
    pub fn refused(&self) {
        self.requests_refused.fetch_add(1, Ordering::Relaxed);
    }
    /// Bytes moved by a closed connection.
    pub fn traffic(&self, from_client: u64, to_client: u64) {
        self.bytes_from_clients
            .fetch_add(from_client, Ordering::Relaxed);
        self.bytes_to_clients
            .fetch_add(to_client, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `open` is the number of open connections.
    ///
    /// `enforced` says whether requests are authorized (a policy) or every authenticated
    /// client may do anything (`--allow-all-authenticated`): an alert can watch for 0.
    pub fn render(&self, open: usize, brokers: usize, enforced: bool) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP kgate_{name} {help}\n# TYPE kgate_{name} counter\nkgate_{name} {value}"
            );
        };
        counter(
            "connections_total",
            "Client connections accepted.",
            self.connections.load(Ordering::Relaxed),
        );
        counter(
            "auth_success_total",
            "Successful authentications.",
            self.auth_success.load(Ordering::Relaxed),
        );
        counter(
            "auth_failure_total",
            "Failed authentications.",
            self.auth_failure.load(Ordering::Relaxed),
        );
        counter(
            "connections_refused_total",
            "Connections refused at accept (max_connections, max_connections_per_ip).",
            self.refused_connections.load(Ordering::Relaxed),
        );
        counter(
            "reauth_success_total",
            "Re-authentications on open connections (KIP-368).",
            self.reauth_success.load(Ordering::Relaxed),
        );
        counter(
            "reauth_failure_total",
            "Re-authentications refused (the connection closed).",
            self.reauth_failure.load(Ordering::Relaxed),
        );
        counter(
            "sessions_expired_total",
            "Connections closed because their session expired without re-authentication.",
            self.sessions_expired.load(Ordering::Relaxed),
        );
        counter(
            "requests_forwarded_total",
            "Requests forwarded to the cluster.",
            self.requests_forwarded.load(Ordering::Relaxed),
        );
        counter(
            "requests_answered_total",
            "Requests kgate answered itself, denials included.",
            self.requests_answered.load(Ordering::Relaxed),
        );
        counter(
            "requests_refused_total",
            "Requests that closed their connection.",
            self.requests_refused.load(Ordering::Relaxed),
        );
        counter(
            "bytes_from_clients_total",
            "Bytes read from clients on closed connections.",
            self.bytes_from_clients.load(Ordering::Relaxed),
        );
        counter(
            "bytes_to_clients_total",
            "Bytes written to clients on closed connections.",
            self.bytes_to_clients.load(Ordering::Relaxed),
        );
        let _ = writeln!(out, "# HELP kgate_connections_open Client connections open now.\n# TYPE kgate_connections_open gauge\nkgate_connections_open {open}");
        let _ = writeln!(out, "# HELP kgate_authorization_enforced 1 when a policy authorizes every request, 0 with --allow-all-authenticated.\n# TYPE kgate_authorization_enforced gauge\nkgate_authorization_enforced {}", u8::from(enforced));
        let _ = writeln!(out, "# HELP kgate_upstream_brokers Upstream brokers kgate serves a port for.\n# TYPE kgate_upstream_brokers gauge\nkgate_upstream_brokers {brokers}");
        self.times.render(&mut out);
        out
    }
}
