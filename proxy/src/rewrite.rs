//! Rewriting broker addresses in responses so that clients only ever see kgate's.
//!
//! Which responses carry broker addresses is declared in [`crate::registry`]: Metadata,
//! FindCoordinator, DescribeCluster, and Produce (v10+), Fetch (v16+), ShareFetch and
//! ShareAcknowledge, whose answers may carry KIP-951 leader endpoints (sent with
//! NOT_LEADER_OR_FOLLOWER). A Produce or Fetch answer is walked, not decoded
//! ([`crate::scan`]), and decoded and rewritten only when it carries endpoints (rarely);
//! otherwise it goes on as the broker's bytes. Every other response is forwarded byte for
//! byte.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterResponse, FetchResponse, FindCoordinatorResponse,
    MetadataResponse, ProduceResponse, ShareAcknowledgeResponse, ShareFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::directory::{Directory, DirectoryError};
use crate::header::decode_response_header;
use crate::scan::{fetch_names_brokers, produce_names_brokers, FETCH_WITH_ENDPOINTS};

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
    if (api == ApiKey::Produce && version < PRODUCE_WITH_ENDPOINTS)
        || (api == ApiKey::Fetch && version < FETCH_WITH_ENDPOINTS)
    {
        return Ok(None);
    }
    let (_, body) =
        decode_response_header(api, version, &frame).map_err(|e| decode_err(e.reason))?;
    let header_len = frame.len() - body.len();
    // Allocated only once an answer is rewritten (most are passed on as they are).
    let mut out = BytesMut::new();
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
            // Walked, not decoded: only an answer with endpoints is.
            if !produce_names_brokers(&body, version).map_err(|e| decode_err(e.to_string()))? {
                return Ok(None);
            }
            let mut r = decode::<ProduceResponse>(body, version).map_err(decode_err)?;
            rewrite_endpoints(&mut r.node_endpoints, dir, &host, |n| {
                (n.node_id.0, &mut n.host, &mut n.port)
            });
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        ApiKey::Fetch => {
            // Walked, not decoded: record batches are copied only when endpoints are there.
            if !fetch_names_brokers(&body, version).map_err(|e| decode_err(e.to_string()))? {
                return Ok(None);
            }
            let mut r = decode::<FetchResponse>(body, version).map_err(decode_err)?;
            rewrite_endpoints(&mut r.node_endpoints, dir, &host, |n| {
                (n.node_id.0, &mut n.host, &mut n.port)
            });
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        ApiKey::ShareFetch => {
            let mut r = decode::<ShareFetchResponse>(body, version).map_err(decode_err)?;
            if r.node_endpoints.is_empty() {
                return Ok(None);
            }
            rewrite_endpoints(&mut r.node_endpoints, dir, &host, |n| {
                (n.node_id.0, &mut n.host, &mut n.port)
            });
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        ApiKey::ShareAcknowledge => {
            let mut r = decode::<ShareAcknowledgeResponse>(body, version).map_err(decode_err)?;
            if r.node_endpoints.is_empty() {
                return Ok(None);
            }
            rewrite_endpoints(&mut r.node_endpoints, dir, &host, |n| {
                (n.node_id.0, &mut n.host, &mut n.port)
            });
            encode(&r, &mut out, version).map_err(decode_err)?;
        }
        _ => return Ok(None),
    }
    let mut framed = BytesMut::with_capacity(header_len + out.len());
    framed.extend_from_slice(&frame[..header_len]);
    framed.extend_from_slice(&out);
    Ok(Some(framed.freeze()))
}

/// Points leader endpoints (KIP-951 hints) at kgate's listeners; an endpoint kgate cannot
/// serve is dropped, and the client then asks Metadata.
fn rewrite_endpoints<E>(
    endpoints: &mut Vec<E>,
    dir: &Directory,
    host: &StrBytes,
    parts: impl Fn(&mut E) -> (i32, &mut StrBytes, &mut i32),
) {
    endpoints.retain_mut(|e| {
        let (node, h, port) = parts(e);
        match dir.register(node, h, *port) {
            Ok(p) => {
                *h = host.clone();
                *port = i32::from(p);
                true
            }
            Err(err) => {
                dir.report_unservable(node, &err);
                false
            }
        }
    });
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
        for version in [1i16, 9, 11, 12, 13] {
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
        // Node 5's port (base + 5) is taken by someone else; node 6's (the next one) is free
        // when chosen (another test running beside this one once held it).
        let (taken, port) = loop {
            let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = taken.local_addr().unwrap().port();
            let next_free = port
                .checked_add(1)
                .is_some_and(|next| std::net::TcpListener::bind(("127.0.0.1", next)).is_ok());
            if next_free {
                break (taken, port);
            }
        };
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
        let same = rewrite_response(ApiKey::Produce, 11, plain.clone(), &dir).expect("rewrite");
        assert!(
            same.is_none(),
            "an answer without endpoints is passed on as is"
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

    #[tokio::test]
    async fn share_leader_endpoints_coordinators_and_cluster_brokers_get_kgate_addresses() {
        use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
        use kafka_protocol::messages::find_coordinator_response::Coordinator;
        use kafka_protocol::messages::{share_acknowledge_response, share_fetch_response};
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "gw.example".into(),
            PortPolicy::Ephemeral,
        );
        let host = || StrBytes::from_static_str("10.1.2.3");
        let check = |api: ApiKey, version: i16, frame: Bytes| -> Bytes {
            let out = rewrite_response(api, version, frame, &dir)
                .expect("rewrite")
                .expect("rewritten");
            let (_, body) = decode_response_header(api, version, &out).expect("header");
            body
        };

        let plain = encode_response(ApiKey::ShareFetch, 1, 5, &ShareFetchResponse::default())
            .expect("encode");
        let same = rewrite_response(ApiKey::ShareFetch, 1, plain.clone(), &dir).expect("as is");
        assert!(
            same.is_none(),
            "an answer without endpoints is passed on as is"
        );
        let moved = ShareFetchResponse::default().with_node_endpoints(vec![
            share_fetch_response::NodeEndpoint::default()
                .with_node_id(broker_id(2))
                .with_host(host())
                .with_port(9092),
        ]);
        let frame = encode_response(ApiKey::ShareFetch, 1, 5, &moved).expect("encode");
        let r: ShareFetchResponse = decode(check(ApiKey::ShareFetch, 1, frame), 1).expect("decode");
        assert_eq!(r.node_endpoints[0].host.as_str(), "gw.example");
        assert_ne!(r.node_endpoints[0].port, 9092);

        let moved = ShareAcknowledgeResponse::default().with_node_endpoints(vec![
            share_acknowledge_response::NodeEndpoint::default()
                .with_node_id(broker_id(3))
                .with_host(host())
                .with_port(9093),
        ]);
        let frame = encode_response(ApiKey::ShareAcknowledge, 1, 5, &moved).expect("encode");
        let r: ShareAcknowledgeResponse =
            decode(check(ApiKey::ShareAcknowledge, 1, frame), 1).expect("decode");
        assert_eq!(r.node_endpoints[0].host.as_str(), "gw.example");

        let coordinators =
            FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(StrBytes::from_static_str("g"))
                .with_node_id(broker_id(2))
                .with_host(host())
                .with_port(9092)]);
        let frame = encode_response(ApiKey::FindCoordinator, 6, 5, &coordinators).expect("encode");
        let r: FindCoordinatorResponse =
            decode(check(ApiKey::FindCoordinator, 6, frame), 6).expect("decode");
        assert_eq!(r.coordinators[0].host.as_str(), "gw.example");

        let cluster = DescribeClusterResponse::default()
            .with_controller_id(broker_id(2))
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(broker_id(2))
                .with_host(host())
                .with_port(9092)
                .with_is_fenced(true)]);
        let frame = encode_response(ApiKey::DescribeCluster, 2, 5, &cluster).expect("encode");
        let r: DescribeClusterResponse =
            decode(check(ApiKey::DescribeCluster, 2, frame), 2).expect("decode");
        assert_eq!(r.brokers[0].host.as_str(), "gw.example");
        assert!(r.brokers[0].is_fenced, "v2's fencing flag passes through");
    }
}
