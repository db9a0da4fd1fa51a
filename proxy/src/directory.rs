//! The broker directory: which upstream broker each client-facing port stands for.
//!
//! Clients must never learn a broker's own address, or they could bypass the gateway. kgate
//! gives every upstream broker (by node id) a listener port of its own and rewrites every
//! broker address in responses to `advertised_host:port`. Brokers are learned from the
//! upstream's metadata, never configured, and a broker that appears later gets its port the
//! moment kgate first sees it, without a restart.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tracing::info;

/// A broker as kgate knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEntry {
    /// The broker's own address, `host:port`, as the upstream advertises it.
    pub upstream: String,
    /// kgate's port for this broker.
    pub port: u16,
}

/// Starts serving a freshly bound listener for a node id; installed by the server.
pub type Spawner = Arc<dyn Fn(i32, tokio::net::TcpListener) + Send + Sync>;

/// How broker ports are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPolicy {
    /// `base + node_id`: the same port for a node across restarts of kgate.
    Offset(u16),
    /// Any free port (tests, and when the bootstrap port itself is ephemeral).
    Ephemeral,
}

/// Why a broker could not get a port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// `base + node_id` does not fit in a port number.
    #[error("node id {node_id} has no port: {base} + {node_id} is beyond 65535 (set broker_port_base lower)")]
    PortOutOfRange {
        /// The broker's node id.
        node_id: i32,
        /// The configured base.
        base: u16,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr} for node {node_id}: {source}")]
    Bind {
        /// The broker's node id.
        node_id: i32,
        /// The address kgate tried.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Node id → upstream address and kgate port, shared by every connection.
pub struct Directory {
    listen_ip: IpAddr,
    advertised_host: String,
    ports: PortPolicy,
    brokers: Mutex<BTreeMap<i32, BrokerEntry>>,
    spawner: Mutex<Option<Spawner>>,
    /// Nodes kgate could not serve, and when that was last logged (one line a minute each).
    unservable: Mutex<BTreeMap<i32, std::time::Instant>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("listen_ip", &self.listen_ip)
            .field("advertised_host", &self.advertised_host)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// A directory whose listeners bind `listen_ip` and are advertised as `advertised_host`.
    pub fn new(listen_ip: IpAddr, advertised_host: String, ports: PortPolicy) -> Self {
        Self {
            listen_ip,
            advertised_host,
            ports,
            brokers: Mutex::new(BTreeMap::new()),
            spawner: Mutex::new(None),
            unservable: Mutex::new(BTreeMap::new()),
        }
    }

    /// Installs the function that serves new broker listeners.
    pub fn set_spawner(&self, spawner: Spawner) {
        *self.spawner.lock().unwrap_or_else(PoisonError::into_inner) = Some(spawner);
    }

    /// The host name clients are told to connect to.
    pub fn advertised_host(&self) -> &str {
        &self.advertised_host
    }

    /// The broker behind a node id, if known.
    pub fn get(&self, node_id: i32) -> Option<BrokerEntry> {
        self.lock().get(&node_id).cloned()
    }

    /// Every known broker.
    pub fn brokers(&self) -> BTreeMap<i32, BrokerEntry> {
        self.lock().clone()
    }

    /// Records that node `node_id` lives at `host:port` upstream and returns kgate's port for
    /// it, binding and serving a new listener the first time the node is seen.
    ///
    /// # Errors
    /// [`DirectoryError`] if no port can be bound for a new node.
    pub fn register(&self, node_id: i32, host: &str, port: i32) -> Result<u16, DirectoryError> {
        let upstream = format!("{host}:{port}");
        let mut brokers = self.lock();
        if let Some(entry) = brokers.get_mut(&node_id) {
            if entry.upstream != upstream {
                info!(node_id, old = %entry.upstream, new = %upstream, "upstream broker moved");
                entry.upstream = upstream;
            }
            return Ok(entry.port);
        }
        let want = match self.ports {
            PortPolicy::Ephemeral => 0,
            PortPolicy::Offset(base) => u16::try_from(i64::from(base) + i64::from(node_id))
                .map_err(|_| DirectoryError::PortOutOfRange { node_id, base })?,
        };
        let addr = SocketAddr::new(self.listen_ip, want);
        let bind_err = |source| DirectoryError::Bind {
            node_id,
            addr,
            source,
        };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        std_listener.set_nonblocking(true).map_err(bind_err)?;
        let bound = std_listener.local_addr().map_err(bind_err)?.port();
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
        info!(node_id, upstream = %upstream, port = bound, "serving broker");
        brokers.insert(
            node_id,
            BrokerEntry {
                upstream,
                port: bound,
            },
        );
        drop(brokers);
        let spawner = self
            .spawner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(spawn) = spawner {
            spawn(node_id, listener);
        }
        Ok(bound)
    }

    /// Logs, at most once a minute per node, that a broker cannot be served (its port cannot
    /// be bound): the gateway keeps serving the others.
    pub fn report_unservable(&self, node_id: i32, error: &DirectoryError) {
        let mut seen = self
            .unservable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        let due = seen
            .get(&node_id)
            .is_none_or(|t| now.duration_since(*t) >= std::time::Duration::from_secs(60));
        if due {
            seen.insert(node_id, now);
            tracing::warn!(node_id, %error, "broker left out of answers: kgate cannot serve it");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, BrokerEntry>> {
        self.brokers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn a_node_keeps_its_port_when_it_moves() {
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "localhost".into(),
            PortPolicy::Ephemeral,
        );
        let p1 = dir.register(1, "10.0.0.1", 9092).unwrap();
        let p2 = dir.register(2, "10.0.0.2", 9092).unwrap();
        assert_ne!(p1, p2);
        assert_eq!(dir.register(1, "10.0.0.9", 9092).unwrap(), p1);
        assert_eq!(dir.get(1).unwrap().upstream, "10.0.0.9:9092");
    }

    #[tokio::test]
    async fn offset_ports_out_of_range_are_refused() {
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "localhost".into(),
            PortPolicy::Offset(65000),
        );
        assert!(matches!(
            dir.register(1000, "h", 1),
            Err(DirectoryError::PortOutOfRange { .. })
        ));
    }
}
