//! The data path: Produce, Fetch, ListOffsets, Metadata, OffsetForLeaderEpoch and
//! DescribeCluster.

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
};
use kgate_policies::{Operation, ResourceType};

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::codes::{
    TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, UNKNOWN_SERVER_ERROR,
    UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION,
};
use super::{
    check_each_topic, partition_by, typed_fixup, AuthzError, Incoming, Outcome, Session, CLUSTER,
};
use crate::header::encode_request;
use kafka_protocol::messages::fetch_request::FetchTopic;

/// Kafka-shaped produce answers with `code` for every partition of `topics` (none written).
pub fn produce_errors(
    topics: &[kafka_protocol::messages::produce_request::TopicProduceData],
    code: i16,
) -> Vec<TopicProduceResponse> {
    topics
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
        .collect()
}

/// Produce: WRITE on the transactional id (if any), then WRITE per topic; denied partitions
/// get 29 while the allowed ones are written. With `acks=0` any error closes the connection.
pub fn produce(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: ProduceRequest = inc.decode()?;
    let acks = req.acks;
    if let Some(tid) = &req.transactional_id {
        if !s.allow(
            ApiKey::Produce,
            ResourceType::TransactionalId,
            tid,
            Operation::Write,
        ) {
            if acks == 0 {
                return Ok(Outcome::Close(
                    "acks=0 produce with an unauthorized transactional id".into(),
                ));
            }
            let resp = ProduceResponse::default().with_responses(produce_errors(
                &req.topic_data,
                TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            ));
            return Ok(inc.respond(&resp));
        }
    }
    let topics = std::mem::take(&mut req.topic_data);
    let (allowed, denied) = partition_by(
        topics,
        |t| t.name.to_string(),
        |n| s.allow(ApiKey::Produce, ResourceType::Topic, n, Operation::Write),
    );
    if denied.is_empty() {
        return Ok(if acks == 0 {
            Outcome::forward_no_response()
        } else {
            Outcome::forward()
        });
    }
    if acks == 0 {
        return Ok(Outcome::Close(format!(
            "acks=0 produce to unauthorized topic {}",
            denied
                .first()
                .map(|t| t.name.to_string())
                .unwrap_or_default()
        )));
    }
    let nothing_left = allowed.is_empty();
    let errors = produce_errors(&denied, TOPIC_AUTHORIZATION_FAILED);
    let mut unparsable = produce_errors(&allowed, UNKNOWN_SERVER_ERROR);
    unparsable.extend(errors.iter().cloned());
    req.topic_data = allowed;
    Ok(inc.forward_or::<_, ProduceResponse, _, _>(
        &req,
        true,
        nothing_left,
        move |r| r.responses.extend(errors),
        Some(move || ProduceResponse::default().with_responses(unparsable)),
    ))
}

/// Fetch: READ per topic; follower fetches are refused. Fetch sessions are turned off
/// (every fetch is a full fetch) so that a revoked ACL stops data at the next fetch instead
/// of flowing on through partitions cached in a session (KIP-227, reference §5 item 3).
pub fn fetch(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: FetchRequest = inc.decode()?;
    let replica = if inc.version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    if replica >= 0 {
        return Ok(Outcome::Close(format!(
            "follower fetch (replica id {replica}) from a client"
        )));
    }
    let mut changed = false;
    if inc.version >= 7
        && (req.session_id != 0 || req.session_epoch != -1 || !req.forgotten_topics_data.is_empty())
    {
        req.session_id = 0;
        req.session_epoch = -1;
        req.forgotten_topics_data.clear();
        changed = true;
    }
    let topics = std::mem::take(&mut req.topics);
    // From v13 topics are named by id: each is authorized by the name kgate learned for it,
    // and an id kgate has not seen is answered UNKNOWN_TOPIC_ID, never forwarded.
    let by_id = inc.version >= FETCH_BY_TOPIC_ID;
    let (topics, unknown, names) = resolve_ids(s, topics, by_id, |t| t.topic_id);
    let (allowed, denied) = partition_by(
        topics,
        |t| {
            if by_id {
                names.get(&t.topic_id).cloned().unwrap_or_default()
            } else {
                t.topic.to_string()
            }
        },
        |n| s.allow(ApiKey::Fetch, ResourceType::Topic, n, Operation::Read),
    );
    if denied.is_empty() && unknown.is_empty() {
        req.topics = allowed;
        if !changed {
            return Ok(Outcome::forward());
        }
        // Only the request changed: the response passes through as bytes, never decoded.
        return Ok(
            match encode_request(inc.api, inc.version, &inc.header, &req) {
                Ok(request) => Outcome::Forward {
                    request: Some(request),
                    fixup: None,
                },
                Err(e) => Outcome::Close(e.to_string()),
            },
        );
    }
    let nothing_left = allowed.is_empty();
    let fetch_errors = |topics: &[FetchTopic], code: i16| -> Vec<FetchableTopicResponse> {
        topics
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
            .collect()
    };
    let mut errors = fetch_errors(&denied, TOPIC_AUTHORIZATION_FAILED);
    errors.extend(fetch_errors(&unknown, UNKNOWN_TOPIC_ID));
    let mut unparsable = fetch_errors(&allowed, UNKNOWN_SERVER_ERROR);
    unparsable.extend(errors.iter().cloned());
    let version = inc.version;
    req.topics = allowed;
    Ok(inc.forward_or::<_, FetchResponse, _, _>(
        &req,
        true,
        nothing_left,
        move |r| r.responses.extend(errors),
        Some(move || {
            // Kafka's FetchRequest.getErrorResponse: the error at the top (v7+) and on every
            // partition asked for.
            let top = if version >= 7 {
                UNKNOWN_SERVER_ERROR
            } else {
                0
            };
            FetchResponse::default()
                .with_error_code(top)
                .with_responses(unparsable)
        }),
    ))
}

/// The first Fetch version that names topics by id.
const FETCH_BY_TOPIC_ID: i16 = 13;
/// The first Metadata version whose requests may name topics by id.
const METADATA_BY_TOPIC_ID: i16 = 12;

/// Splits request items that name a topic by id (when `by_id`) into those whose id kgate
/// knows and those it does not, with the known ids' names.
fn resolve_ids<T>(
    s: &Session,
    items: Vec<T>,
    by_id: bool,
    id: impl Fn(&T) -> Uuid,
) -> (Vec<T>, Vec<T>, HashMap<Uuid, String>) {
    let mut names = HashMap::new();
    if !by_id {
        return (items, Vec::new(), names);
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for item in items {
        match s.topic_name(id(&item)) {
            Some(name) => {
                names.insert(id(&item), name);
                known.push(item);
            }
            None => unknown.push(item),
        }
    }
    (known, unknown, names)
}

/// ListOffsets: DESCRIBE per topic; denied partitions get 29 with offset and timestamp -1.
pub fn list_offsets(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: ListOffsetsRequest = inc.decode()?;
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.name.to_string(),
        |n| {
            s.allow(
                ApiKey::ListOffsets,
                ResourceType::Topic,
                n,
                Operation::Describe,
            )
        },
        |items, code| {
            items
                .iter()
                .map(|t| {
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                        .with_timestamp(-1)
                                        .with_offset(-1)
                                        .with_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect()
        },
        |r: &mut ListOffsetsResponse| &mut r.topics,
    ))
}

/// The Metadata version kgate sends upstream for a v0–3 request when the client's version
/// cannot say what must be asked: v4 (Kafka 1.0) is the first with
/// `allow_auto_topic_creation`, and its response has the v3 layout.
pub const METADATA_WITH_CREATE_FLAG: i16 = 4;

/// Metadata: DESCRIBE per topic. An all-topics request silently omits what the principal
/// may not describe; named topics it may not describe get 29 with no ID and no partitions,
/// whether or not they exist. Auto-creation needs CREATE on the cluster or on the topic.
///
/// Two rules keep the answer from ever showing more than the client may see:
/// - a request is never widened: when every named topic is denied, what goes upstream asks
///   for no topic (a v0 request, whose empty list means *all topics*, is sent as v4);
/// - whatever the broker answers, only the topics the client named and may describe (or,
///   for an all-topics request, may describe) reach it (a broker that reads an empty list
///   as "all topics" leaks nothing).
pub fn metadata(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: MetadataRequest = inc.decode()?;
    let version = inc.version;
    let all_topics = match &req.topics {
        None => true,
        Some(t) => version == 0 && t.is_empty(),
    };
    let topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let cluster_ops = (8..=10).contains(&version) && req.include_cluster_authorized_operations;
    let cluster_mask = cluster_ops.then(|| {
        if s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Describe) {
            s.operations_mask(ResourceType::Cluster, CLUSTER)
        } else {
            0
        }
    });
    let session = s.clone();
    // Every Metadata answer teaches kgate the ids of the topics it names (before filtering:
    // the map is never shown to anyone, it only lets later requests by id be authorized).
    let learn = s.authz.as_ref().map(|a| a.topic_ids.clone());
    if all_topics {
        return Ok(Outcome::Forward {
            request: None,
            fixup: Some(typed_fixup::<MetadataResponse, _>(version, move |r| {
                if let Some(ids) = &learn {
                    ids.learn_metadata(r);
                }
                r.topics.retain(|t| {
                    t.name.as_ref().is_some_and(|n| {
                        session.allow_quietly(ResourceType::Topic, n, Operation::Describe)
                    })
                });
                finish_metadata(&session, r, topic_ops, cluster_mask, &[]);
            })),
        });
    }
    let topics = req.topics.take().unwrap_or_default();
    // From v12 a topic may be named by id only (Kafka refuses it below v12): it is authorized
    // by the name kgate learned for the id. An id kgate has not learned yet (a KIP-848 member
    // is assigned partitions by id before it ever names the topic) is looked up as asked: a
    // Metadata lookup changes nothing, and the answer is authorized by the name it carries
    // before the client sees it (29 with no name if not describable); an id the broker does
    // not know stays the broker's UNKNOWN_TOPIC_ID.
    if topics
        .iter()
        .any(|t| t.name.is_none() && (version < METADATA_BY_TOPIC_ID || t.topic_id.is_nil()))
    {
        return Ok(Outcome::Close(
            "Metadata request names a topic by id below v12, or by neither name nor id".into(),
        ));
    }
    let (named, by_id): (Vec<_>, Vec<_>) = topics.into_iter().partition(|t| t.name.is_some());
    let (by_id, unknown, id_names) = resolve_ids(s, by_id, true, |t| t.topic_id);
    let mut topics = named;
    topics.extend(by_id);
    let name_of =
        |t: &kafka_protocol::messages::metadata_request::MetadataRequestTopic| match &t.name {
            Some(n) => n.to_string(),
            None => id_names.get(&t.topic_id).cloned().unwrap_or_default(),
        };
    let (allowed, denied) = partition_by(topics, name_of, |n| {
        s.allow(
            ApiKey::Metadata,
            ResourceType::Topic,
            n,
            Operation::Describe,
        )
    });
    // Kafka reads the flag from v4 on; older requests always allow auto-creation.
    let client_auto_create = version < METADATA_WITH_CREATE_FLAG || req.allow_auto_topic_creation;
    // Topics the principal may describe but not create must not be auto-created; Kafka then
    // answers 29 for a missing one, but only when the request allowed auto-creation
    // (`KafkaApis.handleTopicMetadataRequest`); otherwise a missing topic is 3.
    let no_create: Vec<String> = if !client_auto_create
        || s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Create)
    {
        Vec::new()
    } else {
        allowed
            .iter()
            .filter(|t| t.name.is_some())
            .map(name_of)
            .filter(|n| !s.allow_quietly(ResourceType::Topic, n, Operation::Create))
            .collect()
    };
    let mut changed = !denied.is_empty();
    let mut send_version = version;
    if !no_create.is_empty() {
        // One flag covers the whole request: without CREATE on every named topic, nothing
        // is auto-created, and the missing ones get 29 below (as Kafka answers them). A v0–3
        // request cannot carry the flag, so it goes upstream as v4.
        req.allow_auto_topic_creation = false;
        send_version = send_version.max(METADATA_WITH_CREATE_FLAG);
        changed = true;
    }
    if version == 0 && allowed.is_empty() {
        // In v0 an empty list means every topic: ask for none, in v4.
        req.allow_auto_topic_creation = false;
        send_version = METADATA_WITH_CREATE_FLAG;
    }
    let asked: HashSet<String> = allowed.iter().map(name_of).collect();
    let mut asked_ids: HashSet<Uuid> = allowed
        .iter()
        .filter(|t| t.name.is_none())
        .map(|t| t.topic_id)
        .collect();
    let unresolved: HashSet<Uuid> = unknown.iter().map(|t| t.topic_id).collect();
    asked_ids.extend(unresolved.iter().copied());
    let mut allowed = allowed;
    allowed.extend(unknown);
    req.topics = Some(allowed);
    // Denied by name: 29 with the name; by id: 29 with the id echoed and no name (Kafka
    // reveals the name only to whoever may describe the topic); unknown id: 100.
    let errors: Vec<MetadataResponseTopic> = denied
        .iter()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                .with_name(t.name.clone())
                .with_topic_id(if t.name.is_some() {
                    Uuid::nil()
                } else {
                    t.topic_id
                })
        })
        .collect();
    let fixup = move |r: &mut MetadataResponse| {
        if let Some(ids) = &learn {
            ids.learn_metadata(r);
        }
        // An id kgate could not resolve before: authorized now by the name the broker gave.
        for t in r.topics.iter_mut() {
            if t.topic_id.is_nil() || !unresolved.contains(&t.topic_id) {
                continue;
            }
            if let Some(n) = &t.name {
                if !session.allow(
                    ApiKey::Metadata,
                    ResourceType::Topic,
                    n,
                    Operation::Describe,
                ) {
                    *t = MetadataResponseTopic::default()
                        .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                        .with_name(None)
                        .with_topic_id(t.topic_id);
                }
            }
        }
        // Defence in depth: whatever the broker answered, only what was asked (and allowed).
        r.topics.retain(|t| {
            if !t.topic_id.is_nil() && unresolved.contains(&t.topic_id) {
                return true;
            }
            match &t.name {
                Some(n) => asked.contains(n.as_str()),
                None => asked_ids.contains(&t.topic_id),
            }
        });
        finish_metadata(&session, r, topic_ops, cluster_mask, &no_create);
        r.topics.extend(errors);
    };
    if send_version != version {
        return Ok(
            inc.forward_at::<_, MetadataResponse, _>(&req, send_version, move |r| {
                fixup(r);
                Ok(())
            }),
        );
    }
    // Always forwarded, even when every named topic is denied (or none is named): the answer
    // must still carry the brokers, the cluster id and the controller.
    Ok(inc.forward_with::<_, MetadataResponse, _>(&req, changed, false, fixup))
}

fn finish_metadata(
    s: &Session,
    r: &mut MetadataResponse,
    topic_ops: bool,
    cluster_mask: Option<i32>,
    no_create: &[String],
) {
    for t in &mut r.topics {
        let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        // A missing topic the principal could not have created: Kafka answers 29, not 3.
        if t.error_code == UNKNOWN_TOPIC_OR_PARTITION && no_create.contains(&name) {
            t.error_code = TOPIC_AUTHORIZATION_FAILED;
        }
        if topic_ops && t.error_code == 0 {
            t.topic_authorized_operations = s.operations_mask(ResourceType::Topic, &name);
        }
    }
    if let Some(mask) = cluster_mask {
        r.cluster_authorized_operations = mask;
    }
}

/// OffsetForLeaderEpoch: CLUSTER_ACTION on the cluster allows every topic; otherwise
/// DESCRIBE per topic (KIP-320).
pub fn offset_for_leader_epoch(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: OffsetForLeaderEpochRequest = inc.decode()?;
    if inc.version >= 3 && req.replica_id.0 >= 0 {
        return Ok(Outcome::Close(
            "OffsetForLeaderEpoch from a follower".into(),
        ));
    }
    if s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::ClusterAction) {
        return Ok(Outcome::forward());
    }
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.topic.to_string(),
        |n| {
            s.allow(
                ApiKey::OffsetForLeaderEpoch,
                ResourceType::Topic,
                n,
                Operation::Describe,
            )
        },
        |items, code| {
            items
                .iter()
                .map(|t| {
                    OffsetForLeaderTopicResult::default()
                        .with_topic(t.topic.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    EpochEndOffset::default()
                                        .with_partition(p.partition)
                                        .with_error_code(code)
                                        .with_leader_epoch(-1)
                                        .with_end_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect()
        },
        |r: &mut OffsetForLeaderEpochResponse| &mut r.topics,
    ))
}

/// DescribeCluster: no check on a broker; DESCRIBE on the cluster decides whether the
/// authorized-operations mask is computed (otherwise 0).
pub fn describe_cluster(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: DescribeClusterRequest = inc.decode()?;
    if !req.include_cluster_authorized_operations {
        return Ok(Outcome::forward());
    }
    let mask = if s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Describe) {
        s.operations_mask(ResourceType::Cluster, CLUSTER)
    } else {
        0
    };
    Ok(Outcome::Forward {
        request: None,
        fixup: Some(typed_fixup::<DescribeClusterResponse, _>(
            inc.version,
            move |r| {
                r.cluster_authorized_operations = mask;
            },
        )),
    })
}
