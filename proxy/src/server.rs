//! Listeners, TLS, and the life of each connection; starting and stopping the gateway.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::connection::{forward, CloseReason, Traffic};
use crate::counted::Counted;
use crate::directory::{Directory, PortPolicy};
use crate::log_safe::LogSafe;
use crate::read_ahead::ReadAhead;
use crate::sasl::{authenticate, AuthClose, Authenticated, SaslSettings};
use crate::upstream::{connect, connect_any, discover, UpstreamError};
use crate::versions::VersionTable;

/// Default grace period for in-flight requests at shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default interval between two metadata refreshes of the upstream.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// Default SASL session lifetime (KIP-368): a removed user or a changed password stops
/// working on open connections within an hour, at the client's next re-authentication.
/// Kafka's own default, 0, keeps a session for as long as its connection lives.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(3600);
/// Default cap on concurrent client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default cap on connections from one address: a single misbehaving host cannot take
/// every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1000;
/// Default idle timeout after login: Kafka's `connections.max.idle.ms`, 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a client may take from TLS to the end of authentication.
pub const AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much rustls may hold encrypted for a client before the socket takes it: one `writev`
/// carries up to this much (a few TLS records' worth of 16 KiB each).
pub const TLS_SEND_BUFFER: usize = 256 * 1024;
/// Longest wait at shutdown for the audit writer to write what the connections queued.
const AUDIT_FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// The TLS side of the client listeners.
///
/// The certificate and trusted client CAs reload live through the handle; new connections
/// use the configuration in force when they arrive.
#[derive(Debug)]
pub struct TlsSettings {
    /// The reloadable rustls configuration.
    pub handle: kgate_certs::TlsConfigHandle,
    /// Set when client certificates are accepted: turns a verified certificate into a
    /// principal with Kafka's `ssl.principal.mapping.rules`.
    pub principal_mapper: Option<kgate_certs::PrincipalMapper>,
}

impl TlsSettings {
    fn current(&self) -> Arc<ServerConfig> {
        self.handle.current()
    }
}

/// Everything the gateway needs to start.
#[derive(Debug)]
pub struct GatewayConfig {
    /// The bootstrap listener. Port 0 picks a free port, and then broker ports are free
    /// ports too.
    pub listen: SocketAddr,
    /// The host name clients are told to use; defaults to the listen IP.
    pub advertised_host: Option<String>,
    /// Broker `n` listens on `broker_port_base + n`; defaults to the listen port + 1.
    pub broker_port_base: Option<u16>,
    /// Bootstrap addresses of the upstream cluster.
    pub upstream: Vec<String>,
    /// TLS for client connections; `None` only for explicitly configured plaintext listeners.
    pub tls: Option<Arc<TlsSettings>>,
    /// SASL mechanisms and the failure delay.
    pub sasl: SaslSettings,
    /// Largest request frame after authentication.
    pub max_frame: usize,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How often the upstream's brokers and versions are refreshed.
    pub refresh_interval: Duration,
    /// Cap on concurrent client connections.
    pub max_connections: usize,
    /// Cap on concurrent connections from one client address (Kafka's
    /// `max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// How long a client may take to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// How long a client may take from TLS to the end of authentication.
    pub authentication_timeout: Duration,
    /// An authenticated connection that sends no request for this long is closed (Kafka's
    /// `connections.max.idle.ms`); zero keeps idle connections open.
    pub idle_timeout: Duration,
    /// Authorization and audit; `None` forwards every allowed-table request (Kafka without an
    /// authorizer).
    pub authz: Option<Arc<crate::authz::Authz>>,
    /// Faults injected on purpose (labs, rehearsals); empty unless someone adds a rule.
    pub faults: Arc<crate::faults::FaultTable>,
    /// Per-broker request timings (the labs' evidence); `None` records nothing.
    pub timings: Option<Arc<crate::timings::Timings>>,
}

impl GatewayConfig {
    /// A configuration with kgate's defaults for everything but the addresses.
    pub fn new(listen: SocketAddr, upstream: Vec<String>) -> Self {
        Self {
            listen,
            advertised_host: None,
            broker_port_base: None,
            upstream,
            tls: None,
            sasl: SaslSettings {
                authenticator: None,
                failure_delay: Duration::from_millis(100),
                session_lifetime: DEFAULT_SESSION_LIFETIME,
                revoke_sessions_on_change: false,
            },
            max_frame: crate::frame::DEFAULT_MAX_FRAME,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            refresh_interval: DEFAULT_REFRESH,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            authentication_timeout: AUTHENTICATION_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            authz: None,
            faults: Arc::default(),
            timings: None,
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The upstream could not be discovered.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
    /// A broker could not get a port.
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
}

/// State shared by every listener and connection.
pub struct Shared {
    /// The configuration the gateway started with.
    pub config: GatewayConfig,
    /// Node id → upstream broker and kgate port.
    pub directory: Arc<Directory>,
    versions: RwLock<Arc<VersionTable>>,
    connections: Arc<Semaphore>,
    /// Connections and failed logins per client address.
    pub addresses: Arc<crate::limits::AddressLimits>,
    /// When a refused connection was last logged (one line per second at most).
    refused_log: std::sync::Mutex<Option<std::time::Instant>>,
    /// The pre-login close lines of the current second.
    prelogin_log: std::sync::Mutex<PreloginLog>,
    /// Counters for the admin endpoint.
    pub metrics: crate::metrics::Metrics,
}

impl Shared {
    /// The versions in force.
    pub fn versions(&self) -> Arc<VersionTable> {
        self.versions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.config.max_connections - self.connections.available_permits()
    }

    /// Counts a connection refused at accept and logs it, one line a second at most, so a
    /// flood of connections cannot flood the log.
    fn refused_connection(&self, peer: &SocketAddr, limit: &str) {
        self.metrics.refused_connection();
        let mut last = self
            .refused_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            *last = Some(now);
            warn!(%peer, limit, "connection refused (further refusals this second not logged)");
        }
    }

    /// The enabled SASL mechanisms.
    pub fn mechanisms(&self) -> Vec<String> {
        self.config
            .sasl
            .authenticator
            .as_ref()
            .map(|a| a.mechanisms())
            .unwrap_or_default()
    }
}

/// Which broker a listener stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The bootstrap listener: any upstream broker will do.
    Bootstrap,
    /// The listener of one upstream node.
    Broker(i32),
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    bootstrap: SocketAddr,
    shutdown: watch::Sender<bool>,
    refresher: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Discovers the upstream, binds the bootstrap listener and one listener per broker, and
    /// starts serving.
    ///
    /// # Errors
    /// [`StartError`] if the upstream cannot be reached or a port cannot be bound.
    pub async fn start(config: GatewayConfig) -> Result<Self, StartError> {
        let view = discover(&config.upstream).await?;
        let with_admin = config.authz.is_some();
        let versions = VersionTable::negotiate(&view.versions, with_admin);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let bootstrap = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let ports = match (config.broker_port_base, bootstrap.port()) {
            (Some(base), _) => PortPolicy::Offset(base),
            (None, _) if config.listen.port() == 0 => PortPolicy::Ephemeral,
            (None, port) => PortPolicy::Offset(port.saturating_add(1)),
        };
        let advertised = config
            .advertised_host
            .clone()
            .unwrap_or_else(|| advertised_default(bootstrap));
        let directory = Arc::new(Directory::new(bootstrap.ip(), advertised, ports));
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let config_per_ip = config.max_connections_per_ip.max(1);
        let shared = Arc::new(Shared {
            config,
            directory: directory.clone(),
            versions: RwLock::new(Arc::new(versions)),
            connections,
            addresses: crate::limits::AddressLimits::new(config_per_ip),
            refused_log: std::sync::Mutex::new(None),
            prelogin_log: std::sync::Mutex::default(),
            metrics: crate::metrics::Metrics::default(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        {
            // The directory outlives nothing but the gateway; a weak reference avoids a cycle.
            let weak = Arc::downgrade(&shared);
            let shutdown_rx = shutdown_rx.clone();
            directory.set_spawner(Arc::new(move |node_id, listener| {
                if let Some(shared) = weak.upgrade() {
                    tokio::spawn(accept_loop(
                        shared,
                        listener,
                        Target::Broker(node_id),
                        shutdown_rx.clone(),
                    ));
                }
            }));
        }
        for (node_id, (host, port)) in &view.brokers {
            directory.register(*node_id, host, *port)?;
        }
        tokio::spawn(accept_loop(
            shared.clone(),
            listener,
            Target::Bootstrap,
            shutdown_rx.clone(),
        ));
        let refresher = tokio::spawn(refresh_loop(shared.clone()));
        info!(bootstrap = %bootstrap, brokers = view.brokers.len(), "gateway listening");
        Ok(Self {
            shared,
            bootstrap,
            shutdown,
            refresher,
        })
    }

    /// The bootstrap address clients connect to.
    pub fn bootstrap_addr(&self) -> SocketAddr {
        self.bootstrap
    }

    /// `advertised_host:port` of the bootstrap listener, for client configuration.
    pub fn bootstrap_servers(&self) -> String {
        format!(
            "{}:{}",
            self.shared.directory.advertised_host(),
            self.bootstrap.port()
        )
    }

    /// The shared state (directory, versions), for inspection.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, and closes.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.refresher.abort();
        // Every connection holds a permit until it has finished; wait until all are back.
        let max = self.shared.config.max_connections;
        let all_closed = async {
            while self.shared.connections.available_permits() < max {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let grace = self.shared.config.shutdown_grace + Duration::from_secs(1);
        if tokio::time::timeout(grace, all_closed).await.is_err() {
            warn!("connections still open after the grace period; closing them");
        }
        // Every line of the closed connections is queued: see it written before returning.
        if let Some(audit) = self
            .shared
            .config
            .authz
            .as_ref()
            .and_then(|a| a.audit.clone())
        {
            let flushed = tokio::task::spawn_blocking(move || audit.flush(AUDIT_FLUSH_LIMIT))
                .await
                .unwrap_or(false);
            if !flushed {
                warn!("the audit log was not fully written within {AUDIT_FLUSH_LIMIT:?}");
            }
        }
        info!("gateway stopped");
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }
}

fn advertised_default(bootstrap: SocketAddr) -> String {
    let ip = bootstrap.ip();
    if ip.is_unspecified() {
        "localhost".to_string()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

async fn refresh_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.refresh_interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        match discover(&shared.config.upstream).await {
            Ok(view) => {
                for (node_id, (host, port)) in &view.brokers {
                    if let Err(e) = shared.directory.register(*node_id, host, *port) {
                        warn!(error = %e, "cannot serve a new broker");
                    }
                }
                let versions =
                    VersionTable::negotiate(&view.versions, shared.config.authz.is_some());
                *shared
                    .versions
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(versions);
            }
            Err(e) => warn!(error = %e, "upstream metadata refresh failed"),
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    target: Target,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                // Out of file descriptors and similar: wait instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            shared.refused_connection(&peer, "the connection limit (max_connections)");
            continue;
        };
        let Some(address) = shared.addresses.try_open(peer.ip().to_canonical()) else {
            shared.refused_connection(
                &peer,
                "the limit of connections from one address (max_connections_per_ip)",
            );
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(shared, stream, peer, target, shutdown).await;
            drop(address);
            drop(permit);
        });
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    target: Target,
    shutdown: watch::Receiver<bool>,
) {
    shared.metrics.connection();
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let traffic = Arc::new(Traffic::default());
    let listener = match target {
        Target::Bootstrap => "bootstrap".to_string(),
        Target::Broker(n) => format!("broker-{n}"),
    };
    let (who, reason, failed_authentication) = match shared.config.tls.clone() {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let handshake = acceptor.accept(ReadAhead::new(stream));
            match tokio::time::timeout(shared.config.tls_handshake_timeout, handshake).await {
                Ok(Ok(mut tls_stream)) => {
                    // rustls encrypts at most this much ahead of the socket; its 64 KiB
                    // default cut a 1 MiB fetch response into 16 `writev`s.
                    tls_stream
                        .get_mut()
                        .1
                        .set_buffer_limit(Some(TLS_SEND_BUFFER));
                    let cert_principal = match (
                        &tls.principal_mapper,
                        tls_stream.get_ref().1.peer_certificates(),
                    ) {
                        (Some(map), Some([leaf, ..])) => match map.principal(leaf) {
                            Ok(p) => Some(format!("User:{p}")),
                            Err(e) => {
                                log_close(
                                    &shared,
                                    &peer,
                                    &listener,
                                    None,
                                    &traffic,
                                    &format!("client certificate refused: {e}"),
                                    false,
                                );
                                return;
                            }
                        },
                        _ => None,
                    };
                    run(
                        shared.clone(),
                        Counted::new(tls_stream, traffic.clone()),
                        peer,
                        &listener,
                        target,
                        cert_principal,
                        shutdown,
                    )
                    .await
                }
                Ok(Err(e)) => (None, format!("TLS handshake failed: {e}"), false),
                Err(_) => (None, "TLS handshake timed out".to_string(), false),
            }
        }
        None => {
            run(
                shared.clone(),
                Counted::new(ReadAhead::new(stream), traffic.clone()),
                peer,
                &listener,
                target,
                None,
                shutdown,
            )
            .await
        }
    };
    shared.metrics.traffic(
        traffic.from_client.load(Ordering::Relaxed),
        traffic.to_client.load(Ordering::Relaxed),
    );
    log_close(
        &shared,
        &peer,
        &listener,
        who.as_ref(),
        &traffic,
        &reason,
        failed_authentication,
    );
}

/// The one line a connection leaves in the text log; a warning when the client failed to
/// authenticate (the reason then names the mechanism, the user name, capped and escaped,
/// and the cause).
/// Pre-login close lines let through per second; the rest are counted and summed up in one
/// line, so a flood of connections that never log in cannot flood the log.
const PRELOGIN_LINES_PER_SECOND: u32 = 10;

/// The current second's pre-login close lines.
#[derive(Debug, Default)]
struct PreloginLog {
    window: Option<std::time::Instant>,
    logged: u32,
    suppressed: u32,
    failed_logins: u32,
}

fn log_close(
    shared: &Shared,
    peer: &SocketAddr,
    listener: &str,
    who: Option<&Authenticated>,
    traffic: &Traffic,
    reason: &str,
    failed_authentication: bool,
) {
    let principal = LogSafe(who.map_or("-", |w| w.principal.as_str()));
    let mechanism = who.map_or("-", |w| w.mechanism.as_str());
    let bytes_in = traffic.from_client.load(Ordering::Relaxed);
    let bytes_out = traffic.to_client.load(Ordering::Relaxed);
    if who.is_none() {
        let mut log = shared
            .prelogin_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        if log
            .window
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            if log.suppressed > 0 {
                warn!(
                    target: "kgate::connection",
                    not_logged = log.suppressed,
                    failed_logins = log.failed_logins,
                    "more connections closed before login in the last second than are logged one by one"
                );
            }
            *log = PreloginLog {
                window: Some(now),
                ..PreloginLog::default()
            };
        }
        if log.logged >= PRELOGIN_LINES_PER_SECOND {
            log.suppressed += 1;
            log.failed_logins += u32::from(failed_authentication);
            return;
        }
        log.logged += 1;
    }
    if failed_authentication {
        warn!(
            target: "kgate::connection",
            %peer, listener, %principal, mechanism, bytes_in, bytes_out, reason,
            "connection closed"
        );
    } else {
        info!(
            target: "kgate::connection",
            %peer, listener, %principal, mechanism, bytes_in, bytes_out, reason,
            "connection closed"
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn run<S>(
    shared: Arc<Shared>,
    mut stream: S,
    peer: SocketAddr,
    listener: &str,
    target: Target,
    cert_principal: Option<String>,
    shutdown: watch::Receiver<bool>,
) -> (Option<Authenticated>, String, bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let versions = shared.versions();
    let mut stop = shutdown.clone();
    let limit = shared.config.authentication_timeout;
    // A failed login from an address that keeps failing is answered later each time.
    let ip = peer.ip().to_canonical();
    let base = shared.config.sasl.failure_delay;
    let addresses = shared.addresses.clone();
    let on_failure = move || addresses.failed_login(ip, base).saturating_sub(base);
    let auth = tokio::time::timeout(
        limit,
        authenticate(
            &mut stream,
            &versions,
            &shared.config.sasl,
            cert_principal,
            &on_failure,
        ),
    );
    let outcome = tokio::select! {
        r = auth => match r {
            Ok(r) => r,
            Err(_) => return (
                None,
                format!("authentication not finished within {} ms", limit.as_millis()),
                false,
            ),
        },
        _ = stop.changed() => return (None, "gateway shutting down".to_string(), false),
    };
    let audit = shared.config.authz.as_ref().and_then(|a| a.audit.clone());
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let failed = matches!(e, AuthClose::Failed { .. });
            if let AuthClose::Failed {
                mechanism,
                user,
                reason,
                message,
            } = &e
            {
                shared.metrics.auth_failure();
                // The connection's close line, a warning, says it once (with the user name
                // capped and escaped): no line of its own here.
                if let Some(audit) = &audit {
                    let why = reason.as_deref().unwrap_or(message);
                    audit
                        .authentication(peer, listener, mechanism, None, user.as_deref(), Some(why))
                        .await;
                }
            }
            return (None, e.to_string(), failed);
        }
    };
    info!(
        target: "kgate::auth",
        principal = %LogSafe(&outcome.who.principal),
        mechanism = %outcome.who.mechanism,
        "authenticated"
    );
    shared.metrics.auth_success();
    if let Some(audit) = &audit {
        let who = &outcome.who;
        audit
            .authentication(
                peer,
                listener,
                &who.mechanism,
                Some(&who.principal),
                None,
                None,
            )
            .await;
    }
    let principal = match outcome.who.principal.parse::<kgate_policies::Principal>() {
        Ok(p) => p,
        Err(e) => {
            return (
                Some(outcome.who),
                format!("principal cannot be used in ACLs: {e}"),
                false,
            )
        }
    };
    let session = crate::authz::Session {
        principal,
        // Kafka writes an IPv4 client as 10.0.0.5, never as ::ffff:10.0.0.5.
        host: peer.ip().to_canonical(),
        authz: shared.config.authz.clone(),
        share_sessions: Default::default(),
    };
    let upstream = match target {
        Target::Bootstrap => connect_any(&shared.config.upstream)
            .await
            .map(|(s, _)| s)
            .map_err(|e| e.to_string()),
        Target::Broker(node) => match shared.directory.get(node) {
            Some(entry) => connect(&entry.upstream)
                .await
                .map_err(|e| format!("cannot reach broker {node} at {}: {e}", entry.upstream)),
            None => Err(format!("unknown broker {node}")),
        },
    };
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            return (
                Some(outcome.who),
                CloseReason::Upstream(e).to_string(),
                false,
            )
        }
    };
    let node = match target {
        Target::Broker(node) => Some(node),
        Target::Bootstrap => None,
    };
    // Connections that logged in with SASL re-authenticate (KIP-368); certificate and
    // anonymous ones have no session to renew.
    let login = (!matches!(outcome.who.mechanism.as_str(), "SSL" | "NONE")).then(|| {
        crate::reauth::SaslLogin {
            mechanism: outcome.who.mechanism.clone(),
            principal: outcome.who.principal.clone(),
        }
    });
    let reason = forward(
        shared,
        session,
        stream,
        crate::connection::Upstream {
            stream: ReadAhead::new(upstream),
            node,
        },
        outcome.first_request,
        login,
        shutdown,
    )
    .await;
    (Some(outcome.who), reason.to_string(), false)
}
