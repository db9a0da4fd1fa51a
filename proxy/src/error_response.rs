//! Kafka's `AbstractRequest.getErrorResponse`: the whole-request error answer of one API.
//!
//! A broker that must refuse a request it cannot serve (a request other than
//! SaslAuthenticate after a v1 SaslHandshake, for instance) answers it in that API's own
//! shape, with the error on every item the request named, and then acts (closes, in the SASL
//! case). The client then reports Kafka's error instead of a bare closed connection. This
//! module builds those answers for the APIs a client sends before or around authentication
//! and on the data path; for the others kgate closes without an answer, and says so in the
//! connection's log line.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::header::{decode_body, decode_request_header, encode_response, RequestPrefix};

/// The error answer to one request frame (header and body, no size prefix), or `None` when
/// kgate has no builder for that API or cannot read the request.
pub fn error_response(prefix: &RequestPrefix, frame: &Bytes, code: i16) -> Option<Bytes> {
    let api = prefix.known_key()?;
    let version = prefix.api_version;
    let valid = api.valid_versions();
    if version < valid.min || version > valid.max {
        return None;
    }
    let (_, body) = decode_request_header(api, version, frame).ok()?;
    fn answer<T: Encodable>(api: ApiKey, prefix: &RequestPrefix, body: &T) -> Option<Bytes> {
        encode_response(api, prefix.api_version, prefix.correlation_id, body).ok()
    }
    fn read<T: Decodable>(api: ApiKey, version: i16, body: Bytes) -> Option<T> {
        decode_body(api, version, body).ok()
    }
    match api {
        ApiKey::ApiVersions => answer(
            api,
            prefix,
            &ApiVersionsResponse::default().with_error_code(code),
        ),
        ApiKey::Metadata => {
            let req: MetadataRequest = read(api, version, body)?;
            let topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_error_code(code)
                })
                .collect();
            answer(
                api,
                prefix,
                &MetadataResponse::default().with_topics(topics),
            )
        }
        ApiKey::Produce => {
            let req: ProduceRequest = read(api, version, body)?;
            let responses = req
                .topic_data
                .iter()
                .map(|t| {
                    TopicProduceResponse::default()
                        .with_name(t.name.clone())
                        .with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| {
                                    PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_error_code(code)
                                        .with_base_offset(-1)
                                        .with_log_append_time_ms(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            answer(
                api,
                prefix,
                &ProduceResponse::default().with_responses(responses),
            )
        }
        ApiKey::Fetch => {
            let req: FetchRequest = read(api, version, body)?;
            let responses = req
                .topics
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(code)
                                        .with_high_watermark(-1)
                                        .with_last_stable_offset(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            let top = if version >= 7 { code } else { 0 };
            answer(
                api,
                prefix,
                &FetchResponse::default()
                    .with_error_code(top)
                    .with_responses(responses),
            )
        }
        ApiKey::FindCoordinator => {
            let req: FindCoordinatorRequest = read(api, version, body)?;
            let resp = if version >= 4 {
                FindCoordinatorResponse::default().with_coordinators(
                    req.coordinator_keys
                        .into_iter()
                        .map(|key| {
                            Coordinator::default()
                                .with_key(key)
                                .with_node_id(BrokerId(-1))
                                .with_port(-1)
                                .with_error_code(code)
                        })
                        .collect(),
                )
            } else {
                FindCoordinatorResponse::default()
                    .with_error_code(code)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
            };
            answer(api, prefix, &resp)
        }
        ApiKey::JoinGroup => answer(
            api,
            prefix,
            &JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1),
        ),
        ApiKey::SyncGroup => answer(
            api,
            prefix,
            &SyncGroupResponse::default().with_error_code(code),
        ),
        ApiKey::Heartbeat => answer(
            api,
            prefix,
            &HeartbeatResponse::default().with_error_code(code),
        ),
        ApiKey::LeaveGroup => answer(
            api,
            prefix,
            &LeaveGroupResponse::default().with_error_code(code),
        ),
        ApiKey::ListGroups => answer(
            api,
            prefix,
            &ListGroupsResponse::default().with_error_code(code),
        ),
        ApiKey::InitProducerId => answer(
            api,
            prefix,
            &InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        ApiKey::DescribeCluster => answer(
            api,
            prefix,
            &DescribeClusterResponse::default().with_error_code(code),
        ),
        ApiKey::SaslHandshake => answer(
            api,
            prefix,
            &SaslHandshakeResponse::default().with_error_code(code),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{decode_response_header, encode_request};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::protocol::StrBytes;

    fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> (RequestPrefix, Bytes) {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(9);
        let bytes = encode_request(api, version, &header, body).unwrap();
        (RequestPrefix::peek(&bytes).unwrap(), bytes)
    }

    #[test]
    fn metadata_names_every_topic_with_the_error() {
        for version in [0i16, 4, 9, 12] {
            let req = MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("a"))))]));
            let (prefix, bytes) = frame(ApiKey::Metadata, version, &req);
            let out = error_response(&prefix, &bytes, 34).unwrap();
            let (header, mut body) =
                decode_response_header(ApiKey::Metadata, version, &out).unwrap();
            assert_eq!(header.correlation_id, 9);
            let resp = MetadataResponse::decode(&mut body, version).unwrap();
            assert_eq!(resp.topics.len(), 1);
            assert_eq!(resp.topics[0].error_code, 34);
        }
    }

    #[test]
    fn unknown_or_unreadable_requests_get_none() {
        let (prefix, bytes) = frame(ApiKey::Metadata, 9, &MetadataRequest::default());
        let cut = bytes.slice(..bytes.len() - 1);
        assert!(error_response(&prefix, &cut, 34).is_none());
        let (prefix, bytes) = frame(ApiKey::DeleteTopics, 4, &DeleteTopicsRequest::default());
        assert!(error_response(&prefix, &bytes, 34).is_none());
    }
}
