//! The admin endpoint: health, readiness, Prometheus metrics and reload over plain HTTP.
//!
//! It binds where it is told, loopback in every default, and speaks just enough HTTP/1.1 for
//! `curl` and Prometheus: one request per connection, bounded in size and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::server::Shared;

/// Reloads certificates, users and policy; implemented by the binary, which owns them.
pub trait Reload: Send + Sync + 'static {
    /// Reloads everything; `Err` names what was refused (the old file stays in force).
    fn reload(&self) -> Result<String, String>;
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
    ) -> std::io::Result<Self> {
        if !addr.ip().is_loopback() {
            warn!(%addr, "the admin endpoint listens beyond loopback: anyone who reaches it can trigger reloads");
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
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        serve(stream, &shared, &*reload),
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

async fn serve(mut stream: TcpStream, shared: &Shared, reload: &dyn Reload) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return respond(&mut stream, 431, "request header too large\n").await;
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    match (method, path) {
        ("GET", "/healthz") => respond(&mut stream, 200, "ok\n").await,
        ("GET", "/readyz") => {
            if shared.directory.brokers().is_empty() {
                respond(&mut stream, 503, "no upstream broker known\n").await
            } else {
                respond(&mut stream, 200, "ready\n").await
            }
        }
        ("GET", "/metrics") => {
            let body = shared
                .metrics
                .render(shared.open_connections(), shared.directory.brokers().len());
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
        _ => {
            respond(
                &mut stream,
                404,
                "not found: try GET /healthz, /readyz, /metrics or POST /reload\n",
            )
            .await
        }
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
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
