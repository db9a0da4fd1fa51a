//! What an injected error looks like on the wire, per API.
//!
//! A produce that a fault fails is not written: its matching topics are cut from the request
//! and answered with the error, the rest goes on to the broker (Kafka answers per partition,
//! so one topic can fail while another is written). Every other API that a fault can fail is
//! read-only or retried by the client, so kgate forwards it and puts the error into the
//! broker's answer: into the partitions of the matching topic, or into the top-level error
//! code when the rule names no topic.

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatResponse, FetchRequest, FetchResponse, FindCoordinatorResponse,
    HeartbeatResponse, InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    ProduceRequest, ProduceResponse, SyncGroupResponse,
};

use crate::authz::data::produce_errors;
use crate::authz::topic_ids::TopicIds;
use crate::authz::{apply_fixup, typed_fixup, Fixup};
use crate::header::{decode_body, decode_request_header, encode_request, encode_response};

/// The topics a request names, for rules that filter on a topic; empty for APIs without
/// topics (or with only topic ids). The flag is set for a Metadata request about every
/// topic, which is about any one topic too.
///
/// # Errors
/// A malformed request (the caller closes the connection, as for any malformed request).
pub fn request_topics(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
    ids: Option<&TopicIds>,
) -> Result<(Vec<String>, bool), String> {
    // A topic named by id (Fetch v13+) matches by the name kgate learned for the id.
    let by_id = |id: uuid::Uuid| ids.and_then(|ids| ids.name(id)).unwrap_or_default();
    let (_, body) = decode_request_header(api, version, frame).map_err(|e| e.to_string())?;
    let names = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>();
    let d = |e: crate::header::DecodeError| e.to_string();
    let mut all = false;
    let topics = match api {
        ApiKey::Produce => {
            let r: ProduceRequest = decode_body(api, version, body).map_err(d)?;
            names(&mut r.topic_data.iter().map(|t| t.name.to_string()))
        }
        ApiKey::Fetch => {
            let r: FetchRequest = decode_body(api, version, body).map_err(d)?;
            names(&mut r.topics.iter().map(|t| {
                if t.topic.is_empty() {
                    by_id(t.topic_id)
                } else {
                    t.topic.to_string()
                }
            }))
        }
        ApiKey::ListOffsets => {
            let r: ListOffsetsRequest = decode_body(api, version, body).map_err(d)?;
            names(&mut r.topics.iter().map(|t| t.name.to_string()))
        }
        ApiKey::Metadata => {
            let r: MetadataRequest = decode_body(api, version, body).map_err(d)?;
            // Null (v1+) or, in v0, empty: every topic.
            all = r
                .topics
                .as_ref()
                .is_none_or(|t| version == 0 && t.is_empty());
            names(
                &mut r
                    .topics
                    .iter()
                    .flatten()
                    .filter_map(|t| t.name.as_ref().map(|n| n.to_string())),
            )
        }
        ApiKey::OffsetCommit => {
            let r: OffsetCommitRequest = decode_body(api, version, body).map_err(d)?;
            names(&mut r.topics.iter().map(|t| t.name.to_string()))
        }
        ApiKey::OffsetFetch => {
            let r: OffsetFetchRequest = decode_body(api, version, body).map_err(d)?;
            let mut v: Vec<String> = r
                .topics
                .iter()
                .flatten()
                .map(|t| t.name.to_string())
                .collect();
            v.extend(
                r.groups
                    .iter()
                    .flat_map(|g| g.topics.iter().flatten())
                    .map(|t| t.name.to_string()),
            );
            v
        }
        _ => Vec::new(),
    };
    Ok((topics, all))
}

fn hits(topic: &Option<String>, name: &str) -> bool {
    topic.as_deref().is_none_or(|t| t == name)
}

/// A fixup that puts `code` into the broker's answer (into the partitions of `topic`, or
/// everywhere when `topic` is `None`); `None` for an API faults cannot fail.
pub fn error_fixup(
    api: ApiKey,
    version: i16,
    code: i16,
    topic: Option<String>,
    ids: Option<TopicIds>,
) -> Option<Fixup> {
    Some(match api {
        ApiKey::Fetch => typed_fixup::<FetchResponse, _>(version, move |r| {
            // From v13 the answer names topics by id: matched by the name kgate learned.
            let name = |t: &kafka_protocol::messages::fetch_response::FetchableTopicResponse| {
                if t.topic.is_empty() {
                    ids.as_ref()
                        .and_then(|ids| ids.name(t.topic_id))
                        .unwrap_or_default()
                } else {
                    t.topic.to_string()
                }
            };
            for t in r.responses.iter_mut().filter(|t| hits(&topic, &name(t))) {
                for p in &mut t.partitions {
                    p.error_code = code;
                    p.records = None;
                    p.aborted_transactions = None;
                }
            }
        }),
        ApiKey::ListOffsets => typed_fixup::<ListOffsetsResponse, _>(version, move |r| {
            for t in r.topics.iter_mut().filter(|t| hits(&topic, &t.name)) {
                for p in &mut t.partitions {
                    p.error_code = code;
                    p.offset = -1;
                    p.timestamp = -1;
                }
            }
        }),
        ApiKey::Metadata => typed_fixup::<MetadataResponse, _>(version, move |r| {
            for t in &mut r.topics {
                if t.name.as_ref().is_some_and(|n| hits(&topic, n)) {
                    t.error_code = code;
                    t.partitions.clear();
                }
            }
        }),
        ApiKey::OffsetCommit => typed_fixup::<OffsetCommitResponse, _>(version, move |r| {
            for t in r.topics.iter_mut().filter(|t| hits(&topic, &t.name)) {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
        }),
        ApiKey::OffsetFetch => typed_fixup::<OffsetFetchResponse, _>(version, move |r| {
            if topic.is_none() {
                r.error_code = code;
            }
            for t in r.topics.iter_mut().filter(|t| hits(&topic, &t.name)) {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
            for g in &mut r.groups {
                if topic.is_none() {
                    g.error_code = code;
                }
                for t in g.topics.iter_mut().filter(|t| hits(&topic, &t.name)) {
                    for p in &mut t.partitions {
                        p.error_code = code;
                    }
                }
            }
        }),
        ApiKey::FindCoordinator => typed_fixup::<FindCoordinatorResponse, _>(version, move |r| {
            r.error_code = code;
            for c in &mut r.coordinators {
                c.error_code = code;
            }
        }),
        ApiKey::JoinGroup => {
            typed_fixup::<JoinGroupResponse, _>(version, move |r| r.error_code = code)
        }
        ApiKey::Heartbeat => {
            typed_fixup::<HeartbeatResponse, _>(version, move |r| r.error_code = code)
        }
        ApiKey::LeaveGroup => {
            typed_fixup::<LeaveGroupResponse, _>(version, move |r| r.error_code = code)
        }
        ApiKey::SyncGroup => {
            typed_fixup::<SyncGroupResponse, _>(version, move |r| r.error_code = code)
        }
        ApiKey::InitProducerId => typed_fixup::<InitProducerIdResponse, _>(version, move |r| {
            r.error_code = code;
            r.producer_id = (-1).into();
            r.producer_epoch = -1;
        }),
        ApiKey::ConsumerGroupHeartbeat => {
            typed_fixup::<ConsumerGroupHeartbeatResponse, _>(version, move |r| {
                r.error_code = code;
                r.assignment = None;
            })
        }
        _ => return None,
    })
}

/// A fixup that reports `ms` of quota throttling in the broker's answer (Produce and Fetch from
/// v1, where the field exists); `None` elsewhere, where throttling is only the delay.
pub fn throttle_fixup(api: ApiKey, version: i16, ms: i32) -> Option<Fixup> {
    match api {
        ApiKey::Produce if version >= 1 => {
            Some(typed_fixup::<ProduceResponse, _>(version, move |r| {
                r.throttle_time_ms = r.throttle_time_ms.max(ms)
            }))
        }
        ApiKey::Fetch if version >= 1 => Some(typed_fixup::<FetchResponse, _>(version, move |r| {
            r.throttle_time_ms = r.throttle_time_ms.max(ms)
        })),
        _ => None,
    }
}

/// Runs `first`, then `then`, on a response body.
pub fn chain(first: Fixup, then: Option<Fixup>) -> Fixup {
    match then {
        None => first,
        Some(then) => Box::new(move |body| then(first(body)?)),
    }
}

/// What becomes of a produce that a fault fails.
pub enum ProduceFault {
    /// `acks=0`: Kafka closes the connection on a failed produce without response.
    Close,
    /// Nothing is left to write: this answer (header and body, without size prefix).
    Answer(Bytes),
    /// Write the rest (header and body) and merge the errors into the broker's answer.
    Forward {
        /// The trimmed request.
        request: Bytes,
        /// Adds the errors (then runs the authorization fixup, if any).
        fixup: Fixup,
    },
}

/// Cuts the partitions of `topic` (all when `None`) out of a produce `request` (header and
/// body, as it would be forwarded) and answers them with `code`; `after` is the fixup
/// already attached to the request (authorization's merge of denied topics).
///
/// # Errors
/// A malformed request, or a response kgate cannot encode.
pub fn produce(
    version: i16,
    request: &Bytes,
    code: i16,
    topic: Option<&str>,
    after: Option<Fixup>,
) -> Result<ProduceFault, String> {
    let api = ApiKey::Produce;
    let (header, body) = decode_request_header(api, version, request).map_err(|e| e.to_string())?;
    let mut req: ProduceRequest = decode_body(api, version, body).map_err(|e| e.to_string())?;
    if req.acks == 0 {
        return Ok(ProduceFault::Close);
    }
    let (failed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topic_data)
        .into_iter()
        .partition(|t| topic.is_none_or(|want| t.name.as_str() == want));
    let errors = produce_errors(&failed, code);
    if kept.is_empty() {
        let resp = ProduceResponse::default().with_responses(errors);
        let bytes = encode_response(api, version, header.correlation_id, &resp)
            .map_err(|e| e.to_string())?;
        let bytes = match after {
            Some(f) => apply_fixup(api, version, bytes, f).map_err(|e| e.to_string())?,
            None => bytes,
        };
        return Ok(ProduceFault::Answer(bytes));
    }
    req.topic_data = kept;
    let request = encode_request(api, version, &header, &req).map_err(|e| e.to_string())?;
    let add = typed_fixup::<ProduceResponse, _>(version, move |r| r.responses.extend(errors));
    Ok(ProduceFault::Forward {
        request,
        fixup: chain(add, after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn topic(name: &str, partitions: i32) -> TopicProduceData {
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_partition_data(
                (0..partitions)
                    .map(|i| PartitionProduceData::default().with_index(i))
                    .collect(),
            )
    }

    fn request(version: i16, acks: i16, topics: Vec<TopicProduceData>) -> Bytes {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_topic_data(topics);
        let header = RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(version)
            .with_correlation_id(42);
        encode_request(ApiKey::Produce, version, &header, &req).unwrap()
    }

    /// The broker's answer for one written partition of `audit`, as a response body.
    fn audit_written(version: i16) -> Bytes {
        let mut body = BytesMut::new();
        ProduceResponse::default()
            .with_responses(vec![TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("audit")))
                .with_partition_responses(vec![PartitionProduceResponse::default()])])
            .encode(&mut body, version)
            .unwrap();
        body.freeze()
    }

    /// (topic, error code) of every partition of a response body, sorted.
    fn codes(version: i16, body: Bytes) -> Vec<(String, i16)> {
        let resp: ProduceResponse = decode_body(ApiKey::Produce, version, body).unwrap();
        let mut v: Vec<(String, i16)> = resp
            .responses
            .iter()
            .flat_map(|t| {
                t.partition_responses
                    .iter()
                    .map(|p| (t.name.to_string(), p.error_code))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_produce_keeps_the_topics_the_fault_does_not_name() {
        for version in [3i16, 8, 9] {
            let raw = request(version, -1, vec![topic("orders", 2), topic("audit", 1)]);
            let (names, all) = request_topics(ApiKey::Produce, version, &raw, None).unwrap();
            assert_eq!(
                (names, all),
                (vec!["orders".to_string(), "audit".to_string()], false)
            );
            let ProduceFault::Forward { request, fixup } =
                produce(version, &raw, 6, Some("orders"), None).unwrap()
            else {
                panic!("v{version}: audit should still be written");
            };
            assert_eq!(
                request_topics(ApiKey::Produce, version, &request, None)
                    .unwrap()
                    .0,
                ["audit"]
            );
            // The broker answers for audit; the fixup adds orders' two failed partitions.
            let merged = fixup(audit_written(version)).unwrap();
            assert_eq!(
                codes(version, merged),
                [
                    ("audit".into(), 0),
                    ("orders".into(), 6),
                    ("orders".into(), 6)
                ]
            );
        }
    }

    #[test]
    fn a_produce_of_only_failed_topics_is_answered_by_kgate() {
        let raw = request(9, 1, vec![topic("orders", 3)]);
        let ProduceFault::Answer(bytes) = produce(9, &raw, 19, None, None).unwrap() else {
            panic!("nothing left to write");
        };
        let (_, body) = crate::header::decode_response_header(ApiKey::Produce, 9, &bytes).unwrap();
        let resp: ProduceResponse = decode_body(ApiKey::Produce, 9, body).unwrap();
        assert_eq!(resp.responses[0].partition_responses.len(), 3);
        assert!(resp.responses[0]
            .partition_responses
            .iter()
            .all(|p| p.error_code == 19));
    }

    #[test]
    fn a_metadata_request_for_every_topic_is_about_each_topic() {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        let header = RequestHeader::default()
            .with_request_api_key(3)
            .with_correlation_id(1);
        let encode = |version: i16, topics: Option<Vec<&str>>| {
            let req = MetadataRequest::default().with_topics(topics.map(|ts| {
                ts.into_iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.into()))))
                    })
                    .collect()
            }));
            let h = header.clone().with_request_api_version(version);
            encode_request(ApiKey::Metadata, version, &h, &req).unwrap()
        };
        let topics = |v, t| request_topics(ApiKey::Metadata, v, &encode(v, t), None).unwrap();
        assert_eq!(topics(9, None), (vec![], true));
        assert_eq!(topics(0, Some(vec![])), (vec![], true));
        assert_eq!(topics(4, Some(vec![])), (vec![], false));
        assert_eq!(topics(9, Some(vec!["a"])), (vec!["a".to_string()], false));
    }

    #[test]
    fn authorization_denials_are_merged_after_the_fault() {
        // Authorization already cut `secret` out and will add its 29; the fault takes orders.
        let denied = || {
            typed_fixup::<ProduceResponse, _>(9, |r| {
                r.responses
                    .extend(produce_errors(&[topic("secret", 1)], 29))
            })
        };
        let raw = request(9, -1, vec![topic("orders", 1)]);
        let ProduceFault::Answer(bytes) = produce(9, &raw, 6, None, Some(denied())).unwrap() else {
            panic!("nothing left to write");
        };
        let (_, body) = crate::header::decode_response_header(ApiKey::Produce, 9, &bytes).unwrap();
        assert_eq!(
            codes(9, body),
            [("orders".into(), 6), ("secret".into(), 29)]
        );

        let raw = request(9, -1, vec![topic("orders", 1), topic("audit", 1)]);
        let ProduceFault::Forward { fixup, .. } =
            produce(9, &raw, 6, Some("orders"), Some(denied())).unwrap()
        else {
            panic!("audit is still written");
        };
        assert_eq!(
            codes(9, fixup(audit_written(9)).unwrap()),
            [
                ("audit".into(), 0),
                ("orders".into(), 6),
                ("secret".into(), 29)
            ]
        );
    }

    #[test]
    fn throttling_is_reported_where_the_field_exists() {
        let fixup = throttle_fixup(ApiKey::Produce, 9, 250).unwrap();
        let body = fixup(audit_written(9)).unwrap();
        let resp: ProduceResponse = decode_body(ApiKey::Produce, 9, body).unwrap();
        assert_eq!(resp.throttle_time_ms, 250);
        assert!(throttle_fixup(ApiKey::Produce, 0, 250).is_none());
        assert!(throttle_fixup(ApiKey::Fetch, 12, 250).is_some());
        assert!(throttle_fixup(ApiKey::Metadata, 9, 250).is_none());
    }

    #[test]
    fn acks_zero_closes_like_kafka() {
        let raw = request(9, 0, vec![topic("orders", 1)]);
        assert!(matches!(
            produce(9, &raw, 6, None, None).unwrap(),
            ProduceFault::Close
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let raw = Bytes::from_static(&[0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0x7f]);
        assert!(produce(9, &raw, 6, None, None).is_err());
        assert!(request_topics(ApiKey::Produce, 9, &raw, None).is_err());
        assert!(request_topics(ApiKey::Fetch, 12, &raw, None).is_err());
    }

    #[test]
    fn every_error_api_has_a_fixup() {
        for api in &crate::registry::error_apis().collect::<Vec<_>>() {
            if *api != ApiKey::Produce {
                assert!(error_fixup(*api, 4, 6, None, None).is_some(), "{api:?}");
            }
        }
        assert!(error_fixup(ApiKey::CreateTopics, 4, 6, None, None).is_none());
    }

    #[test]
    fn topics_named_by_id_match_by_their_learned_name() {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        let ids = TopicIds::default();
        let (audit, other) = (uuid::Uuid::from_u128(5), uuid::Uuid::from_u128(6));
        ids.learn(audit, "audit");
        let req = FetchRequest::default().with_topics(
            [audit, other]
                .iter()
                .map(|id| {
                    FetchTopic::default()
                        .with_topic_id(*id)
                        .with_partitions(vec![FetchPartition::default()])
                })
                .collect(),
        );
        let h = RequestHeader::default()
            .with_request_api_key(ApiKey::Fetch as i16)
            .with_request_api_version(13);
        let frame = encode_request(ApiKey::Fetch, 13, &h, &req).unwrap();
        let (names, _) = request_topics(ApiKey::Fetch, 13, &frame, Some(&ids)).unwrap();
        assert_eq!(names, ["audit", ""]);
        let resp = FetchResponse::default().with_responses(
            [audit, other]
                .iter()
                .map(|id| {
                    FetchableTopicResponse::default()
                        .with_topic_id(*id)
                        .with_partitions(vec![PartitionData::default()])
                })
                .collect(),
        );
        let mut body = BytesMut::new();
        resp.encode(&mut body, 13).unwrap();
        let fixup = error_fixup(ApiKey::Fetch, 13, 6, Some("audit".into()), Some(ids)).unwrap();
        let mut out = fixup(body.freeze()).unwrap();
        let r =
            <FetchResponse as kafka_protocol::protocol::Decodable>::decode(&mut out, 13).unwrap();
        assert_eq!(r.responses[0].partitions[0].error_code, 6);
        assert_eq!(r.responses[1].partitions[0].error_code, 0);
    }
}
