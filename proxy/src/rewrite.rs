//! Rewriting broker addresses in responses so that clients only ever see kgate's.
//!
//! Which responses carry broker addresses is declared in [`crate::registry`]: Metadata,
//! FindCoordinator, DescribeCluster, and Produce from v10 (KIP-951 leader endpoints, sent with
//! NOT_LEADER_OR_FOLLOWER). A Produce answer without endpoints (the usual case) is scanned,
//! not decoded ([`crate::produce_scan`]), and passed on as the broker's bytes; Fetch answers
//! carry endpoints only from v16, which kgate does not serve. Every other response is
//! forwarded byte for byte.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
    ProduceResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::directory::{Directory, DirectoryError};
use crate::header::decode_response_header;
use crate::produce_scan::has_node_endpoints;

/// Why a response could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The upstream sent a response kgate cannot parse.
    #[error("cannot parse the upstream's {api:?} v{version} response: {reason}")]
    Decode {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// The decoder's message.
        reason: String,
    },
    /// A broker could not be given a port.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// Kafka's COORDINATOR_NOT_AVAILABLE: what a client gets for a coordinator kgate cannot serve.
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// The first Produce version whose answers may carry leader endpoints (KIP-951).
const PRODUCE_WITH_ENDPOINTS: i16 = 10;

/// Whether responses of this API carry broker addresses (declared in [`crate::registry`]).
pub fn needs_rewrite(api: ApiKey) -> bool {
    crate::registry::names_brokers(api)
}

/// Rewrites the broker addresses of one response frame (header and body, no size prefix).
///
/// # Returns
/// The new frame, or `None` when nothing had to change (the caller forwards the broker's
/// bytes as they came, without copying them into a new frame).
///
/// # Errors
/// [`RewriteError`] if the response cannot be parsed or a broker cannot get a port.
pub fn rewrite_response(
    api: ApiKey,
    version: i16,
    frame: Bytes,
    dir: &Directory,
) -> Result<Option<Bytes>, RewriteError> {
    let decode_err = |reason: String| RewriteError::Decode {
        api,
        version,
        reason,
    };
    if api == ApiKey::Produce && version < PRODUCE_WITH_ENDPOINTS {
        return Ok(None);
    }
    let (_, body) =
        decode_response_header(api, version, &frame).map_err(|e| decode_err(e.reason))?;
    if api == ApiKey::Produce
        && !has_node_endpoints(version, &body).map_err(|e| decode_err(e.to_string()))?
    {
        return Ok(None);
    }
    let header_len = frame.len() - body.len();
    let mut out = BytesMut::with_capacity(frame.len() + 64);
    out.extend_from_slice(&frame[..header_len]);
    let host = StrBytes::from_string(dir.advertised_host().to_owned());
    match api {
        ApiKey::Metadata => {
            let mut m = decode::<MetadataResponse>(body, version).map_err(decode_err)?;
            // A broker kgate cannot serve is left out (clients see its partitions as
            // unavailable) rather than failing every Metadata answer.
            m.brokers
                .retain_mut(|b| match dir.register(b.node_id.0, &b.host, b.port) {
                    Ok(port) => {
                        b.host = host.clone();
                        b.port = i32::from(port);
                        true
                    }
                    Err(e) => {
                        dir.report_unservable(b.node_id.0, &e);
                        false
                    }
                });
            // librdkafka's mock cluster reports a controller that does not exist; admin
            // clients then wait forever. Point clients at a real broker instead.
            if !m.brokers.iter().any(|b| b.node_id == m.controller_id) {
                if let Some(first) = m.brokers.first() {
                    m.controller_id = first.node_id;
                }
            }
            encode(&m, &mut out, version).map_err(decode_err)?;
        }
        ApiKey::FindCoordinator => {
            let mut r = decode::<FindCoordinatorResponse>(body, version).map_err(decode_err)?;
            if r.node_id.0 >= 0 && !r.host.is_empty() {
                match dir.register(r.node_id.0, &r.host, r.port) {
                    Ok(port) => {
                        r.host = host.clone();
                        r.port = i32::from(port);
                    }
                    Err(e) => {
                        dir.report_unservable(r.node_id.0, &e);
                        r.error_code = COORDINATOR_NOT_AVAILABLE;
                        r.node_id = BrokerId(-1);
                        r.host = StrBytes::default();
                        r.port = -1;
                    }
                }
            }
            for c in &mut r.coordinators {
                if c.node_id.0 >= 0 && !c.host.is_empty() {
                    match dir.register(c.node_id.0, &c.host, c.port) {
                        Ok(port) => {
                            c.host = host.clone();
                            c.port = i32::from(port);
                        }
                        Err(e) => {
                            dir.report_unservable(c.node_id.0, &e);
                            c.error_code = COORDINATOR_NOT_AVAILABLE;
                            c.node_id = BrokerId(-1);
                            c.host = StrBytes::default();
                            c.port = -1;
                        }
                    }
                }
            }
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        ApiKey::DescribeCluster => {
            let mut r = decode::<DescribeClusterResponse>(body, version).map_err(decode_err)?;
            r.brokers
                .retain_mut(|b| match dir.register(b.broker_id.0, &b.host, b.port) {
                    Ok(port) => {
                        b.host = host.clone();
                        b.port = i32::from(port);
                        true
                    }
                    Err(e) => {
                        dir.report_unservable(b.broker_id.0, &e);
                        false
                    }
                });
            if !r.brokers.iter().any(|b| b.broker_id == r.controller_id) {
                if let Some(first) = r.brokers.first() {
                    r.controller_id = first.broker_id;
                }
            }
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        ApiKey::Produce => {
            let mut r = decode::<ProduceResponse>(body, version).map_err(decode_err)?;
            // An endpoint kgate cannot serve is dropped: the client then asks Metadata.
            r.node_endpoints
                .retain_mut(|n| match dir.register(n.node_id.0, &n.host, n.port) {
                    Ok(port) => {
                        n.host = host.clone();
                        n.port = i32::from(port);
                        true
                    }
                    Err(e) => {
                        dir.report_unservable(n.node_id.0, &e);
                        false
                    }
                });
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        _ => return Ok(None),
    }
    Ok(Some(out.freeze()))
}

fn decode<T: Decodable>(mut body: Bytes, version: i16) -> Result<T, String> {
    T::decode(&mut body, version).map_err(|e| e.to_string())
}

fn encode<T: Encodable>(value: &T, out: &mut BytesMut, version: i16) -> Result<(), String> {
    value.encode(out, version).map_err(|e| e.to_string())
}

/// A broker id as kafka-protocol spells it, for tests and builders.
pub fn broker_id(id: i32) -> BrokerId {
    BrokerId(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PortPolicy;
    use crate::header::encode_response;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use std::net::{IpAddr, Ipv4Addr};

    #[tokio::test]
    async fn metadata_brokers_get_kgate_addresses_and_a_real_controller() {
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "gateway.example".into(),
            PortPolicy::Ephemeral,
        );
        for version in [1i16, 9, 11] {
            let body = MetadataResponse::default()
                .with_controller_id(broker_id(0))
                .with_brokers(vec![
                    MetadataResponseBroker::default()
                        .with_node_id(broker_id(1))
                        .with_host(StrBytes::from_static_str("10.1.1.1"))
                        .with_port(9092),
                    MetadataResponseBroker::default()
                        .with_node_id(broker_id(2))
                        .with_host(StrBytes::from_static_str("10.1.1.2"))
                        .with_port(9092),
                ]);
            let frame = encode_response(ApiKey::Metadata, version, 42, &body).unwrap();
            let out = rewrite_response(ApiKey::Metadata, version, frame, &dir)
                .unwrap()
                .expect("rewritten");
            let (header, rest) = decode_response_header(ApiKey::Metadata, version, &out).unwrap();
            assert_eq!(header.correlation_id, 42);
            let m: MetadataResponse = decode(rest, version).unwrap();
            for b in &m.brokers {
                assert_eq!(&*b.host, "gateway.example");
                assert_eq!(b.port, i32::from(dir.get(b.node_id.0).unwrap().port));
            }
            assert_eq!(m.controller_id, broker_id(1));
        }
        assert_eq!(dir.get(2).unwrap().upstream, "10.1.1.2:9092");
    }

    #[tokio::test]
    async fn a_broker_whose_port_cannot_be_bound_is_left_out_and_the_rest_is_served() {
        // Node 5's port (base + 5) is taken by someone else.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let Some(base) = port.checked_sub(5) else {
            return;
        };
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "gw".into(),
            PortPolicy::Offset(base),
        );
        let broker = |id: i32| {
            MetadataResponseBroker::default()
                .with_node_id(broker_id(id))
                .with_host(StrBytes::from_static_str("10.0.0.1"))
                .with_port(9092 + id)
        };
        let body = MetadataResponse::default()
            .with_controller_id(broker_id(5))
            .with_brokers(vec![broker(5), broker(6)]);
        let frame = encode_response(ApiKey::Metadata, 9, 7, &body).unwrap();
        let out = rewrite_response(ApiKey::Metadata, 9, frame, &dir)
            .expect("still answered")
            .expect("rewritten");
        let (_, rest) = decode_response_header(ApiKey::Metadata, 9, &out).unwrap();
        let m: MetadataResponse = decode(rest, 9).unwrap();
        let ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
        assert_eq!(ids, [6], "node 5 is left out, node 6 served");
        assert_eq!(m.controller_id, broker_id(6));
        // Its coordinator is answered COORDINATOR_NOT_AVAILABLE, not a closed connection.
        let coordinator = FindCoordinatorResponse::default()
            .with_node_id(broker_id(5))
            .with_host(StrBytes::from_static_str("10.0.0.1"))
            .with_port(9097);
        let frame = encode_response(ApiKey::FindCoordinator, 3, 8, &coordinator).unwrap();
        let out = rewrite_response(ApiKey::FindCoordinator, 3, frame, &dir)
            .expect("answered")
            .expect("rewritten");
        let (_, rest) = decode_response_header(ApiKey::FindCoordinator, 3, &out).unwrap();
        let r: FindCoordinatorResponse = decode(rest, 3).unwrap();
        assert_eq!(r.error_code, COORDINATOR_NOT_AVAILABLE);
        assert_eq!(r.node_id, broker_id(-1));
        drop(taken);
    }

    #[tokio::test]
    async fn garbage_upstream_response_is_an_error_not_a_panic() {
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "h".into(),
            PortPolicy::Ephemeral,
        );
        let frame = Bytes::from_static(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f, 1]);
        assert!(rewrite_response(ApiKey::Metadata, 9, frame, &dir).is_err());
    }

    #[tokio::test]
    async fn produce_leader_endpoints_get_kgate_addresses_and_plain_answers_pass_as_bytes() {
        use kafka_protocol::messages::produce_response::NodeEndpoint;
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "gw.example".into(),
            PortPolicy::Ephemeral,
        );
        let plain =
            encode_response(ApiKey::Produce, 11, 5, &ProduceResponse::default()).expect("encode");
        let same = rewrite_response(ApiKey::Produce, 11, plain, &dir).expect("rewrite");
        assert_eq!(same, None, "an answer without endpoints is passed on as is");
        let truncated = encode_response(ApiKey::Produce, 11, 5, &ProduceResponse::default())
            .expect("encode")
            .slice(..6);
        assert!(
            rewrite_response(ApiKey::Produce, 11, truncated, &dir).is_err(),
            "a truncated answer is an error"
        );
        let moved = ProduceResponse::default().with_node_endpoints(vec![NodeEndpoint::default()
            .with_node_id(broker_id(2))
            .with_host(StrBytes::from_static_str("10.1.2.3"))
            .with_port(9092)]);
        let frame = encode_response(ApiKey::Produce, 11, 5, &moved).expect("encode");
        let out = rewrite_response(ApiKey::Produce, 11, frame, &dir)
            .expect("rewrite")
            .expect("rewritten");
        let (_, body) = decode_response_header(ApiKey::Produce, 11, &out).expect("header");
        let r: ProduceResponse = decode(body, 11).expect("decode");
        assert_eq!(r.node_endpoints[0].host.as_str(), "gw.example");
        assert_ne!(r.node_endpoints[0].port, 9092);
    }
}
