//! Connections to the upstream cluster, and discovering it.
//!
//! kgate learns the upstream's brokers and API versions by asking it, as any client would:
//! ApiVersions v0 (which every broker answers) and Metadata v1 with no topics.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::frame::{read_frame, write_frame};
use crate::header::{decode_response_header, encode_request};

/// How long kgate waits for an upstream connection or answer during discovery.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response kgate reads from an upstream broker.
pub const MAX_UPSTREAM_FRAME: usize = 1024 * 1024 * 1024;

/// Why the upstream could not be reached or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No address of the list accepted a connection.
    #[error("cannot connect to any upstream broker of {addrs}: {last}")]
    Unreachable {
        /// The addresses tried.
        addrs: String,
        /// The last failure.
        last: String,
    },
    /// The upstream answered something kgate cannot use.
    #[error("upstream {addr} answered {api:?} badly: {reason}")]
    BadAnswer {
        /// The broker asked.
        addr: String,
        /// The request sent.
        api: ApiKey,
        /// What was wrong.
        reason: String,
    },
}

/// What discovery learned about the upstream cluster.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// API key → (min, max) the upstream supports.
    pub versions: BTreeMap<i16, (i16, i16)>,
    /// Node id → (host, port) as the upstream advertises them.
    pub brokers: BTreeMap<i32, (String, i32)>,
}

/// Opens a TCP connection to an upstream broker with `TCP_NODELAY`.
///
/// # Errors
/// The connection error, or a timeout.
pub async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let stream = timeout(DISCOVERY_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects to the first reachable address of `addrs`.
///
/// # Errors
/// [`UpstreamError::Unreachable`] when none answers.
pub async fn connect_any(addrs: &[String]) -> Result<(TcpStream, String), UpstreamError> {
    let mut last = String::from("no upstream address configured");
    for addr in addrs {
        match connect(addr).await {
            Ok(stream) => return Ok((stream, addr.clone())),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(UpstreamError::Unreachable {
        addrs: addrs.join(","),
        last,
    })
}

/// Asks the upstream for its API versions and brokers.
///
/// # Errors
/// [`UpstreamError`] if no broker answers or the answers cannot be parsed.
pub async fn discover(addrs: &[String]) -> Result<ClusterView, UpstreamError> {
    let (mut stream, addr) = connect_any(addrs).await?;
    let bad = |api: ApiKey, reason: String| UpstreamError::BadAnswer {
        addr: addr.clone(),
        api,
        reason,
    };
    let api_versions: ApiVersionsResponse = round_trip(
        &mut stream,
        ApiKey::ApiVersions,
        0,
        1,
        &ApiVersionsRequest::default(),
    )
    .await
    .map_err(|e| bad(ApiKey::ApiVersions, e))?;
    if api_versions.error_code != 0 {
        return Err(bad(
            ApiKey::ApiVersions,
            format!("error code {}", api_versions.error_code),
        ));
    }
    let versions: BTreeMap<i16, (i16, i16)> = api_versions
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect();
    let metadata: MetadataResponse = round_trip(
        &mut stream,
        ApiKey::Metadata,
        1,
        2,
        &MetadataRequest::default().with_topics(Some(Vec::new())),
    )
    .await
    .map_err(|e| bad(ApiKey::Metadata, e))?;
    let brokers: BTreeMap<i32, (String, i32)> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, (b.host.to_string(), b.port)))
        .collect();
    // A client's requests may go to any broker: offer only what every broker serves, so that
    // during a rolling upgrade no client is offered a version its broker lacks. A broker
    // that cannot be asked now (down) is left out until the next refresh.
    let mut versions = versions;
    for (node_id, (host, port)) in &brokers {
        let broker = format!("{host}:{port}");
        if broker == addr {
            continue;
        }
        match broker_versions(&broker).await {
            Ok(theirs) => versions = intersect(&versions, &theirs),
            Err(e) => {
                tracing::warn!(node_id, %broker, error = %e, "cannot ask a broker for its API versions")
            }
        }
    }
    Ok(ClusterView { versions, brokers })
}

/// The ApiVersions ranges one broker serves.
async fn broker_versions(addr: &str) -> Result<BTreeMap<i16, (i16, i16)>, String> {
    let mut stream = connect(addr).await.map_err(|e| e.to_string())?;
    let resp: ApiVersionsResponse = round_trip(
        &mut stream,
        ApiKey::ApiVersions,
        0,
        1,
        &ApiVersionsRequest::default(),
    )
    .await?;
    if resp.error_code != 0 {
        return Err(format!("ApiVersions error code {}", resp.error_code));
    }
    Ok(resp
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect())
}

/// The API versions both sides serve: keys present in both, each with the overlap of the
/// two ranges (keys whose ranges do not overlap are left out).
pub fn intersect(
    a: &BTreeMap<i16, (i16, i16)>,
    b: &BTreeMap<i16, (i16, i16)>,
) -> BTreeMap<i16, (i16, i16)> {
    a.iter()
        .filter_map(|(key, (amin, amax))| {
            let (bmin, bmax) = b.get(key)?;
            let (min, max) = ((*amin).max(*bmin), (*amax).min(*bmax));
            (min <= max).then_some((*key, (min, max)))
        })
        .collect()
}

async fn round_trip<Req, Resp>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> Result<Resp, String>
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: Decodable,
{
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("kgate")));
    let frame = encode_request(api, version, &header, request).map_err(|e| e.to_string())?;
    let exchange = async {
        write_frame(stream, &frame)
            .await
            .map_err(|e| e.to_string())?;
        read_frame(stream, MAX_UPSTREAM_FRAME)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "connection closed".to_string())
    };
    let response: Bytes = timeout(DISCOVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_string())??;
    let (header, mut body) =
        decode_response_header(api, version, &response).map_err(|e| e.to_string())?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "correlation id {} instead of {correlation_id}",
            header.correlation_id
        ));
    }
    Resp::decode(&mut body, version).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::intersect;
    use std::collections::BTreeMap;

    #[test]
    fn versions_are_the_overlap_of_every_broker() {
        let a = BTreeMap::from([(0, (0, 11)), (1, (4, 16)), (3, (0, 12)), (60, (0, 1))]);
        let b = BTreeMap::from([(0, (3, 9)), (1, (0, 12)), (3, (0, 12)), (61, (0, 0))]);
        assert_eq!(
            intersect(&a, &b),
            BTreeMap::from([(0, (3, 9)), (1, (4, 12)), (3, (0, 12))])
        );
        let disjoint = BTreeMap::from([(0, (12, 13))]);
        assert!(intersect(&a, &disjoint).is_empty());
    }
}
