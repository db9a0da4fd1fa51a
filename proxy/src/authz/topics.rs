//! Topic administration: CreateTopics, DeleteTopics, DeleteRecords, CreatePartitions and
//! DescribeTopicPartitions, each with the checks Kafka makes (reference §1.1).
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask and answers a denial
//! with the response Kafka builds for it (see [`super::answers`] for the shared texts). When
//! some resources of a request are denied, the allowed ones are forwarded and the denials merged
//! into the broker's answer, in the order Kafka puts them.

use std::collections::HashSet;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};

use kgate_policies::{Operation, ResourceType};

#[allow(unused_imports)]
use super::answers::*;
use super::codes::{INVALID_REQUEST, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID};
use super::AuthzError;
use super::{check_each_topic, Incoming, Outcome, Session, CLUSTER};

// === topics ===

/// CreateTopics (KRaft `ControllerApis.createTopics`): duplicates and `__cluster_metadata` get
/// INVALID_REQUEST before any check; CREATE on the cluster (checked quietly) allows every
/// topic, otherwise CREATE per topic (29 "Authorization failed."). DESCRIBE_CONFIGS per topic
/// (quietly) decides whether a created topic's configs, partition count and replication
/// factor are returned; without it `topic_config_error_code` is 29 and they are withheld.
pub fn create_topics(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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

/// DeleteTopics v1–5 (by name; KRaft `ControllerApis.deleteTopics`; v6 below): duplicates get
/// INVALID_REQUEST; DELETE on the cluster (quietly) allows every topic, otherwise a topic
/// needs DESCRIBE and DELETE, else 29 — so a topic one may not see gets 29 whether or not it
/// exists. When the cluster refuses deletion altogether (`delete.topic.enable=false`), Kafka
/// says so for every topic before any check; the refusal is copied onto the denied topics.
pub fn delete_topics(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: DeleteTopicsRequest = inc.decode()?;
    if inc.version >= DELETE_TOPICS_BY_ID {
        return delete_topic_states(s, inc, req);
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
pub fn delete_records(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn create_partitions(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn describe_topic_partitions(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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

/// The first DeleteTopics version whose topics may be named by id.
const DELETE_TOPICS_BY_ID: i16 = 6;

/// DeleteTopics v6+: each topic by name or by id. A name or an id given twice gets
/// INVALID_REQUEST. An id is authorized by the name kgate learned for it from Metadata: an id
/// kgate has not learned gets UNKNOWN_TOPIC_ID (a deletion is never forwarded unchecked); a
/// topic that is not both describable and deletable gets 29, with its name only when it is
/// describable (KRaft `ControllerApis.deleteTopics`). DELETE on the cluster (quietly) allows
/// every topic.
fn delete_topic_states(
    s: &Session,
    inc: &Incoming,
    mut req: DeleteTopicsRequest,
) -> Result<Outcome, AuthzError> {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let api = ApiKey::DeleteTopics;
    let all = std::mem::take(&mut req.topics);
    let key = |t: &DeleteTopicState| match &t.name {
        Some(n) => format!("name:{}", n.0),
        None => format!("id:{}", t.topic_id),
    };
    let keys: Vec<String> = all.iter().map(key).collect();
    let (_, duplicates) = once_and_duplicates(keys.iter().map(String::as_str));
    let cluster = s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Delete);
    let mut errors: Vec<DeletableTopicResult> = Vec::new();
    let mut reported: HashSet<String> = HashSet::new();
    for t in all {
        let k = key(&t);
        if duplicates.contains(&k) {
            if reported.insert(k) {
                let message = if t.name.is_some() {
                    "Duplicate topic name."
                } else {
                    "Duplicate topic id."
                };
                errors.push(
                    DeletableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_topic_id(t.topic_id)
                        .with_error_code(INVALID_REQUEST)
                        .with_error_message(text(message)),
                );
            }
            continue;
        }
        let name = match &t.name {
            Some(n) => n.to_string(),
            None => match s.topic_name(t.topic_id) {
                Some(n) => n,
                None => {
                    errors.push(
                        DeletableTopicResult::default()
                            .with_name(None)
                            .with_topic_id(t.topic_id)
                            .with_error_code(UNKNOWN_TOPIC_ID)
                            .with_error_message(text("This server does not host this topic ID.")),
                    );
                    continue;
                }
            },
        };
        let describable = cluster || s.allow(api, ResourceType::Topic, &name, Operation::Describe);
        let deletable = cluster || s.allow(api, ResourceType::Topic, &name, Operation::Delete);
        if describable && deletable {
            req.topics.push(t);
        } else {
            // By id, the name is told only to whoever may describe the topic.
            let shown = (t.name.is_some() || describable).then(|| topic_name(&name));
            errors.push(
                DeletableTopicResult::default()
                    .with_name(shown)
                    .with_topic_id(t.topic_id)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(text(TOPIC_AUTHORIZATION_MESSAGE)),
            );
        }
    }
    if errors.is_empty() {
        return Ok(Outcome::forward());
    }
    let nothing_left = req.topics.is_empty();
    Ok(
        inc.forward_with::<_, DeleteTopicsResponse, _>(&req, true, nothing_left, move |r| {
            if r.responses
                .iter()
                .any(|t| t.error_code == TOPIC_DELETION_DISABLED)
            {
                // Kafka refuses the whole request before any check: the refusal for everyone.
                for e in &mut errors {
                    e.error_code = TOPIC_DELETION_DISABLED;
                    e.error_message = text("Topic deletion is disabled.");
                }
            }
            r.responses.extend(errors);
        }),
    )
}
