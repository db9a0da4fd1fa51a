//! Rewriting broker addresses in responses so that clients only ever see kgate's.
//!
//! Only three responses carry broker addresses in the versions kgate accepts: Metadata,
//! FindCoordinator and DescribeCluster (Produce and Fetch responses carry node endpoints only
//! from versions the allow-table refuses). Every other response is forwarded byte for byte.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::directory::{Directory, DirectoryError};
use crate::header::decode_response_header;

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

/// Whether responses of this API carry broker addresses (declared in [`crate::registry`]).
pub fn needs_rewrite(api: ApiKey) -> bool {
    crate::registry::names_brokers(api)
}

/// Rewrites the broker addresses of one response frame (header and body, no size prefix).
///
/// # Errors
/// [`RewriteError`] if the response cannot be parsed or a broker cannot get a port.
pub fn rewrite_response(
    api: ApiKey,
    version: i16,
    frame: Bytes,
    dir: &Directory,
) -> Result<Bytes, RewriteError> {
    let decode_err = |reason: String| RewriteError::Decode {
        api,
        version,
        reason,
    };
    let (_, body) =
        decode_response_header(api, version, &frame).map_err(|e| decode_err(e.reason))?;
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
        _ => return Ok(frame),
    }
    Ok(out.freeze())
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
            let out = rewrite_response(ApiKey::Metadata, version, frame, &dir).unwrap();
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
    async fn garbage_upstream_response_is_an_error_not_a_panic() {
        let dir = Directory::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "h".into(),
            PortPolicy::Ephemeral,
        );
        let frame = Bytes::from_static(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f, 1]);
        assert!(rewrite_response(ApiKey::Metadata, 9, frame, &dir).is_err());
    }
}
