//! The admin endpoint: health, readiness, Prometheus metrics, reload and fault rules over
//! plain HTTP.
//!
//! It binds where it is told, loopback in every default, and speaks just enough HTTP/1.1 for
//! `curl`, Prometheus and `kgate fault`: one request per connection, bounded in size and time.
//!
//! | request | does |
//! |---|---|
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (an upstream broker is known, the shared state is read) |
//! | `GET /metrics` | Prometheus text |
//! | `POST /reload` | reloads certificates, users and policy |
//! | `GET /faults` | the fault rules in force, one per line |
//! | `POST /faults` with a rule as body | adds it (`latency=300ms principal=User:alice`); answers `#id rule` |
//! | `DELETE /faults/<id>`, `DELETE /faults` | removes one rule, or all |
//!
//! Reads are open to whoever reaches the address (Prometheus, health checks). Every change
//! (`POST`, `DELETE`) needs `Authorization: Bearer <token>`, the token kgate keeps in a 0600
//! file, so that a web page open in a browser on the same machine, or another local user,
//! cannot reload files or inject faults. A request that carries an `Origin` header (a browser)
//! or names another `Host` than the endpoint's own address (DNS rebinding) is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::faults::FaultRule;
use crate::server::Shared;

/// Reloads certificates, users and policy; implemented by the binary, which owns them (and
/// knows whether they are ready and what to count about them).
pub trait Reload: Send + Sync + 'static {
    /// Reloads everything; `Err` names what was refused (the old file stays in force).
    fn reload(&self) -> Result<String, String>;

    /// Why kgate is not ready to serve, if it is not (e.g. the shared state is behind).
    fn not_ready(&self) -> Option<String> {
        None
    }

    /// Prometheus lines about what the binary owns (e.g. the shared state's lag).
    fn render_metrics(&self, _out: &mut String) {}
}

/// What the admin endpoint may do beyond health, metrics and reload.
#[derive(Clone, Default)]
pub struct AdminOptions {
    /// `POST /faults` and `DELETE /faults` change the fault rules; off, they answer 403.
    pub allow_faults: bool,
    /// The bearer token every `POST` and `DELETE` must carry; `None` refuses them all.
    pub token: Option<Arc<str>>,
}

impl std::fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("allow_faults", &self.allow_faults)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Why a request is refused before its path is looked at, if it is.
fn refuse_origin_or_host(head: &str, addr: SocketAddr) -> Option<&'static str> {
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    if header("origin").is_some() {
        return Some("requests from web pages (with an Origin header) are refused\n");
    }
    if let Some(host) = header("host") {
        let port = addr.port();
        let mut ok = vec![addr.to_string()];
        if addr.ip().is_loopback() {
            ok.extend([
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ]);
        }
        if !ok.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
            return Some("the Host header is not this endpoint's address (DNS rebinding?)\n");
        }
    }
    None
}

/// Whether the request carries the endpoint's bearer token.
fn authorized(head: &str, token: Option<&str>) -> bool {
    token.is_some_and(|t| crate::admin_token::bearer_matches(head, t))
}

/// A running admin endpoint.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `addr` and serves until [`AdminServer::stop`].
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(
        addr: SocketAddr,
        shared: Arc<Shared>,
        reload: Arc<dyn Reload>,
        options: AdminOptions,
    ) -> std::io::Result<Self> {
        if !addr.ip().is_loopback() {
            warn!(%addr, "the admin endpoint listens beyond loopback: anyone who reaches it can trigger reloads");
            if options.allow_faults {
                warn!(%addr, "... and inject faults into every client's requests");
            }
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        info!(%addr, "admin endpoint listening");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let shared = shared.clone();
                let reload = reload.clone();
                let options = options.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        serve(stream, addr, &shared, &*reload, &options),
                    )
                    .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Largest request body (a fault rule is one short line).
const MAX_BODY: usize = 4096;

async fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    shared: &Shared,
    reload: &dyn Reload,
    options: &AdminOptions,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let end = loop {
        if let Some(i) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if len == buf.len() {
            return respond(&mut stream, 431, "request header too large\n").await;
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    if let Some(why) = refuse_origin_or_host(&head, addr) {
        return respond(&mut stream, 403, why).await;
    }
    let content_length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse::<usize>());
    let mut body = buf[end..len].to_vec();
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"))
    {
        return respond(
            &mut stream,
            411,
            "send the body with content-length, not chunked\n",
        )
        .await;
    }
    match content_length {
        // A rule comes in the body: without a length it could be cut short.
        None if head.starts_with("POST /faults") => {
            return respond(&mut stream, 411, "POST /faults needs content-length\n").await
        }
        None => {}
        Some(Ok(n)) if n <= MAX_BODY => {
            if body.len() < n {
                let mut rest = vec![0u8; n - body.len()];
                stream.read_exact(&mut rest).await?;
                body.extend_from_slice(&rest);
            }
            body.truncate(n);
        }
        Some(Ok(_)) => {
            return respond(&mut stream, 413, &format!("body over {MAX_BODY} bytes\n")).await
        }
        Some(Err(_)) => return respond(&mut stream, 400, "bad content-length\n").await,
    }
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if matches!(method, "POST" | "DELETE") && !authorized(&head, options.token.as_deref()) {
        let why = if options.token.is_some() {
            "changes need Authorization: Bearer <token> (kgate fault reads the gateway's \
             admin token file)\n"
        } else {
            "changes are off: this endpoint has no admin token file\n"
        };
        return respond(&mut stream, 401, why).await;
    }
    match (method, path) {
        ("GET", "/healthz") => respond(&mut stream, 200, "ok\n").await,
        ("GET", "/readyz") => {
            if shared.directory.brokers().is_empty() {
                respond(&mut stream, 503, "no upstream broker known\n").await
            } else if let Some(why) = reload.not_ready() {
                respond(&mut stream, 503, &format!("{why}\n")).await
            } else {
                respond(&mut stream, 200, "ready\n").await
            }
        }
        ("GET", "/metrics") => {
            let mut body = shared
                .metrics
                .render(
                    shared.open_connections(),
                    shared.directory.brokers().len(),
                    shared.config.authz.is_some(),
                );
            body.push_str(&shared.config.faults.render_metrics());
            reload.render_metrics(&mut body);
            respond(&mut stream, 200, &body).await
        }
        ("POST", "/reload") => match reload.reload() {
            Ok(msg) => respond(&mut stream, 200, &format!("{msg}\n")).await,
            Err(msg) => {
                respond(
                    &mut stream,
                    409,
                    &format!("refused, previous files stay in force: {msg}\n"),
                )
                .await
            }
        },
        ("GET", "/faults") => respond(&mut stream, 200, &shared.config.faults.render()).await,
        ("POST" | "DELETE", p) if p.starts_with("/faults") && !options.allow_faults => {
            respond(
                &mut stream,
                403,
                "fault injection is off: start kgate proxy with --allow-faults (or allow_faults = true)\n",
            )
            .await
        }
        ("POST", "/faults") => {
            let text = String::from_utf8_lossy(&body);
            match text.parse::<FaultRule>() {
                Ok(rule) => {
                    let line = rule.to_string();
                    match shared.config.faults.add(rule) {
                        Ok(id) => respond(&mut stream, 200, &format!("#{id} {line}\n")).await,
                        Err(e) => respond(&mut stream, 409, &format!("{e}\n")).await,
                    }
                }
                Err(e) => respond(&mut stream, 400, &format!("{e}\n")).await,
            }
        }
        ("DELETE", "/faults") => {
            let n = shared.config.faults.clear();
            respond(&mut stream, 200, &format!("{n} fault rules removed\n")).await
        }
        ("DELETE", p) if p.starts_with("/faults/") => {
            let id = p.trim_start_matches("/faults/").trim_start_matches('#');
            match id.parse::<u64>() {
                Ok(id) if shared.config.faults.remove(id) => {
                    respond(&mut stream, 200, &format!("fault rule #{id} removed\n")).await
                }
                Ok(id) => {
                    respond(&mut stream, 404, &format!("no fault rule #{id} (GET /faults lists them)\n"))
                        .await
                }
                Err(_) => respond(&mut stream, 400, "write DELETE /faults/<id>, e.g. /faults/3\n").await,
            }
        }
        _ => {
            respond(
                &mut stream,
                404,
                "not found: try GET /healthz, /readyz, /metrics, /faults, POST /reload, /faults or DELETE /faults[/<id>]\n",
            )
            .await
        }
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        411 => "Length Required",
        413 => "Payload Too Large",
        409 => "Conflict",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(msg.as_bytes()).await?;
    stream.shutdown().await
}
