//! Administrative APIs: topics, configs, log dirs, partitions, groups, leader elections,
//! reassignments, offsets, quotas, producers, transactions and topic-partition descriptions.
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask (reference §1.1) and
//! answers a denial with the response Kafka builds for it: the same error codes, the same
//! messages (Kafka's default texts where Kafka's own message would spell out its internal
//! request object), the same fields left at their defaults. Checks Kafka makes before
//! authorization (duplicate names, `__cluster_metadata`, config-key validation, topic-name
//! validation, cursors) are made here too, so a denied resource gets the answer Kafka would
//! give. When some resources of a request are denied, the allowed ones are forwarded and the
//! denials merged into the broker's answer, in the order Kafka puts them.
//!
//! An API without a model here fails closed: the connection is closed and the reason logged,
//! never forwarded unchecked.

use std::collections::{HashMap, HashSet};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterClientQuotasRequest,
    AlterClientQuotasResponse, AlterConfigsRequest, AlterConfigsResponse,
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClientQuotasResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeLogDirsResponse,
    DescribeProducersRequest, DescribeProducersResponse, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    ElectLeadersRequest, ElectLeadersResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, ListTransactionsResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kgate_policies::{Operation, ResourceType};

use super::codes::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST, INVALID_TOPIC,
    TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{
    check_each_topic, partition_by, typed_fixup, Fixup, Incoming, Outcome, Session, CLUSTER,
};

/// Kafka's `Errors.TOPIC_AUTHORIZATION_FAILED.message()`.
pub const TOPIC_AUTHORIZATION_MESSAGE: &str = "Topic authorization failed.";
/// Kafka's `Errors.GROUP_AUTHORIZATION_FAILED.message()`.
pub const GROUP_AUTHORIZATION_MESSAGE: &str = "Group authorization failed.";
/// Kafka's `Errors.CLUSTER_AUTHORIZATION_FAILED.message()`. Kafka's cluster checks that throw
/// (`authorizeClusterOperation`) carry "Request Request(processor=…, connectionId=…, …) is
/// not authorized." instead, a dump of broker internals that kgate cannot and should not
/// reproduce; clients show this default text for it either way.
pub const CLUSTER_AUTHORIZATION_MESSAGE: &str = "Cluster authorization failed.";
/// Kafka's `Errors.INVALID_REQUEST.message()`.
pub const INVALID_REQUEST_MESSAGE: &str = "This most likely occurs because of a request being \
     malformed by the client library or the message was sent to an incompatible broker. See the \
     broker logs for more details.";
/// Kafka's `Errors.UNKNOWN_SERVER_ERROR.message()`.
const UNKNOWN_SERVER_ERROR_MESSAGE: &str =
    "The server experienced an unexpected error when processing the request.";
/// UNKNOWN_SERVER_ERROR.
const UNKNOWN_SERVER_ERROR: i16 = -1;
/// TOPIC_DELETION_DISABLED.
const TOPIC_DELETION_DISABLED: i16 = 73;
/// The KRaft metadata topic: never creatable by clients.
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

// Config resource types (`ConfigResource.Type`).
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;
const CONFIG_CLIENT_METRICS: i8 = 16;
const CONFIG_GROUP: i8 = 32;

/// Authorizes an administrative API (everything `authz::authorize` does not route elsewhere).
///
/// # Errors
/// A malformed request body; the caller closes the connection.
pub fn authorize(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    match inc.api {
        ApiKey::CreateTopics => create_topics(s, inc),
        ApiKey::DeleteTopics => delete_topics(s, inc),
        ApiKey::DeleteRecords => delete_records(s, inc),
        ApiKey::DescribeConfigs => describe_configs(s, inc),
        ApiKey::AlterConfigs => alter_configs(s, inc),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs(s, inc),
        ApiKey::DescribeLogDirs => describe_log_dirs(s, inc),
        ApiKey::CreatePartitions => create_partitions(s, inc),
        ApiKey::DeleteGroups => delete_groups(s, inc),
        ApiKey::ElectLeaders => elect_leaders(s, inc),
        ApiKey::AlterPartitionReassignments => alter_partition_reassignments(s, inc),
        ApiKey::ListPartitionReassignments => list_partition_reassignments(s, inc),
        ApiKey::OffsetDelete => offset_delete(s, inc),
        ApiKey::DescribeClientQuotas => describe_client_quotas(s, inc),
        ApiKey::AlterClientQuotas => alter_client_quotas(s, inc),
        ApiKey::DescribeProducers => describe_producers(s, inc),
        ApiKey::DescribeTransactions => describe_transactions(s, inc),
        ApiKey::ListTransactions => list_transactions(s, inc),
        ApiKey::DescribeTopicPartitions => describe_topic_partitions(s, inc),
        other => Ok(Outcome::Close(format!(
            "{other:?} has no authorization model in kgate; refused"
        ))),
    }
}

fn text(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

fn owned(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Splits names as Kafka's controller does before authorizing them: the names given once (in
/// request order) and the names given more than once (each once, in the order their second
/// occurrence appears). Kafka refuses every occurrence of a duplicate with INVALID_REQUEST.
fn once_and_duplicates<'a>(names: impl IntoIterator<Item = &'a str>) -> (Vec<String>, Vec<String>) {
    let mut order: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut duplicates: Vec<String> = Vec::new();
    for n in names {
        if seen.insert(n) {
            order.push(n);
        } else if !duplicates.iter().any(|d| d == n) {
            duplicates.push(n.to_owned());
        }
    }
    let once = order
        .into_iter()
        .filter(|n| !duplicates.iter().any(|d| d == n))
        .map(str::to_owned)
        .collect();
    (once, duplicates)
}

/// A [`Fixup`] that may refuse the broker's answer: the connection is then closed instead of
/// passing on something kgate cannot make Kafka-exact (or that would leak a name).
fn checked_fixup<Resp, F>(version: i16, f: F) -> Fixup
where
    Resp: Decodable + Encodable + 'static,
    F: FnOnce(&mut Resp) -> Result<(), String> + Send + 'static,
{
    Box::new(move |mut body: Bytes| {
        let mut resp = Resp::decode(&mut body, version)
            .map_err(|e| format!("cannot parse the broker's response: {e}"))?;
        f(&mut resp)?;
        let mut out = BytesMut::new();
        resp.encode(&mut out, version)
            .map_err(|e| format!("cannot encode the merged response: {e}"))?;
        Ok(out.freeze())
    })
}

/// Puts answers back in request order, for the APIs Kafka answers item by item: `local[i]` is
/// kgate's answer to request item `i` (`None` when the item was forwarded), and the broker's
/// answers are matched to the forwarded items by key, first come first served. Broker answers
/// no item claimed are kept at the end.
fn in_request_order<T>(
    keys: &[String],
    mut local: Vec<Option<T>>,
    upstream: Vec<T>,
    key: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut upstream: Vec<Option<T>> = upstream.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if let Some(answer) = local.get_mut(i).and_then(Option::take) {
            out.push(answer);
        } else if let Some(slot) = upstream
            .iter_mut()
            .find(|u| u.as_ref().is_some_and(|u| key(u) == k.as_str()))
        {
            if let Some(answer) = slot.take() {
                out.push(answer);
            }
        }
    }
    out.extend(upstream.into_iter().flatten());
    out
}

// === topics ===

/// CreateTopics (KRaft `ControllerApis.createTopics`): duplicates and `__cluster_metadata` get
/// INVALID_REQUEST before any check; CREATE on the cluster (checked quietly) allows every
/// topic, otherwise CREATE per topic (29 "Authorization failed."). DESCRIBE_CONFIGS per topic
/// (quietly) decides whether a created topic's configs, partition count and replication
/// factor are returned; without it `topic_config_error_code` is 29 and they are withheld.
pub fn create_topics(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: CreateTopicsRequest = inc.decode()?;
    let (names, duplicates) = once_and_duplicates(req.topics.iter().map(|t| &**t.name));
    let candidates: Vec<&String> = names
        .iter()
        .filter(|n| n.as_str() != CLUSTER_METADATA_TOPIC)
        .collect();
    let creatable: HashSet<String> =
        if s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Create) {
            candidates.iter().map(|n| (*n).clone()).collect()
        } else {
            candidates
                .iter()
                .filter(|n| {
                    s.allow(
                        ApiKey::CreateTopics,
                        ResourceType::Topic,
                        n,
                        Operation::Create,
                    )
                })
                .map(|n| (*n).clone())
                .collect()
        };
    let describable: HashSet<String> = candidates
        .iter()
        .filter(|n| s.allow_quietly(ResourceType::Topic, n, Operation::DescribeConfigs))
        .map(|n| (*n).clone())
        .collect();
    let mut errors: Vec<CreatableTopicResult> = duplicates
        .iter()
        .map(|n| {
            CreatableTopicResult::default()
                .with_name(topic_name(n))
                .with_error_code(INVALID_REQUEST)
                .with_error_message(text("Duplicate topic name."))
        })
        .collect();
    for n in &names {
        if n == CLUSTER_METADATA_TOPIC {
            errors.push(
                CreatableTopicResult::default()
                    .with_name(topic_name(n))
                    .with_error_code(INVALID_REQUEST)
                    .with_error_message(text(
                        "Creation of internal topic __cluster_metadata is prohibited.",
                    )),
            );
        } else if !creatable.contains(n) {
            errors.push(
                CreatableTopicResult::default()
                    .with_name(topic_name(n))
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(text("Authorization failed.")),
            );
        }
    }
    let before = req.topics.len();
    req.topics.retain(|t| creatable.contains(&**t.name));
    let changed = req.topics.len() != before;
    // Configs exist in responses from v5 on.
    let hide_configs = inc.version >= 5 && creatable.iter().any(|n| !describable.contains(n));
    if !changed && !hide_configs {
        return Ok(Outcome::forward());
    }
    let nothing_left = req.topics.is_empty();
    let version = inc.version;
    Ok(
        inc.forward_with::<_, CreateTopicsResponse, _>(&req, changed, nothing_left, move |r| {
            for t in &mut r.topics {
                if version >= 5 && t.error_code == 0 && !describable.contains(&**t.name) {
                    t.topic_config_error_code = TOPIC_AUTHORIZATION_FAILED;
                    t.configs = Some(Vec::new());
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                }
            }
            r.topics.extend(errors);
        }),
    )
}

/// DeleteTopics v1–5 (by name; KRaft `ControllerApis.deleteTopics`): duplicates get
/// INVALID_REQUEST; DELETE on the cluster (quietly) allows every topic, otherwise a topic
/// needs DESCRIBE and DELETE, else 29 — so a topic one may not see gets 29 whether or not it
/// exists. When the cluster refuses deletion altogether (`delete.topic.enable=false`), Kafka
/// says so for every topic before any check; the refusal is copied onto the denied topics.
pub fn delete_topics(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: DeleteTopicsRequest = inc.decode()?;
    if !req.topics.is_empty() {
        return Ok(Outcome::Close(
            "DeleteTopics naming topics by ID (v6+) is not modelled".into(),
        ));
    }
    let requested: Vec<String> = req.topic_names.iter().map(|n| n.to_string()).collect();
    let (names, duplicates) = once_and_duplicates(requested.iter().map(String::as_str));
    let allowed: HashSet<String> =
        if s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Delete) {
            names.iter().cloned().collect()
        } else {
            let describable: Vec<bool> = names
                .iter()
                .map(|n| {
                    s.allow(
                        ApiKey::DeleteTopics,
                        ResourceType::Topic,
                        n,
                        Operation::Describe,
                    )
                })
                .collect();
            let deletable: Vec<bool> = names
                .iter()
                .map(|n| {
                    s.allow(
                        ApiKey::DeleteTopics,
                        ResourceType::Topic,
                        n,
                        Operation::Delete,
                    )
                })
                .collect();
            names
                .iter()
                .zip(describable.iter().zip(&deletable))
                .filter(|(_, (d, del))| **d && **del)
                .map(|(n, _)| n.clone())
                .collect()
        };
    let mut errors: Vec<DeletableTopicResult> = duplicates
        .iter()
        .map(|n| {
            DeletableTopicResult::default()
                .with_name(Some(topic_name(n)))
                .with_error_code(INVALID_REQUEST)
                .with_error_message(text("Duplicate topic name."))
        })
        .collect();
    errors.extend(names.iter().filter(|n| !allowed.contains(*n)).map(|n| {
        DeletableTopicResult::default()
            .with_name(Some(topic_name(n)))
            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
            .with_error_message(text(TOPIC_AUTHORIZATION_MESSAGE))
    }));
    if errors.is_empty() {
        return Ok(Outcome::forward());
    }
    req.topic_names.retain(|n| allowed.contains(&***n));
    let nothing_left = req.topic_names.is_empty();
    let version = inc.version;
    Ok(
        inc.forward_with::<_, DeleteTopicsResponse, _>(&req, true, nothing_left, move |r| {
            let disabled = r.responses.iter().find(|t| {
                t.error_code == TOPIC_DELETION_DISABLED
                    || (version < 3
                        && t.error_code == INVALID_REQUEST
                        && t.error_message.as_deref() == Some("Topic deletion is disabled."))
            });
            if let Some(refusal) = disabled {
                // Kafka refuses the whole request before any check, for every name given.
                let (code, message) = (refusal.error_code, refusal.error_message.clone());
                r.responses = requested
                    .iter()
                    .map(|n| {
                        DeletableTopicResult::default()
                            .with_name(Some(topic_name(n)))
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect();
            } else {
                r.responses.extend(errors);
            }
        }),
    )
}

/// DeleteRecords: DELETE per topic; the partitions of a denied topic get 29 with low
/// watermark -1.
pub fn delete_records(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let req: DeleteRecordsRequest = inc.decode()?;
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.name.to_string(),
        |n| {
            s.allow(
                ApiKey::DeleteRecords,
                ResourceType::Topic,
                n,
                Operation::Delete,
            )
        },
        |items, code| {
            items
                .iter()
                .map(|t| {
                    DeleteRecordsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    DeleteRecordsPartitionResult::default()
                                        .with_partition_index(p.partition_index)
                                        .with_low_watermark(-1)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect()
        },
        |r: &mut DeleteRecordsResponse| &mut r.topics,
    ))
}

/// CreatePartitions (KRaft `ControllerApis.createPartitions`): duplicates get INVALID_REQUEST
/// "Duplicate topic name."; ALTER per topic, else 29 without a message. Kafka lists these
/// errors before the controller's results.
pub fn create_partitions(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: CreatePartitionsRequest = inc.decode()?;
    let (names, duplicates) = once_and_duplicates(req.topics.iter().map(|t| &**t.name));
    let allowed: HashSet<String> = names
        .iter()
        .filter(|n| {
            s.allow(
                ApiKey::CreatePartitions,
                ResourceType::Topic,
                n,
                Operation::Alter,
            )
        })
        .cloned()
        .collect();
    let mut errors: Vec<CreatePartitionsTopicResult> = duplicates
        .iter()
        .map(|n| {
            CreatePartitionsTopicResult::default()
                .with_name(topic_name(n))
                .with_error_code(INVALID_REQUEST)
                .with_error_message(text("Duplicate topic name."))
        })
        .collect();
    errors.extend(names.iter().filter(|n| !allowed.contains(*n)).map(|n| {
        CreatePartitionsTopicResult::default()
            .with_name(topic_name(n))
            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
    }));
    if errors.is_empty() {
        return Ok(Outcome::forward());
    }
    req.topics.retain(|t| allowed.contains(&**t.name));
    let nothing_left = req.topics.is_empty();
    Ok(
        inc.forward_with::<_, CreatePartitionsResponse, _>(&req, true, nothing_left, move |r| {
            let results = std::mem::take(&mut r.results);
            r.results = errors;
            r.results.extend(results);
        }),
    )
}

/// DescribeTopicPartitions (`DescribeTopicPartitionsRequestHandler`): DESCRIBE per topic, with
/// the authorized-operations mask of every topic returned. Named topics one may not describe
/// get 29 with a zero ID and no partitions, whether or not they exist; an all-topics request
/// silently leaves them out. The cursor is checked as Kafka checks it, before authorization.
pub fn describe_topic_partitions(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: DescribeTopicPartitionsRequest = inc.decode()?;
    let version = inc.version;
    let session = s.clone();
    if req.topics.is_empty() {
        return Ok(Outcome::Forward {
            request: None,
            fixup: Some(checked_fixup::<DescribeTopicPartitionsResponse, _>(
                version,
                move |r| {
                    r.topics.retain(|t| {
                        t.name.as_ref().is_some_and(|n| {
                            session.allow(
                                ApiKey::DescribeTopicPartitions,
                                ResourceType::Topic,
                                n,
                                Operation::Describe,
                            )
                        })
                    });
                    for t in &mut r.topics {
                        let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                        t.topic_authorized_operations =
                            session.operations_mask(ResourceType::Topic, &name);
                    }
                    // Kafka pages over describable topics only; the broker behind kgate pages
                    // over all of them. A cursor naming a topic the principal may not describe
                    // would reveal that topic: it moves to just past the last partition of
                    // the last topic shown, so the next page starts after it. A page that
                    // shows no topic at all ends the listing (logged).
                    let hidden = r.next_cursor.as_ref().is_some_and(|c| {
                        !session.allow_quietly(
                            ResourceType::Topic,
                            &c.topic_name,
                            Operation::Describe,
                        )
                    });
                    if hidden {
                        r.next_cursor = r.topics.last().and_then(|t| {
                            let name = t.name.clone()?;
                            let after = t
                                .partitions
                                .iter()
                                .map(|p| p.partition_index)
                                .max()
                                .map_or(0, |m| m.saturating_add(1));
                            Some(
                                kafka_protocol::messages::describe_topic_partitions_response::Cursor::default()
                                    .with_topic_name(name)
                                    .with_partition_index(after),
                            )
                        });
                        if r.next_cursor.is_none() {
                            tracing::warn!(
                                "DescribeTopicPartitions: a page held only topics the principal \
                                 may not describe; the listing ends there"
                            );
                        }
                    }
                    Ok(())
                },
            )),
        });
    }
    let cursor_name = req
        .cursor
        .as_ref()
        .map(|c| c.topic_name.to_string())
        .unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for t in &req.topics {
        if **t.name >= *cursor_name && !names.iter().any(|n| n.as_str() == &**t.name) {
            names.push(t.name.to_string());
        }
    }
    if let Some(c) = &req.cursor {
        if !names.contains(&cursor_name) || c.partition_index < 0 {
            // Kafka throws InvalidRequestException: every requested topic gets 42.
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(t.name.clone()))
                        .with_error_code(INVALID_REQUEST)
                        .with_is_internal(false)
                })
                .collect();
            return Ok(inc.respond(&DescribeTopicPartitionsResponse::default().with_topics(topics)));
        }
    }
    names.sort();
    let (allowed, denied): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| {
        s.allow(
            ApiKey::DescribeTopicPartitions,
            ResourceType::Topic,
            n,
            Operation::Describe,
        )
    });
    let errors: Vec<DescribeTopicPartitionsResponseTopic> = denied
        .iter()
        .map(|n| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(n)))
                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                .with_is_internal(false)
        })
        .collect();
    let changed = !denied.is_empty();
    if changed {
        // Every forwarded topic sorts at or after the cursor. A cursor on a denied topic is
        // dropped: the remaining topics all start at partition 0, as in Kafka, and the broker
        // behind kgate would refuse a cursor outside the list.
        if req.cursor.is_some() && !allowed.contains(&cursor_name) {
            req.cursor = None;
        }
        req.topics = allowed
            .iter()
            .map(|n| TopicRequest::default().with_name(topic_name(n)))
            .collect();
    }
    let nothing_left = allowed.is_empty();
    Ok(inc.forward_with::<_, DescribeTopicPartitionsResponse, _>(
        &req,
        changed,
        nothing_left,
        move |r| {
            // Defence in depth: only the topics asked for and allowed, whatever the broker says.
            r.topics.retain(|t| {
                t.name
                    .as_ref()
                    .is_some_and(|n| allowed.iter().any(|a| a.as_str() == n.as_str()))
            });
            for t in &mut r.topics {
                let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                t.topic_authorized_operations = session.operations_mask(ResourceType::Topic, &name);
            }
            r.topics.extend(errors);
        },
    ))
}

// === configs ===

/// DescribeConfigs (`ConfigHelper`): DESCRIBE_CONFIGS on the cluster for BROKER, BROKER_LOGGER
/// and CLIENT_METRICS resources (31), on the topic for TOPIC (29), on the group for GROUP (30);
/// a denied resource gets the error, Kafka's message and no configs. An unknown resource type
/// fails the whole request: every resource gets INVALID_REQUEST.
pub fn describe_configs(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: DescribeConfigsRequest = inc.decode()?;
    let resources = std::mem::take(&mut req.resources);
    let mut allowed = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let api = ApiKey::DescribeConfigs;
        let denial = match r.resource_type {
            CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => (!s.allow(
                api,
                ResourceType::Cluster,
                CLUSTER,
                Operation::DescribeConfigs,
            ))
            .then_some((CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_MESSAGE)),
            CONFIG_TOPIC => (!s.allow(
                api,
                ResourceType::Topic,
                &r.resource_name,
                Operation::DescribeConfigs,
            ))
            .then_some((TOPIC_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_MESSAGE)),
            CONFIG_GROUP => (!s.allow(
                api,
                ResourceType::Group,
                &r.resource_name,
                Operation::DescribeConfigs,
            ))
            .then_some((GROUP_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_MESSAGE)),
            _ => {
                let results = resources
                    .iter()
                    .map(|r| {
                        DescribeConfigsResult::default()
                            .with_error_code(INVALID_REQUEST)
                            .with_error_message(text(INVALID_REQUEST_MESSAGE))
                            .with_resource_name(r.resource_name.clone())
                            .with_resource_type(r.resource_type)
                    })
                    .collect();
                return Ok(inc.respond(&DescribeConfigsResponse::default().with_results(results)));
            }
        };
        match denial {
            None => allowed.push(i),
            Some((code, message)) => errors.push(
                DescribeConfigsResult::default()
                    .with_error_code(code)
                    .with_error_message(text(message))
                    .with_configs(Vec::new())
                    .with_resource_name(r.resource_name.clone())
                    .with_resource_type(r.resource_type),
            ),
        }
    }
    if errors.is_empty() {
        return Ok(Outcome::forward());
    }
    let nothing_left = allowed.is_empty();
    req.resources = resources
        .into_iter()
        .enumerate()
        .filter(|(i, _)| allowed.contains(i))
        .map(|(_, r)| r)
        .collect();
    Ok(
        inc.forward_with::<_, DescribeConfigsResponse, _>(&req, true, nothing_left, move |r| {
            r.results.extend(errors)
        }),
    )
}

/// One resource of AlterConfigs / IncrementalAlterConfigs as Kafka's checks see it.
struct ConfigChange<'a> {
    resource_type: i8,
    name: &'a str,
    keys: Vec<&'a str>,
    /// Keys whose value is null where Kafka refuses null (every key in AlterConfigs; every
    /// key but DELETE operations in IncrementalAlterConfigs).
    null_values: Vec<&'a str>,
}

/// kgate's answer for one config resource: (error code, message).
type LocalAnswer = Option<(i16, Option<StrBytes>)>;

/// Kafka's checks for (Incremental)AlterConfigs, per resource: the broker's preprocessing
/// (`ConfigAdminManager.preprocess`: duplicate resources, duplicate keys, null values,
/// BROKER_LOGGER authorization, broker-id syntax, unknown types), then the controller's
/// `authorizeAlterResource` (ALTER_CONFIGS on the cluster, topic or group). `None` means
/// forward the resource.
fn alter_config_checks(s: &Session, api: ApiKey, changes: &[ConfigChange<'_>]) -> Vec<LocalAnswer> {
    let incremental = api == ApiKey::IncrementalAlterConfigs;
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for c in changes {
        *counts.entry((c.resource_type, c.name)).or_default() += 1;
    }
    let cluster = |code_message: (i16, Option<StrBytes>)| {
        (!s.allow(api, ResourceType::Cluster, CLUSTER, Operation::AlterConfigs))
            .then_some(code_message)
    };
    changes
        .iter()
        .map(|c| {
            let invalid = |m: String| Some((INVALID_REQUEST, owned(m)));
            if counts.get(&(c.resource_type, c.name)).copied().unwrap_or(0) > 1 {
                return invalid("Each resource must appear at most once.".into());
            }
            let mut keys = HashSet::new();
            if !c.keys.iter().all(|k| keys.insert(*k)) {
                return invalid("Error due to duplicate config keys".into());
            }
            if !c.null_values.is_empty() {
                return invalid(format!(
                    "Null value not supported for : {}",
                    c.null_values.join(", ")
                ));
            }
            match c.resource_type {
                // Log levels are changed by the broker itself, which throws Kafka's default
                // ClusterAuthorizationException: the message is null on the wire.
                CONFIG_BROKER_LOGGER if incremental => {
                    cluster((CLUSTER_AUTHORIZATION_FAILED, None))
                }
                CONFIG_BROKER => {
                    if !c.name.is_empty() && c.name.parse::<i32>().is_err() {
                        return invalid(format!(
                            "Node id must be an integer, but it is: {}",
                            c.name
                        ));
                    }
                    cluster((
                        CLUSTER_AUTHORIZATION_FAILED,
                        text(CLUSTER_AUTHORIZATION_MESSAGE),
                    ))
                }
                CONFIG_CLIENT_METRICS => cluster((
                    CLUSTER_AUTHORIZATION_FAILED,
                    text(CLUSTER_AUTHORIZATION_MESSAGE),
                )),
                CONFIG_TOPIC => {
                    (!s.allow(api, ResourceType::Topic, c.name, Operation::AlterConfigs)).then(
                        || {
                            (
                                TOPIC_AUTHORIZATION_FAILED,
                                text(TOPIC_AUTHORIZATION_MESSAGE),
                            )
                        },
                    )
                }
                CONFIG_GROUP => {
                    (!s.allow(api, ResourceType::Group, c.name, Operation::AlterConfigs)).then(
                        || {
                            (
                                GROUP_AUTHORIZATION_FAILED,
                                text(GROUP_AUTHORIZATION_MESSAGE),
                            )
                        },
                    )
                }
                other => invalid(format!("Unknown resource type {other}")),
            }
        })
        .collect()
}

/// Kafka's `ConfigAdminManager.reassemble*Response`: one answer per requested resource, in
/// request order; a forwarded resource the broker did not answer gets UNKNOWN_SERVER_ERROR.
fn reassemble<T>(
    keys: &[(i8, String)],
    local: Vec<LocalAnswer>,
    upstream: Vec<T>,
    key_of: impl Fn(&T) -> (i8, &str),
    make: impl Fn(i8, &str, i16, Option<StrBytes>) -> T,
) -> Vec<T> {
    let mut upstream: Vec<Option<T>> = upstream.into_iter().map(Some).collect();
    keys.iter()
        .zip(local)
        .map(|((resource_type, name), answer)| match answer {
            Some((code, message)) => make(*resource_type, name, code, message),
            None => upstream
                .iter_mut()
                .find(|u| {
                    u.as_ref()
                        .is_some_and(|u| key_of(u) == (*resource_type, name.as_str()))
                })
                .and_then(Option::take)
                .unwrap_or_else(|| {
                    make(
                        *resource_type,
                        name,
                        UNKNOWN_SERVER_ERROR,
                        text(UNKNOWN_SERVER_ERROR_MESSAGE),
                    )
                }),
        })
        .collect()
}

/// AlterConfigs (legacy): see [`alter_config_checks`]; BROKER_LOGGER is not supported by the
/// legacy API ("Unknown resource type 8"). Answers come back in request order, as Kafka's
/// broker reassembles them.
pub fn alter_configs(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: AlterConfigsRequest = inc.decode()?;
    let changes: Vec<ConfigChange<'_>> = req
        .resources
        .iter()
        .map(|r| ConfigChange {
            resource_type: r.resource_type,
            name: &r.resource_name,
            keys: r.configs.iter().map(|c| &*c.name).collect(),
            null_values: r
                .configs
                .iter()
                .filter(|c| c.value.is_none())
                .map(|c| &*c.name)
                .collect(),
        })
        .collect();
    let local = alter_config_checks(s, ApiKey::AlterConfigs, &changes);
    if local.iter().all(Option::is_none) {
        return Ok(Outcome::forward());
    }
    let keys: Vec<(i8, String)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    let resources = std::mem::take(&mut req.resources);
    req.resources = resources
        .into_iter()
        .zip(&local)
        .filter(|(_, answer)| answer.is_none())
        .map(|(r, _)| r)
        .collect();
    let nothing_left = req.resources.is_empty();
    Ok(
        inc.forward_with::<_, AlterConfigsResponse, _>(&req, true, nothing_left, move |r| {
            let upstream = std::mem::take(&mut r.responses);
            r.responses = reassemble(
                &keys,
                local,
                upstream,
                |u| (u.resource_type, &*u.resource_name),
                |resource_type, name, code, message| {
                    alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_resource_type(resource_type)
                        .with_resource_name(StrBytes::from_string(name.to_owned()))
                },
            );
        }),
    )
}

/// IncrementalAlterConfigs: see [`alter_config_checks`]. Answers come back in request order.
pub fn incremental_alter_configs(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    /// `AlterConfigOp.OpType.DELETE`: the one operation that needs no value.
    const DELETE: i8 = 1;
    let mut req: IncrementalAlterConfigsRequest = inc.decode()?;
    let changes: Vec<ConfigChange<'_>> = req
        .resources
        .iter()
        .map(|r| ConfigChange {
            resource_type: r.resource_type,
            name: &r.resource_name,
            keys: r.configs.iter().map(|c| &*c.name).collect(),
            null_values: r
                .configs
                .iter()
                .filter(|c| c.config_operation != DELETE && c.value.is_none())
                .map(|c| &*c.name)
                .collect(),
        })
        .collect();
    let local = alter_config_checks(s, ApiKey::IncrementalAlterConfigs, &changes);
    if local.iter().all(Option::is_none) {
        return Ok(Outcome::forward());
    }
    let keys: Vec<(i8, String)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    let resources = std::mem::take(&mut req.resources);
    req.resources = resources
        .into_iter()
        .zip(&local)
        .filter(|(_, answer)| answer.is_none())
        .map(|(r, _)| r)
        .collect();
    let nothing_left = req.resources.is_empty();
    Ok(inc.forward_with::<_, IncrementalAlterConfigsResponse, _>(
        &req,
        true,
        nothing_left,
        move |r| {
            let upstream = std::mem::take(&mut r.responses);
            r.responses = reassemble(
                &keys,
                local,
                upstream,
                |u| (u.resource_type, &*u.resource_name),
                |resource_type, name, code, message| {
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_resource_type(resource_type)
                        .with_resource_name(StrBytes::from_string(name.to_owned()))
                },
            );
        },
    ))
}

// === cluster-level administration ===

/// DescribeLogDirs: DESCRIBE on the cluster; otherwise no results, with CLUSTER_AUTHORIZATION_
/// FAILED at the top from v3 on (v0–2 have no error field: just an empty answer).
pub fn describe_log_dirs(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    if s.allow(
        ApiKey::DescribeLogDirs,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Describe,
    ) {
        return Ok(Outcome::forward());
    }
    Ok(inc.respond(
        &DescribeLogDirsResponse::default()
            .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
            .with_results(Vec::new()),
    ))
}

/// ElectLeaders: ALTER on the cluster (the docs' CLUSTER_ACTION is wrong); otherwise the whole
/// request fails as `ElectLeadersRequest.getErrorResponse` builds it: 31 at the top (v1+) and on
/// every named partition.
pub fn elect_leaders(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let req: ElectLeadersRequest = inc.decode()?;
    if s.allow(
        ApiKey::ElectLeaders,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Alter,
    ) {
        return Ok(Outcome::forward());
    }
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                                .with_error_message(text(CLUSTER_AUTHORIZATION_MESSAGE))
                        })
                        .collect(),
                )
        })
        .collect();
    // v0 has no top-level error code.
    let top = if inc.version >= 1 {
        CLUSTER_AUTHORIZATION_FAILED
    } else {
        0
    };
    Ok(inc.respond(
        &ElectLeadersResponse::default()
            .with_error_code(top)
            .with_replica_election_results(results),
    ))
}

/// AlterPartitionReassignments: ALTER on the cluster; otherwise 31 at the top and on every
/// partition (`AlterPartitionReassignmentsRequest.getErrorResponse`).
pub fn alter_partition_reassignments(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let req: AlterPartitionReassignmentsRequest = inc.decode()?;
    if s.allow(
        ApiKey::AlterPartitionReassignments,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Alter,
    ) {
        return Ok(Outcome::forward());
    }
    let responses = req
        .topics
        .iter()
        .map(|t| {
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                                .with_error_message(text(CLUSTER_AUTHORIZATION_MESSAGE))
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(inc.respond(
        &AlterPartitionReassignmentsResponse::default()
            .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
            .with_error_message(text(CLUSTER_AUTHORIZATION_MESSAGE))
            .with_responses(responses),
    ))
}

/// ListPartitionReassignments: DESCRIBE on the cluster; otherwise 31 at the top and the named
/// partitions echoed without replicas (`ListPartitionReassignmentsRequest.getErrorResponse`).
pub fn list_partition_reassignments(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let req: ListPartitionReassignmentsRequest = inc.decode()?;
    if s.allow(
        ApiKey::ListPartitionReassignments,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Describe,
    ) {
        return Ok(Outcome::forward());
    }
    let topics = req
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OngoingTopicReassignment::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| OngoingPartitionReassignment::default().with_partition_index(*p))
                        .collect(),
                )
        })
        .collect();
    Ok(inc.respond(
        &ListPartitionReassignmentsResponse::default()
            .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
            .with_error_message(text(CLUSTER_AUTHORIZATION_MESSAGE))
            .with_topics(topics),
    ))
}

/// DescribeClientQuotas: DESCRIBE_CONFIGS on the cluster; otherwise 31 with a null message
/// and null entries, as `DescribeClientQuotasRequest.getErrorResponse` builds it.
pub fn describe_client_quotas(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    if s.allow(
        ApiKey::DescribeClientQuotas,
        ResourceType::Cluster,
        CLUSTER,
        Operation::DescribeConfigs,
    ) {
        return Ok(Outcome::forward());
    }
    Ok(inc.respond(
        &DescribeClientQuotasResponse::default()
            .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
            .with_error_message(None)
            .with_entries(None),
    ))
}

/// AlterClientQuotas: ALTER_CONFIGS on the cluster; otherwise every entry gets 31 with Kafka's
/// message and its entity echoed (`AlterClientQuotasRequest.getErrorResponse`).
pub fn alter_client_quotas(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let req: AlterClientQuotasRequest = inc.decode()?;
    if s.allow(
        ApiKey::AlterClientQuotas,
        ResourceType::Cluster,
        CLUSTER,
        Operation::AlterConfigs,
    ) {
        return Ok(Outcome::forward());
    }
    let entries = req
        .entries
        .iter()
        .map(|e| {
            AlteredEntry::default()
                .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                .with_error_message(text(CLUSTER_AUTHORIZATION_MESSAGE))
                .with_entity(
                    e.entity
                        .iter()
                        .map(|d| {
                            AlteredEntity::default()
                                .with_entity_type(d.entity_type.clone())
                                .with_entity_name(d.entity_name.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(inc.respond(&AlterClientQuotasResponse::default().with_entries(entries)))
}

// === groups ===

/// DeleteGroups: DELETE per distinct group; denied groups get 30 after the coordinator's
/// results.
pub fn delete_groups(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: DeleteGroupsRequest = inc.decode()?;
    let mut distinct: Vec<String> = Vec::new();
    for g in &req.groups_names {
        if !distinct.iter().any(|d| d.as_str() == &***g) {
            distinct.push(g.to_string());
        }
    }
    let (allowed, denied): (Vec<String>, Vec<String>) = distinct.into_iter().partition(|g| {
        s.allow(
            ApiKey::DeleteGroups,
            ResourceType::Group,
            g,
            Operation::Delete,
        )
    });
    if denied.is_empty() {
        return Ok(Outcome::forward());
    }
    req.groups_names
        .retain(|g| allowed.iter().any(|a| a.as_str() == &***g));
    let nothing_left = req.groups_names.is_empty();
    let errors: Vec<DeletableGroupResult> = denied
        .into_iter()
        .map(|g| {
            DeletableGroupResult::default()
                .with_group_id(StrBytes::from_string(g).into())
                .with_error_code(GROUP_AUTHORIZATION_FAILED)
        })
        .collect();
    Ok(
        inc.forward_with::<_, DeleteGroupsResponse, _>(&req, true, nothing_left, move |r| {
            r.results.extend(errors)
        }),
    )
}

/// OffsetDelete: DELETE on the group (else the whole answer is 30), then READ per topic: a
/// denied topic's partitions get 29. The request is forwarded even when every topic is
/// denied, because Kafka still asks the coordinator, whose top-level error (unknown group,
/// not the coordinator, ...) then replaces the per-topic answer (`OffsetDeleteResponse.
/// Builder.merge`); otherwise the denied topics come first and the coordinator's are merged
/// in, with the top-level error of the merged answer left at 0.
pub fn offset_delete(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: OffsetDeleteRequest = inc.decode()?;
    if !s.allow(
        ApiKey::OffsetDelete,
        ResourceType::Group,
        &req.group_id,
        Operation::Delete,
    ) {
        return Ok(inc.respond(
            &OffsetDeleteResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        ));
    }
    let topics = std::mem::take(&mut req.topics);
    let (allowed, denied) = partition_by(
        topics,
        |t| t.name.to_string(),
        |n| {
            s.allow(
                ApiKey::OffsetDelete,
                ResourceType::Topic,
                n,
                Operation::Read,
            )
        },
    );
    if denied.is_empty() {
        return Ok(Outcome::forward());
    }
    req.topics = allowed;
    let mut merged: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for t in &denied {
        let partitions = t.partitions.iter().map(|p| {
            OffsetDeleteResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
        });
        match merged.iter_mut().find(|m| m.name == t.name) {
            Some(m) => m.partitions.extend(partitions),
            None => merged.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions.collect()),
            ),
        }
    }
    Ok(
        inc.forward_with::<_, OffsetDeleteResponse, _>(&req, true, false, move |r| {
            if r.error_code != 0 {
                return;
            }
            for t in std::mem::take(&mut r.topics) {
                match merged.iter_mut().find(|m| m.name == t.name) {
                    Some(m) => m.partitions.extend(t.partitions),
                    None => merged.push(t),
                }
            }
            r.topics = merged;
        }),
    )
}

// === producers and transactions ===

/// Kafka's `Topic.validate` message for an invalid topic name, if it is one.
fn invalid_topic_name(name: &str) -> Option<String> {
    // Java measures names in UTF-16 code units.
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_owned()
    } else if name == "." {
        "'.' is not allowed".to_owned()
    } else if name == ".." {
        "'..' is not allowed".to_owned()
    } else if name.encode_utf16().count() > 249 {
        format!("the length of '{name}' is longer than the max allowed length 249")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return None;
    };
    Some(format!("Topic name is invalid: {reason}"))
}

/// DescribeProducers: an invalid topic name gets INVALID_TOPIC_EXCEPTION (17) before any check;
/// then READ per topic, else every partition of it gets 29 "Topic authorization failed.".
/// Kafka answers topic by topic, in request order.
pub fn describe_producers(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: DescribeProducersRequest = inc.decode()?;
    let topics = std::mem::take(&mut req.topics);
    let keys: Vec<String> = topics.iter().map(|t| t.name.to_string()).collect();
    let mut local: Vec<Option<TopicResponse>> = Vec::with_capacity(topics.len());
    let mut forwarded = Vec::new();
    for t in topics {
        let error = match invalid_topic_name(&t.name) {
            Some(message) => Some((INVALID_TOPIC, owned(message))),
            None => (!s.allow(
                ApiKey::DescribeProducers,
                ResourceType::Topic,
                &t.name,
                Operation::Read,
            ))
            .then(|| {
                (
                    TOPIC_AUTHORIZATION_FAILED,
                    text(TOPIC_AUTHORIZATION_MESSAGE),
                )
            }),
        };
        match error {
            None => {
                local.push(None);
                forwarded.push(t);
            }
            Some((code, message)) => local.push(Some(
                TopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|p| {
                                PartitionResponse::default()
                                    .with_partition_index(*p)
                                    .with_error_code(code)
                                    .with_error_message(message.clone())
                            })
                            .collect(),
                    ),
            )),
        }
    }
    if local.iter().all(Option::is_none) {
        return Ok(Outcome::forward());
    }
    let nothing_left = forwarded.is_empty();
    req.topics = forwarded;
    Ok(
        inc.forward_with::<_, DescribeProducersResponse, _>(&req, true, nothing_left, move |r| {
            let upstream = std::mem::take(&mut r.topics);
            r.topics = in_request_order(&keys, local, upstream, |t| &**t.name);
        }),
    )
}

/// DescribeTransactions: DESCRIBE per transactional id (else 53 for that id); the topics
/// listed inside each returned state are filtered by DESCRIBE on the topic. In request order.
pub fn describe_transactions(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let mut req: DescribeTransactionsRequest = inc.decode()?;
    let ids = std::mem::take(&mut req.transactional_ids);
    let keys: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let mut local: Vec<Option<TransactionState>> = Vec::with_capacity(ids.len());
    for id in ids {
        if s.allow(
            ApiKey::DescribeTransactions,
            ResourceType::TransactionalId,
            &id,
            Operation::Describe,
        ) {
            local.push(None);
            req.transactional_ids.push(id);
        } else {
            local.push(Some(
                TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            ));
        }
    }
    let changed = local.iter().any(Option::is_some);
    let nothing_left = req.transactional_ids.is_empty();
    let session = s.clone();
    Ok(inc.forward_with::<_, DescribeTransactionsResponse, _>(
        &req,
        changed,
        nothing_left,
        move |r| {
            for state in &mut r.transaction_states {
                state.topics.retain(|t| {
                    session.allow(
                        ApiKey::DescribeTransactions,
                        ResourceType::Topic,
                        &t.topic,
                        Operation::Describe,
                    )
                });
            }
            let upstream = std::mem::take(&mut r.transaction_states);
            r.transaction_states =
                in_request_order(&keys, local, upstream, |t| &**t.transactional_id);
        },
    ))
}

/// ListTransactions: never errors; each listed transactional id is kept only if the principal
/// may DESCRIBE it (each denial is audited, as Kafka logs it).
pub fn list_transactions(s: &Session, inc: &Incoming) -> Result<Outcome, String> {
    let session = s.clone();
    Ok(Outcome::Forward {
        request: None,
        fixup: Some(typed_fixup::<ListTransactionsResponse, _>(
            inc.version,
            move |r| {
                r.transaction_states.retain(|t| {
                    session.allow(
                        ApiKey::ListTransactions,
                        ResourceType::TransactionalId,
                        &t.transactional_id,
                        Operation::Describe,
                    )
                });
            },
        )),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData};
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::describe_topic_partitions_request::Cursor;
    use kafka_protocol::messages::describe_topic_partitions_response::Cursor as NextCursor;
    use kafka_protocol::messages::describe_transactions_response::TopicData;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::incremental_alter_configs_request as iac;
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{
        describe_producers_request, DescribeClientQuotasRequest, DescribeLogDirsRequest,
        ListTransactionsRequest, RequestHeader, TransactionalId, UpdateFeaturesRequest,
    };
    use kgate_policies::{
        AclBinding, Authorizer, AuthorizerOptions, Host, Permission, Policy, ResourcePattern,
    };

    use super::*;
    use crate::authz::Authz;

    fn acl(
        principal: &str,
        operation: Operation,
        resource: ResourceType,
        name: &str,
    ) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern::literal(resource, name).expect("pattern"),
            principal: principal.parse().expect("principal"),
            host: Host::Any,
            operation,
            permission: Permission::Allow,
        }
    }

    /// `User:alice` from 10.0.0.1 under an in-memory policy with these ACLs (`User:admin` is
    /// a super user).
    fn alice(acls: Vec<AclBinding>) -> Session {
        let mut policy = Policy::new();
        for a in acls {
            policy.add_acl(a);
        }
        let authorizer = Authorizer::new(
            policy,
            AuthorizerOptions {
                super_users: vec!["User:admin".parse().expect("principal")],
                cache_capacity: 0,
            },
        );
        Session {
            principal: "User:alice".parse().expect("principal"),
            host: "10.0.0.1".parse().expect("ip"),
            authz: Some(Arc::new(Authz {
                authorizer: Arc::new(authorizer),
                audit: None,
                credentials: None,
            })),
        }
    }

    fn incoming<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Incoming {
        let mut buf = BytesMut::new();
        body.encode(&mut buf, version).expect("encode request");
        Incoming {
            api,
            version,
            header: RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_correlation_id(42),
            body: buf.freeze(),
        }
    }

    fn run<T: Encodable>(s: &Session, api: ApiKey, version: i16, body: &T) -> Outcome {
        authorize(s, &incoming(api, version, body)).expect("well-formed")
    }

    /// The body of a local answer.
    fn answered<R: Decodable>(outcome: Outcome, api: ApiKey, version: i16) -> R {
        let Outcome::Respond(frame) = outcome else {
            panic!("expected a local answer, got {outcome:?}");
        };
        let (header, body) =
            crate::header::decode_response_header(api, version, &frame).expect("header");
        assert_eq!(header.correlation_id, 42);
        R::decode(&mut body.clone(), version).expect("body")
    }

    /// The forwarded request (`None`: the original bytes) and the response fixup.
    fn forwarded<Req: Decodable>(
        outcome: Outcome,
        api: ApiKey,
        version: i16,
    ) -> (Option<Req>, Option<Fixup>) {
        let Outcome::Forward { request, fixup } = outcome else {
            panic!("expected a forward, got {outcome:?}");
        };
        let request = request.map(|frame| {
            let (_, body) =
                crate::header::decode_request_header(api, version, &frame).expect("header");
            Req::decode(&mut body.clone(), version).expect("body")
        });
        (request, fixup)
    }

    /// What the client gets when the broker answers `upstream`.
    fn fixed<R: Encodable + Decodable>(fixup: Fixup, version: i16, upstream: &R) -> R {
        let mut buf = BytesMut::new();
        upstream.encode(&mut buf, version).expect("encode response");
        let body = fixup(buf.freeze()).expect("fixup");
        R::decode(&mut body.clone(), version).expect("decode merged")
    }

    fn tn(s: &str) -> TopicName {
        topic_name(s)
    }

    fn msg(m: &Option<StrBytes>) -> Option<&str> {
        m.as_deref()
    }

    #[test]
    fn create_topics_checks_duplicates_metadata_topic_create_and_describe_configs() {
        let s = alice(vec![
            acl("User:alice", Operation::Create, ResourceType::Topic, "a"),
            acl("User:alice", Operation::Create, ResourceType::Topic, "c"),
            acl(
                "User:alice",
                Operation::DescribeConfigs,
                ResourceType::Topic,
                "c",
            ),
        ]);
        let topic = |n: &str| {
            CreatableTopic::default()
                .with_name(tn(n))
                .with_num_partitions(3)
        };
        let req = CreateTopicsRequest::default().with_topics(vec![
            topic("a"),
            topic("b"),
            topic("dup"),
            topic("c"),
            topic("dup"),
            topic("__cluster_metadata"),
        ]);
        let (fwd, fixup) = forwarded::<CreateTopicsRequest>(
            run(&s, ApiKey::CreateTopics, 7, &req),
            ApiKey::CreateTopics,
            7,
        );
        let fwd = fwd.expect("trimmed");
        let names: Vec<&str> = fwd.topics.iter().map(|t| &**t.name).collect();
        assert_eq!(names, ["a", "c"]);
        let created = |n: &str| {
            CreatableTopicResult::default()
                .with_name(tn(n))
                .with_error_message(None)
                .with_num_partitions(3)
                .with_replication_factor(3)
                .with_configs(Some(vec![CreatableTopicConfigs::default()
                    .with_name("cleanup.policy".into())
                    .with_value(Some("delete".into()))]))
        };
        let upstream =
            CreateTopicsResponse::default().with_topics(vec![created("a"), created("c")]);
        let r = fixed(fixup.expect("fixup"), 7, &upstream);
        let got: Vec<(&str, i16, Option<&str>)> = r
            .topics
            .iter()
            .map(|t| (&**t.name, t.error_code, msg(&t.error_message)))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 0, None),
                ("c", 0, None),
                ("dup", 42, Some("Duplicate topic name.")),
                ("b", 29, Some("Authorization failed.")),
                (
                    "__cluster_metadata",
                    42,
                    Some("Creation of internal topic __cluster_metadata is prohibited.")
                ),
            ]
        );
        // Created but not describable: configs, partitions and replication withheld.
        assert_eq!(r.topics[0].topic_config_error_code, 29);
        assert_eq!(r.topics[0].configs.as_ref().map(Vec::len), Some(0));
        assert_eq!(
            (r.topics[0].num_partitions, r.topics[0].replication_factor),
            (-1, -1)
        );
        assert_eq!(r.topics[1].topic_config_error_code, 0);
        assert_eq!(r.topics[1].configs.as_ref().map(Vec::len), Some(1));
        assert_eq!(r.topics[1].num_partitions, 3);
    }

    #[test]
    fn create_topics_cluster_create_allows_every_topic_and_nothing_allowed_is_answered_locally() {
        let admin_like = alice(vec![
            acl(
                "User:alice",
                Operation::Create,
                ResourceType::Cluster,
                CLUSTER,
            ),
            acl(
                "User:alice",
                Operation::AlterConfigs,
                ResourceType::Topic,
                "*",
            ),
        ]);
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default().with_name(tn("x"))]);
        let (fwd, fixup) = forwarded::<CreateTopicsRequest>(
            run(&admin_like, ApiKey::CreateTopics, 5, &req),
            ApiKey::CreateTopics,
            5,
        );
        assert!(fwd.is_none() && fixup.is_none(), "untouched");

        let nobody = alice(vec![]);
        let r: CreateTopicsResponse = answered(
            run(&nobody, ApiKey::CreateTopics, 2, &req),
            ApiKey::CreateTopics,
            2,
        );
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].error_code, 29);
    }

    #[test]
    fn delete_topics_needs_describe_and_delete_and_copies_a_deletion_refusal() {
        let s = alice(vec![
            acl("User:alice", Operation::Delete, ResourceType::Topic, "x"),
            acl("User:alice", Operation::Describe, ResourceType::Topic, "y"),
        ]);
        let req = DeleteTopicsRequest::default().with_topic_names(vec![
            tn("x"),
            tn("y"),
            tn("z"),
            tn("d"),
            tn("d"),
        ]);
        let outcome = run(&s, ApiKey::DeleteTopics, 5, &req);
        let (fwd, fixup) = forwarded::<DeleteTopicsRequest>(outcome, ApiKey::DeleteTopics, 5);
        let fwd = fwd.expect("trimmed");
        assert_eq!(fwd.topic_names, [tn("x")]);
        let upstream = DeleteTopicsResponse::default().with_responses(vec![
            DeletableTopicResult::default().with_name(Some(tn("x"))),
        ]);
        let r = fixed(fixup.expect("fixup"), 5, &upstream);
        let got: Vec<(String, i16, Option<&str>)> = r
            .responses
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    t.error_code,
                    msg(&t.error_message),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("x".into(), 0, None),
                ("d".into(), 42, Some("Duplicate topic name.")),
                ("y".into(), 29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
                ("z".into(), 29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
            ]
        );
        // delete.topic.enable=false: Kafka refuses every name before any check.
        let (_, fixup) = forwarded::<DeleteTopicsRequest>(
            run(&s, ApiKey::DeleteTopics, 5, &req),
            ApiKey::DeleteTopics,
            5,
        );
        let refused =
            DeleteTopicsResponse::default().with_responses(vec![DeletableTopicResult::default()
                .with_name(Some(tn("x")))
                .with_error_code(TOPIC_DELETION_DISABLED)]);
        let r = fixed(fixup.expect("fixup"), 5, &refused);
        assert_eq!(r.responses.len(), 5);
        assert!(r
            .responses
            .iter()
            .all(|t| t.error_code == TOPIC_DELETION_DISABLED));

        let cluster = alice(vec![acl(
            "User:alice",
            Operation::Delete,
            ResourceType::Cluster,
            CLUSTER,
        )]);
        let single = DeleteTopicsRequest::default().with_topic_names(vec![tn("z")]);
        assert!(matches!(
            run(&cluster, ApiKey::DeleteTopics, 5, &single),
            Outcome::Forward {
                request: None,
                fixup: None
            }
        ));
    }

    #[test]
    fn delete_records_denies_per_partition_with_low_watermark_minus_one() {
        let s = alice(vec![acl(
            "User:alice",
            Operation::Delete,
            ResourceType::Topic,
            "ok",
        )]);
        let topic = |n: &str| {
            DeleteRecordsTopic::default()
                .with_name(tn(n))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(5),
                    DeleteRecordsPartition::default()
                        .with_partition_index(1)
                        .with_offset(5),
                ])
        };
        let req = DeleteRecordsRequest::default().with_topics(vec![topic("ok"), topic("no")]);
        let (fwd, fixup) = forwarded::<DeleteRecordsRequest>(
            run(&s, ApiKey::DeleteRecords, 2, &req),
            ApiKey::DeleteRecords,
            2,
        );
        assert_eq!(fwd.expect("trimmed").topics.len(), 1);
        let r = fixed(fixup.expect("fixup"), 2, &DeleteRecordsResponse::default());
        assert_eq!(&*r.topics[0].name, "no");
        for p in &r.topics[0].partitions {
            assert_eq!((p.error_code, p.low_watermark), (29, -1));
        }
    }

    #[test]
    fn describe_configs_per_resource_type_and_unknown_type_fails_everything() {
        let s = alice(vec![acl(
            "User:alice",
            Operation::DescribeConfigs,
            ResourceType::Topic,
            "t",
        )]);
        let res = |t: i8, n: &str| {
            DescribeConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(n.to_owned().into())
        };
        let req = DescribeConfigsRequest::default().with_resources(vec![
            res(CONFIG_TOPIC, "t"),
            res(CONFIG_BROKER, "1"),
            res(CONFIG_GROUP, "g"),
            res(CONFIG_TOPIC, "u"),
            res(CONFIG_CLIENT_METRICS, "m"),
        ]);
        let (fwd, fixup) = forwarded::<DescribeConfigsRequest>(
            run(&s, ApiKey::DescribeConfigs, 4, &req),
            ApiKey::DescribeConfigs,
            4,
        );
        assert_eq!(fwd.expect("trimmed").resources.len(), 1);
        let r = fixed(
            fixup.expect("fixup"),
            4,
            &DescribeConfigsResponse::default(),
        );
        let got: Vec<(&str, i16, Option<&str>, usize)> = r
            .results
            .iter()
            .map(|x| {
                (
                    &*x.resource_name,
                    x.error_code,
                    msg(&x.error_message),
                    x.configs.len(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1", 31, Some(CLUSTER_AUTHORIZATION_MESSAGE), 0),
                ("g", 30, Some(GROUP_AUTHORIZATION_MESSAGE), 0),
                ("u", 29, Some(TOPIC_AUTHORIZATION_MESSAGE), 0),
                ("m", 31, Some(CLUSTER_AUTHORIZATION_MESSAGE), 0),
            ]
        );
        let bad = DescribeConfigsRequest::default()
            .with_resources(vec![res(CONFIG_TOPIC, "t"), res(99, "?")]);
        let r: DescribeConfigsResponse = answered(
            run(&s, ApiKey::DescribeConfigs, 1, &bad),
            ApiKey::DescribeConfigs,
            1,
        );
        assert_eq!(r.results.len(), 2);
        assert!(r.results.iter().all(|x| x.error_code == INVALID_REQUEST
            && msg(&x.error_message) == Some(INVALID_REQUEST_MESSAGE)));
    }

    #[test]
    fn incremental_alter_configs_validates_then_authorizes_in_request_order() {
        let s = alice(vec![acl(
            "User:alice",
            Operation::AlterConfigs,
            ResourceType::Topic,
            "t",
        )]);
        let cfg = |k: &str, op: i8, v: Option<&str>| {
            iac::AlterableConfig::default()
                .with_name(k.to_owned().into())
                .with_config_operation(op)
                .with_value(v.map(|v| v.to_owned().into()))
        };
        let res = |t: i8, n: &str, configs: Vec<iac::AlterableConfig>| {
            iac::AlterConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(n.to_owned().into())
                .with_configs(configs)
        };
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            res(
                CONFIG_BROKER_LOGGER,
                "1",
                vec![cfg("kafka", 0, Some("DEBUG"))],
            ),
            res(
                CONFIG_TOPIC,
                "t",
                vec![cfg("retention.ms", 0, Some("1")), cfg("x", 1, None)],
            ),
            res(CONFIG_TOPIC, "u", vec![]),
            res(
                CONFIG_TOPIC,
                "nulls",
                vec![cfg("a", 0, None), cfg("b", 2, None)],
            ),
            res(
                CONFIG_TOPIC,
                "keys",
                vec![cfg("a", 0, Some("1")), cfg("a", 0, Some("2"))],
            ),
            res(CONFIG_GROUP, "g", vec![]),
            res(CONFIG_BROKER, "one", vec![]),
            res(CONFIG_BROKER, "", vec![]),
            res(CONFIG_CLIENT_METRICS, "twice", vec![]),
            res(CONFIG_CLIENT_METRICS, "twice", vec![]),
            res(3, "what", vec![]),
        ]);
        let (fwd, fixup) = forwarded::<IncrementalAlterConfigsRequest>(
            run(&s, ApiKey::IncrementalAlterConfigs, 1, &req),
            ApiKey::IncrementalAlterConfigs,
            1,
        );
        let fwd = fwd.expect("trimmed");
        assert_eq!(fwd.resources.len(), 1);
        assert_eq!(&*fwd.resources[0].resource_name, "t");
        // The broker answers nothing for "t": Kafka's reassembly reports a server error.
        let r = fixed(
            fixup.expect("fixup"),
            1,
            &IncrementalAlterConfigsResponse::default(),
        );
        let got: Vec<(&str, i16, Option<&str>)> = r
            .responses
            .iter()
            .map(|x| (&*x.resource_name, x.error_code, msg(&x.error_message)))
            .collect();
        assert_eq!(
            got,
            [
                ("1", 31, None),
                ("t", -1, Some(UNKNOWN_SERVER_ERROR_MESSAGE)),
                ("u", 29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
                ("nulls", 42, Some("Null value not supported for : a, b")),
                ("keys", 42, Some("Error due to duplicate config keys")),
                ("g", 30, Some(GROUP_AUTHORIZATION_MESSAGE)),
                (
                    "one",
                    42,
                    Some("Node id must be an integer, but it is: one")
                ),
                ("", 31, Some(CLUSTER_AUTHORIZATION_MESSAGE)),
                ("twice", 42, Some("Each resource must appear at most once.")),
                ("twice", 42, Some("Each resource must appear at most once.")),
                ("what", 42, Some("Unknown resource type 3")),
            ]
        );
        // With the broker's answer for "t" it lands in its place.
        let (_, fixup) = forwarded::<IncrementalAlterConfigsRequest>(
            run(&s, ApiKey::IncrementalAlterConfigs, 1, &req),
            ApiKey::IncrementalAlterConfigs,
            1,
        );
        let upstream = IncrementalAlterConfigsResponse::default().with_responses(vec![
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(CONFIG_TOPIC)
                .with_resource_name("t".into())
                .with_error_message(None),
        ]);
        let r = fixed(fixup.expect("fixup"), 1, &upstream);
        assert_eq!(
            (&*r.responses[1].resource_name, r.responses[1].error_code),
            ("t", 0)
        );
    }

    #[test]
    fn legacy_alter_configs_has_no_broker_logger_and_answers_locally_when_all_denied() {
        let s = alice(vec![]);
        let req = AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(CONFIG_BROKER_LOGGER)
                .with_resource_name("1".into()),
            AlterConfigsResource::default()
                .with_resource_type(CONFIG_TOPIC)
                .with_resource_name("t".into())
                .with_configs(vec![AlterableConfig::default()
                    .with_name("a".into())
                    .with_value(Some("1".into()))]),
        ]);
        let r: AlterConfigsResponse = answered(
            run(&s, ApiKey::AlterConfigs, 2, &req),
            ApiKey::AlterConfigs,
            2,
        );
        let got: Vec<(i16, Option<&str>)> = r
            .responses
            .iter()
            .map(|x| (x.error_code, msg(&x.error_message)))
            .collect();
        assert_eq!(
            got,
            [
                (42, Some("Unknown resource type 8")),
                (29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
            ]
        );
    }

    #[test]
    fn describe_log_dirs_denial_by_version() {
        let s = alice(vec![]);
        let req = DescribeLogDirsRequest::default().with_topics(None);
        let r: DescribeLogDirsResponse = answered(
            run(&s, ApiKey::DescribeLogDirs, 4, &req),
            ApiKey::DescribeLogDirs,
            4,
        );
        assert_eq!((r.error_code, r.results.len()), (31, 0));
        let r: DescribeLogDirsResponse = answered(
            run(&s, ApiKey::DescribeLogDirs, 1, &req),
            ApiKey::DescribeLogDirs,
            1,
        );
        assert_eq!((r.error_code, r.results.len()), (0, 0), "v0-2: just empty");
        let ok = alice(vec![acl(
            "User:alice",
            Operation::Describe,
            ResourceType::Cluster,
            CLUSTER,
        )]);
        assert!(matches!(
            run(&ok, ApiKey::DescribeLogDirs, 4, &req),
            Outcome::Forward {
                request: None,
                fixup: None
            }
        ));
    }

    #[test]
    fn create_partitions_lists_duplicates_and_denials_first() {
        let s = alice(vec![acl(
            "User:alice",
            Operation::Alter,
            ResourceType::Topic,
            "a",
        )]);
        let t = |n: &str| {
            CreatePartitionsTopic::default()
                .with_name(tn(n))
                .with_count(6)
        };
        let req =
            CreatePartitionsRequest::default().with_topics(vec![t("a"), t("b"), t("d"), t("d")]);
        let (fwd, fixup) = forwarded::<CreatePartitionsRequest>(
            run(&s, ApiKey::CreatePartitions, 3, &req),
            ApiKey::CreatePartitions,
            3,
        );
        assert_eq!(fwd.expect("trimmed").topics.len(), 1);
        let upstream = CreatePartitionsResponse::default().with_results(vec![
            CreatePartitionsTopicResult::default().with_name(tn("a")),
        ]);
        let r = fixed(fixup.expect("fixup"), 3, &upstream);
        let got: Vec<(&str, i16, Option<&str>)> = r
            .results
            .iter()
            .map(|x| (&**x.name, x.error_code, msg(&x.error_message)))
            .collect();
        assert_eq!(
            got,
            [
                ("d", 42, Some("Duplicate topic name.")),
                ("b", 29, None),
                ("a", 0, None),
            ]
        );
    }

    #[test]
    fn delete_groups_denies_each_distinct_group_once() {
        let s = alice(vec![acl(
            "User:alice",
            Operation::Delete,
            ResourceType::Group,
            "mine",
        )]);
        let g = |n: &str| StrBytes::from_string(n.to_owned()).into();
        let req = DeleteGroupsRequest::default().with_groups_names(vec![
            g("mine"),
            g("theirs"),
            g("theirs"),
        ]);
        let (fwd, fixup) = forwarded::<DeleteGroupsRequest>(
            run(&s, ApiKey::DeleteGroups, 2, &req),
            ApiKey::DeleteGroups,
            2,
        );
        assert_eq!(fwd.expect("trimmed").groups_names.len(), 1);
        let r = fixed(fixup.expect("fixup"), 2, &DeleteGroupsResponse::default());
        assert_eq!(r.results.len(), 1);
        assert_eq!(
            (&**r.results[0].group_id, r.results[0].error_code),
            ("theirs", 30)
        );
    }

    #[test]
    fn cluster_operations_fail_whole_requests_with_kafka_shapes() {
        let s = alice(vec![]);
        let tp = TopicPartitions::default()
            .with_topic(tn("t"))
            .with_partitions(vec![0, 1]);
        let req = ElectLeadersRequest::default().with_topic_partitions(Some(vec![tp]));
        for version in [0, 2] {
            let r: ElectLeadersResponse = answered(
                run(&s, ApiKey::ElectLeaders, version, &req),
                ApiKey::ElectLeaders,
                version,
            );
            assert_eq!(r.error_code, if version == 0 { 0 } else { 31 });
            let p = &r.replica_election_results[0].partition_result;
            assert_eq!(p.len(), 2);
            assert!(p.iter().all(|p| p.error_code == 31));
        }

        let req = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default()
                .with_name(tn("t"))
                .with_partitions(vec![
                    ReassignablePartition::default().with_partition_index(3)
                ]),
        ]);
        let r: AlterPartitionReassignmentsResponse = answered(
            run(&s, ApiKey::AlterPartitionReassignments, 0, &req),
            ApiKey::AlterPartitionReassignments,
            0,
        );
        assert_eq!(r.error_code, 31);
        assert_eq!(r.responses[0].partitions[0].error_code, 31);

        let req = ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
            ListPartitionReassignmentsTopics::default()
                .with_name(tn("t"))
                .with_partition_indexes(vec![4]),
        ]));
        let r: ListPartitionReassignmentsResponse = answered(
            run(&s, ApiKey::ListPartitionReassignments, 0, &req),
            ApiKey::ListPartitionReassignments,
            0,
        );
        assert_eq!(r.error_code, 31);
        assert_eq!(r.topics[0].partitions[0].partition_index, 4);

        let r: DescribeClientQuotasResponse = answered(
            run(
                &s,
                ApiKey::DescribeClientQuotas,
                1,
                &DescribeClientQuotasRequest::default(),
            ),
            ApiKey::DescribeClientQuotas,
            1,
        );
        assert_eq!(
            (r.error_code, r.error_message.is_none(), r.entries.is_none()),
            (31, true, true)
        );

        let req = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
            .with_entity(vec![EntityData::default()
                .with_entity_type("user".into())
                .with_entity_name(Some("bob".into()))])]);
        let r: AlterClientQuotasResponse = answered(
            run(&s, ApiKey::AlterClientQuotas, 1, &req),
            ApiKey::AlterClientQuotas,
            1,
        );
        assert_eq!(r.entries[0].error_code, 31);
        assert_eq!(
            msg(&r.entries[0].error_message),
            Some(CLUSTER_AUTHORIZATION_MESSAGE)
        );
        assert_eq!(r.entries[0].entity[0].entity_name.as_deref(), Some("bob"));

        // An API kgate has no model for fails closed.
        assert!(matches!(
            run(
                &s,
                ApiKey::UpdateFeatures,
                1,
                &UpdateFeaturesRequest::default()
            ),
            Outcome::Close(_)
        ));
    }

    #[test]
    fn offset_delete_group_then_topics_with_kafkas_merge() {
        let req = OffsetDeleteRequest::default()
            .with_group_id(StrBytes::from_static_str("g").into())
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(tn("no"))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0)
                    ]),
                OffsetDeleteRequestTopic::default()
                    .with_name(tn("yes"))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(1)
                    ]),
            ]);
        let r: OffsetDeleteResponse = answered(
            run(&alice(vec![]), ApiKey::OffsetDelete, 0, &req),
            ApiKey::OffsetDelete,
            0,
        );
        assert_eq!((r.error_code, r.topics.len()), (30, 0));

        let s = alice(vec![
            acl("User:alice", Operation::Delete, ResourceType::Group, "g"),
            acl("User:alice", Operation::Read, ResourceType::Topic, "yes"),
        ]);
        let (fwd, fixup) = forwarded::<OffsetDeleteRequest>(
            run(&s, ApiKey::OffsetDelete, 0, &req),
            ApiKey::OffsetDelete,
            0,
        );
        assert_eq!(fwd.expect("trimmed").topics.len(), 1);
        let upstream =
            OffsetDeleteResponse::default().with_topics(vec![OffsetDeleteResponseTopic::default()
                .with_name(tn("yes"))
                .with_partitions(vec![
                    OffsetDeleteResponsePartition::default().with_partition_index(1)
                ])]);
        let r = fixed(fixup.expect("fixup"), 0, &upstream);
        let names: Vec<&str> = r.topics.iter().map(|t| &**t.name).collect();
        assert_eq!(names, ["no", "yes"]);
        assert_eq!(r.topics[0].partitions[0].error_code, 29);
        // A coordinator error replaces everything, as Kafka's Builder.merge does.
        let (_, fixup) = forwarded::<OffsetDeleteRequest>(
            run(&s, ApiKey::OffsetDelete, 0, &req),
            ApiKey::OffsetDelete,
            0,
        );
        let r = fixed(
            fixup.expect("fixup"),
            0,
            &OffsetDeleteResponse::default().with_error_code(69),
        );
        assert_eq!((r.error_code, r.topics.len()), (69, 0));
    }

    #[test]
    fn describe_producers_validates_names_then_read_in_request_order() {
        let s = alice(vec![acl(
            "User:alice",
            Operation::Read,
            ResourceType::Topic,
            "ok",
        )]);
        let t = |n: &str| {
            describe_producers_request::TopicRequest::default()
                .with_name(tn(n))
                .with_partition_indexes(vec![0, 1])
        };
        let req =
            DescribeProducersRequest::default().with_topics(vec![t("no"), t("ok"), t("bad name")]);
        let (fwd, fixup) = forwarded::<DescribeProducersRequest>(
            run(&s, ApiKey::DescribeProducers, 0, &req),
            ApiKey::DescribeProducers,
            0,
        );
        assert_eq!(fwd.expect("trimmed").topics.len(), 1);
        let upstream =
            DescribeProducersResponse::default().with_topics(vec![TopicResponse::default()
                .with_name(tn("ok"))
                .with_partitions(vec![PartitionResponse::default().with_partition_index(0)])]);
        let r = fixed(fixup.expect("fixup"), 0, &upstream);
        let names: Vec<&str> = r.topics.iter().map(|t| &**t.name).collect();
        assert_eq!(names, ["no", "ok", "bad name"]);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[0].error_code, 29);
        assert_eq!(
            msg(&r.topics[0].partitions[0].error_message),
            Some(TOPIC_AUTHORIZATION_MESSAGE)
        );
        assert_eq!(r.topics[2].partitions[1].error_code, INVALID_TOPIC);
        assert_eq!(
            msg(&r.topics[2].partitions[1].error_message),
            Some("Topic name is invalid: 'bad name' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
        );
        assert_eq!(
            invalid_topic_name(&"x".repeat(250))
                .as_deref()
                .map(|m| m.ends_with("max allowed length 249")),
            Some(true)
        );
        assert_eq!(
            invalid_topic_name("..").as_deref(),
            Some("Topic name is invalid: '..' is not allowed")
        );
    }

    #[test]
    fn transactions_are_described_and_listed_only_when_describable() {
        let s = alice(vec![
            acl(
                "User:alice",
                Operation::Describe,
                ResourceType::TransactionalId,
                "t1",
            ),
            acl(
                "User:alice",
                Operation::Describe,
                ResourceType::Topic,
                "seen",
            ),
        ]);
        let id = |n: &str| TransactionalId(StrBytes::from_string(n.to_owned()));
        let req =
            DescribeTransactionsRequest::default().with_transactional_ids(vec![id("t2"), id("t1")]);
        let (fwd, fixup) = forwarded::<DescribeTransactionsRequest>(
            run(&s, ApiKey::DescribeTransactions, 0, &req),
            ApiKey::DescribeTransactions,
            0,
        );
        assert_eq!(fwd.expect("trimmed").transactional_ids, [id("t1")]);
        let upstream = DescribeTransactionsResponse::default().with_transaction_states(vec![
            TransactionState::default()
                .with_transactional_id(id("t1"))
                .with_transaction_state("Ongoing".into())
                .with_topics(vec![
                    TopicData::default()
                        .with_topic(tn("seen"))
                        .with_partitions(vec![0]),
                    TopicData::default()
                        .with_topic(tn("hidden"))
                        .with_partitions(vec![0]),
                ]),
        ]);
        let r = fixed(fixup.expect("fixup"), 0, &upstream);
        assert_eq!(r.transaction_states.len(), 2);
        assert_eq!(&*r.transaction_states[0].transactional_id, "t2");
        assert_eq!(r.transaction_states[0].error_code, 53);
        assert_eq!(&*r.transaction_states[1].transactional_id, "t1");
        let topics: Vec<&str> = r.transaction_states[1]
            .topics
            .iter()
            .map(|t| &**t.topic)
            .collect();
        assert_eq!(topics, ["seen"]);

        let (fwd, fixup) = forwarded::<ListTransactionsRequest>(
            run(
                &s,
                ApiKey::ListTransactions,
                1,
                &ListTransactionsRequest::default(),
            ),
            ApiKey::ListTransactions,
            1,
        );
        assert!(fwd.is_none());
        let upstream = ListTransactionsResponse::default().with_transaction_states(vec![
            ListedState::default().with_transactional_id(id("t1")),
            ListedState::default().with_transactional_id(id("t2")),
        ]);
        let r = fixed(fixup.expect("fixup"), 1, &upstream);
        assert_eq!(r.transaction_states.len(), 1);
        assert_eq!(r.error_code, 0);
    }

    #[test]
    fn describe_topic_partitions_named_all_and_cursor() {
        let s = alice(vec![
            acl("User:alice", Operation::Read, ResourceType::Topic, "b"),
            acl("User:alice", Operation::Describe, ResourceType::Topic, "d"),
        ]);
        let t = |n: &str| TopicRequest::default().with_name(tn(n));
        let req = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![t("d"), t("c"), t("a"), t("b")])
            .with_cursor(Some(
                Cursor::default()
                    .with_topic_name(tn("c"))
                    .with_partition_index(2),
            ));
        let (fwd, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
            run(&s, ApiKey::DescribeTopicPartitions, 0, &req),
            ApiKey::DescribeTopicPartitions,
            0,
        );
        let fwd = fwd.expect("trimmed");
        let names: Vec<&str> = fwd.topics.iter().map(|t| &**t.name).collect();
        assert_eq!(
            names,
            ["d"],
            "a sorts before the cursor, b too; c is denied"
        );
        assert!(
            fwd.cursor.is_none(),
            "a cursor on a denied topic is dropped"
        );
        let upstream = DescribeTopicPartitionsResponse::default().with_topics(vec![
            DescribeTopicPartitionsResponseTopic::default().with_name(Some(tn("d"))),
        ]);
        let r = fixed(fixup.expect("fixup"), 0, &upstream);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(
            r.topics[0].topic_authorized_operations,
            1 << Operation::Describe.code()
        );
        assert_eq!(r.topics[1].name.as_deref().map(|n| &**n), Some("c"));
        assert_eq!(r.topics[1].error_code, 29);
        assert_eq!(r.topics[1].topic_authorized_operations, i32::MIN);
        assert!(r.topics[1].partitions.is_empty());

        // The cursor must name a listed topic.
        let bad = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![t("d")])
            .with_cursor(Some(Cursor::default().with_topic_name(tn("a"))));
        let r: DescribeTopicPartitionsResponse = answered(
            run(&s, ApiKey::DescribeTopicPartitions, 0, &bad),
            ApiKey::DescribeTopicPartitions,
            0,
        );
        assert_eq!(r.topics[0].error_code, INVALID_REQUEST);

        // All topics: the undescribable ones vanish; a next page starting at one is refused.
        let all = DescribeTopicPartitionsRequest::default();
        let (_, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
            run(&s, ApiKey::DescribeTopicPartitions, 0, &all),
            ApiKey::DescribeTopicPartitions,
            0,
        );
        let topic =
            |n: &str| DescribeTopicPartitionsResponseTopic::default().with_name(Some(tn(n)));
        let upstream = DescribeTopicPartitionsResponse::default()
            .with_topics(vec![topic("a"), topic("b"), topic("c")])
            .with_next_cursor(Some(NextCursor::default().with_topic_name(tn("d"))));
        let r = fixed(fixup.expect("fixup"), 0, &upstream);
        let names: Vec<&str> = r
            .topics
            .iter()
            .map(|t| t.name.as_deref().map_or("", |n| &**n))
            .collect();
        assert_eq!(names, ["b"]);
        let (_, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
            run(&s, ApiKey::DescribeTopicPartitions, 0, &all),
            ApiKey::DescribeTopicPartitions,
            0,
        );
        // A next page starting at a hidden topic: the cursor moves past the last topic shown
        // (b has partitions 0 and 1, so the next page starts at b's partition 2).
        let part = |i: i32| {
            kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(i)
        };
        let leaky = upstream
            .clone()
            .with_topics(vec![
                topic("a"),
                topic("b").with_partitions(vec![part(0), part(1)]),
                topic("c"),
            ])
            .with_next_cursor(Some(NextCursor::default().with_topic_name(tn("secret"))));
        let r = fixed(fixup.expect("fixup"), 0, &leaky);
        let next = r.next_cursor.expect("a next page");
        assert_eq!((&*next.topic_name.0, next.partition_index), ("b", 2));
        // A page showing nothing ends the listing rather than naming the hidden topic.
        let (_, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
            run(&s, ApiKey::DescribeTopicPartitions, 0, &all),
            ApiKey::DescribeTopicPartitions,
            0,
        );
        let hidden_only = upstream
            .with_topics(vec![topic("c")])
            .with_next_cursor(Some(NextCursor::default().with_topic_name(tn("secret"))));
        let r = fixed(fixup.expect("fixup"), 0, &hidden_only);
        assert!(r.topics.is_empty());
        assert!(r.next_cursor.is_none());
    }

    #[test]
    fn helpers_split_duplicates_like_kafka() {
        let (once, dups) = once_and_duplicates(["a", "b", "a", "c", "a", "b"]);
        assert_eq!(once, ["c"]);
        assert_eq!(dups, ["a", "b"]);
    }
}
