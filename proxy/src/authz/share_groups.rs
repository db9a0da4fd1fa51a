//! KIP-932 share groups: ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch,
//! ShareAcknowledge and the share-group offset administration APIs.
//!
//! The checks are Kafka's (reference §1.1, keys 76–79 and 90–92): READ on the group for the
//! member APIs, DESCRIBE for describing, DELETE for deleting offsets, and READ (DESCRIBE when
//! only offsets are described) on every topic.
//!
//! ShareFetch needs more than a per-request check. A share session on the broker caches the
//! partitions a member fetches (as a KIP-227 fetch session does), and the broker authorizes
//! every cached partition on every fetch. kgate turns fetch sessions off, but a share session
//! cannot be turned off: the member's epochs and acknowledgements live in it. So kgate keeps,
//! per connection, the partitions of each share session opened through it, authorizes them
//! on every ShareFetch, and when READ on a cached topic has been revoked it asks the broker to
//! forget that topic's partitions (adding them to `forgotten_topics_data`) and answers them
//! TOPIC_AUTHORIZATION_FAILED, as Kafka would. A session kgate has not seen opened on this
//! connection is answered SHARE_SESSION_NOT_FOUND, so that the member opens a new one whose
//! partitions kgate then knows. Requests are always forwarded once the group is allowed: the
//! broker's session epoch must advance with the member's. Because the broker keys a session
//! by group and member id, not by connection, every ShareFetch answer is checked as well:
//! records of a topic the caller may not READ are withheld and answered 29.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartition, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_request::ForgottenTopic;
use kafka_protocol::messages::share_fetch_response::{
    PartitionData as FetchPartition, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::share_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, ApiKey,
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, ShareAcknowledgeRequest,
    ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest,
    ShareGroupDescribeResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{Operation, ResourceType};
use uuid::Uuid;

use super::codes::{
    GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_SERVER_ERROR, UNKNOWN_TOPIC_ID,
};
use super::consumer_groups::{assigns_hidden_topics, DESCRIBED_TOPICS_DENIED};
use super::{
    check_each_topic, describe_each_group, partition_by, AuthzError, Incoming, Outcome, Session,
};

/// SHARE_SESSION_NOT_FOUND: the member opens a new share session (epoch 0).
pub const SHARE_SESSION_NOT_FOUND: i16 = 122;

/// How many share sessions kgate tracks per connection; past it the oldest is dropped (its
/// member is then told SHARE_SESSION_NOT_FOUND and opens a new one). A Java share consumer
/// opens one per broker connection.
const MAX_SESSIONS: usize = 64;

/// The partitions of one share session, by topic id.
type Cached = BTreeMap<Uuid, BTreeSet<i32>>;

/// The share sessions opened through one client connection, keyed by (group, member id).
#[derive(Debug, Clone, Default)]
pub struct ShareSessions {
    inner: Arc<Mutex<ShareSessionsInner>>,
}

#[derive(Debug, Default)]
struct ShareSessionsInner {
    sessions: HashMap<(String, String), Cached>,
    /// Keys in the order sessions were opened, for eviction.
    order: Vec<(String, String)>,
}

impl ShareSessions {
    fn with<T>(&self, f: impl FnOnce(&mut ShareSessionsInner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How many sessions are tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.with(|i| i.sessions.len())
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ShareSessionsInner {
    fn store(&mut self, key: (String, String), cached: Cached) {
        if !self.sessions.contains_key(&key) {
            if self.sessions.len() >= MAX_SESSIONS && !self.order.is_empty() {
                let oldest = self.order.remove(0);
                self.sessions.remove(&oldest);
            }
            self.order.push(key.clone());
        }
        self.sessions.insert(key, cached);
    }

    fn remove(&mut self, key: &(String, String)) -> Option<Cached> {
        self.order.retain(|k| k != key);
        self.sessions.remove(key)
    }
}

/// The name of a group that may be null on the wire (Kafka authorizes it as given).
fn group_name(group: &Option<kafka_protocol::messages::GroupId>) -> String {
    group.as_ref().map(|g| g.to_string()).unwrap_or_default()
}

/// Names of topic ids, with the ids kgate has not learned set apart.
fn names_of(
    s: &Session,
    ids: impl IntoIterator<Item = Uuid>,
) -> (HashMap<Uuid, String>, Vec<Uuid>) {
    let mut names = HashMap::new();
    let mut unknown = Vec::new();
    for id in ids {
        if names.contains_key(&id) || unknown.contains(&id) {
            continue;
        }
        match s.topic_name(id) {
            Some(n) => {
                names.insert(id, n);
            }
            None => unknown.push(id),
        }
    }
    (names, unknown)
}

/// ShareGroupHeartbeat: READ on the group (else the whole request fails with 30), then
/// DESCRIBE on every subscribed topic (else the whole request fails with 29), as Kafka 4.x
/// checks ConsumerGroupHeartbeat: the broker assigns partitions from the subscription, so a
/// topic the member may not describe must not reach it.
pub fn heartbeat(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: ShareGroupHeartbeatRequest = inc.decode()?;
    let api = ApiKey::ShareGroupHeartbeat;
    let refuse = |code: i16| {
        inc.respond(
            &ShareGroupHeartbeatResponse::default()
                .with_error_code(code)
                .with_member_epoch(0)
                .with_heartbeat_interval_ms(0),
        )
    };
    if !s.allow(api, ResourceType::Group, &req.group_id, Operation::Read) {
        return Ok(refuse(GROUP_AUTHORIZATION_FAILED));
    }
    let mut seen = BTreeSet::new();
    let mut denied = false;
    for topic in req.subscribed_topic_names.iter().flatten() {
        if seen.insert(topic.0.as_str())
            && !s.allow(api, ResourceType::Topic, topic, Operation::Describe)
        {
            denied = true;
        }
    }
    if denied {
        return Ok(refuse(TOPIC_AUTHORIZATION_FAILED));
    }
    Ok(Outcome::forward())
}

/// ShareGroupDescribe: DESCRIBE on each group (30 per group). A described group whose
/// assignments name a topic the caller may not describe gets 29 and no members, as Kafka 4.x
/// answers ConsumerGroupDescribe; the authorized-operations mask is the caller's.
pub fn describe(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: ShareGroupDescribeRequest = inc.decode()?;
    let want_ops = req.include_authorized_operations;
    Ok(describe_each_group::<_, ShareGroupDescribeResponse, _>(
        s,
        inc,
        req,
        |r| &mut r.group_ids,
        |g| {
            DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(GROUP_AUTHORIZATION_FAILED)
        },
        |r| &mut r.groups,
        true,
        move |session, groups| {
            for g in groups.iter_mut().filter(|g| g.error_code == 0) {
                let names = g
                    .members
                    .iter()
                    .flat_map(|m| m.assignment.topic_partitions.iter().map(|t| &t.topic_name));
                if assigns_hidden_topics(session, names) {
                    g.error_code = TOPIC_AUTHORIZATION_FAILED;
                    g.error_message = Some(StrBytes::from_static_str(DESCRIBED_TOPICS_DENIED));
                    g.members.clear();
                } else if want_ops {
                    g.authorized_operations =
                        session.operations_mask(ResourceType::Group, &g.group_id);
                }
            }
        },
    ))
}

/// ShareFetch error entries for some partitions of some topics.
fn fetch_errors(parts: &Cached, code: i16) -> Vec<ShareFetchableTopicResponse> {
    parts
        .iter()
        .map(|(id, ps)| {
            ShareFetchableTopicResponse::default()
                .with_topic_id(*id)
                .with_partitions(
                    ps.iter()
                        .map(|p| {
                            // Its acknowledgements, if any, did not reach the broker either.
                            FetchPartition::default()
                                .with_partition_index(*p)
                                .with_error_code(code)
                                .with_acknowledge_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// ShareFetch: READ on the group (else the whole request fails with 30), then READ on every
/// topic the request names *and* every topic cached in its share session (see the module
/// documentation): a denied topic's partitions get 29, an id kgate has not learned 100.
pub fn fetch(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: ShareFetchRequest = inc.decode()?;
    let api = ApiKey::ShareFetch;
    let group = group_name(&req.group_id);
    if !s.allow(api, ResourceType::Group, &group, Operation::Read) {
        return Ok(
            inc.respond(&ShareFetchResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED))
        );
    }
    let key = (
        group,
        req.member_id
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    );
    let epoch = req.share_session_epoch;
    let Some(mut cached) = s.share_sessions.with(|i| match epoch {
        0 => Some(Cached::new()),
        e if e > 0 => i.sessions.get(&key).cloned(),
        // Closing: nothing is fetched any more, but acknowledgements still name topics.
        _ => Some(i.remove(&key).unwrap_or_default()),
    }) else {
        return Ok(inc.respond(
            &ShareFetchResponse::default()
                .with_error_code(SHARE_SESSION_NOT_FOUND)
                .with_error_message(Some(StrBytes::from_static_str(
                    "kgate has not seen this share session opened on this connection: open a \
                     new one",
                ))),
        ));
    };
    // What the request forgets stays tracked until the session closes: a forget the broker
    // refused (a wrong epoch) would otherwise leave kgate blind to a partition the broker
    // still serves. Forgetting a partition twice is harmless.
    let named = req.topics.iter().map(|t| t.topic_id);
    let (names, unknown) = names_of(s, named.chain(cached.keys().copied()));
    let mut memo: HashMap<Uuid, bool> = HashMap::new();
    let mut allowed = |id: &Uuid| -> bool {
        *memo.entry(*id).or_insert_with(|| {
            names
                .get(id)
                .is_some_and(|n| s.allow(api, ResourceType::Topic, n, Operation::Read))
        })
    };
    // Topics the request names.
    let mut denied = Cached::new();
    let mut unknown_parts = Cached::new();
    let topics = std::mem::take(&mut req.topics);
    for t in topics {
        let parts = t.partitions.iter().map(|p| p.partition_index);
        if unknown.contains(&t.topic_id) {
            unknown_parts.entry(t.topic_id).or_default().extend(parts);
        } else if allowed(&t.topic_id) {
            if epoch >= 0 {
                cached.entry(t.topic_id).or_default().extend(parts);
            }
            req.topics.push(t);
        } else {
            denied.entry(t.topic_id).or_default().extend(parts);
        }
    }
    // Topics cached in the session whose READ was revoked: the broker forgets them (a closing
    // fetch, epoch -1, goes on as sent).
    if epoch >= 0 {
        let revoked: Vec<Uuid> = cached.keys().copied().filter(|id| !allowed(id)).collect();
        for id in revoked {
            if let Some(ps) = cached.remove(&id) {
                req.forgotten_topics_data.push(
                    ForgottenTopic::default()
                        .with_topic_id(id)
                        .with_partitions(ps.iter().copied().collect()),
                );
                denied.entry(id).or_default().extend(ps);
            }
        }
        s.share_sessions.with(|i| i.store(key, cached));
    }
    let changed = !denied.is_empty() || !unknown_parts.is_empty();
    let mut errors = fetch_errors(&denied, TOPIC_AUTHORIZATION_FAILED);
    errors.extend(fetch_errors(&unknown_parts, UNKNOWN_TOPIC_ID));
    // The answer is checked too: the broker's session is keyed by group and member id, not
    // by connection, so another connection may have changed what it holds (a member id is
    // visible to whoever may describe the group). Records of a topic the caller may not read
    // never reach it, whatever the session held.
    let session = s.clone();
    Ok(inc.forward_or::<_, ShareFetchResponse, _, _>(
        &req,
        changed,
        false,
        move |r| {
            withhold_unreadable(&session, &mut r.responses);
            r.responses.extend(errors);
        },
        Some(|| ShareFetchResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)),
    ))
}

/// Replaces the records of every answered topic the caller may not READ (or whose id kgate
/// has not learned) with TOPIC_AUTHORIZATION_FAILED, as Kafka answers a partition of the
/// session it does not authorize; the broker's acknowledgement results stay as they are.
fn withhold_unreadable(s: &Session, topics: &mut [ShareFetchableTopicResponse]) {
    let mut memo: HashMap<Uuid, bool> = HashMap::new();
    for t in topics {
        let readable = *memo.entry(t.topic_id).or_insert_with(|| {
            s.topic_name(t.topic_id).is_some_and(|name| {
                s.allow_quietly(ResourceType::Topic, &name, Operation::Read)
                    // Asked again to write the denial to the audit log.
                    || s.allow(ApiKey::ShareFetch, ResourceType::Topic, &name, Operation::Read)
            })
        });
        if readable {
            continue;
        }
        for p in &mut t.partitions {
            p.error_code = TOPIC_AUTHORIZATION_FAILED;
            p.error_message = None;
            p.records = None;
            p.acquired_records.clear();
        }
    }
}

/// ShareAcknowledge: READ on the group (else 30 for the whole request), then READ on every
/// topic named: a denied topic's partitions get 29, an id kgate has not learned 100. The
/// request is always forwarded (the session epoch advances with it); closing a session
/// (epoch -1) forgets what kgate tracked for it.
pub fn acknowledge(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: ShareAcknowledgeRequest = inc.decode()?;
    let api = ApiKey::ShareAcknowledge;
    let group = group_name(&req.group_id);
    if !s.allow(api, ResourceType::Group, &group, Operation::Read) {
        return Ok(inc.respond(
            &ShareAcknowledgeResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        ));
    }
    if req.share_session_epoch < 0 {
        let member = req
            .member_id
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        s.share_sessions.with(|i| i.remove(&(group, member)));
    }
    let (names, unknown) = names_of(s, req.topics.iter().map(|t| t.topic_id));
    let topics = std::mem::take(&mut req.topics);
    let mut errors: Vec<ShareAcknowledgeTopicResponse> = Vec::new();
    let mut memo: HashMap<Uuid, bool> = HashMap::new();
    for t in topics {
        let code = if unknown.contains(&t.topic_id) {
            UNKNOWN_TOPIC_ID
        } else if *memo.entry(t.topic_id).or_insert_with(|| {
            names
                .get(&t.topic_id)
                .is_some_and(|n| s.allow(api, ResourceType::Topic, n, Operation::Read))
        }) {
            req.topics.push(t);
            continue;
        } else {
            TOPIC_AUTHORIZATION_FAILED
        };
        errors.push(
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AckPartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                ),
        );
    }
    if errors.is_empty() {
        return Ok(Outcome::forward());
    }
    Ok(inc.forward_or::<_, ShareAcknowledgeResponse, _, _>(
        &req,
        true,
        false,
        move |r| r.responses.extend(errors),
        Some(|| ShareAcknowledgeResponse::default().with_error_code(UNKNOWN_SERVER_ERROR)),
    ))
}

/// DescribeShareGroupOffsets: DESCRIBE on each group (30 for that group), then DESCRIBE on
/// each topic named (29 per partition); a group asked for all its topics has the topics the
/// caller may not describe filtered out of the answer, as OffsetFetch's.
pub fn describe_offsets(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: DescribeShareGroupOffsetsRequest = inc.decode()?;
    let api = ApiKey::DescribeShareGroupOffsets;
    let mut changed = false;
    let mut denied_groups: Vec<DescribeShareGroupOffsetsResponseGroup> = Vec::new();
    let mut denied_topics: HashMap<String, Vec<DescribeShareGroupOffsetsResponseTopic>> =
        HashMap::new();
    let mut all_topics: Vec<String> = Vec::new();
    let groups = std::mem::take(&mut req.groups);
    for mut g in groups {
        if !s.allow(api, ResourceType::Group, &g.group_id, Operation::Describe) {
            changed = true;
            denied_groups.push(
                DescribeShareGroupOffsetsResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(GROUP_AUTHORIZATION_FAILED),
            );
            continue;
        }
        match g.topics.take() {
            None => all_topics.push(g.group_id.to_string()),
            Some(topics) => {
                let (allowed, denied) = partition_by(
                    topics,
                    |t| t.topic_name.to_string(),
                    |n| s.allow(api, ResourceType::Topic, n, Operation::Describe),
                );
                if !denied.is_empty() {
                    changed = true;
                    denied_topics.insert(
                        g.group_id.to_string(),
                        denied
                            .into_iter()
                            .map(|t| {
                                DescribeShareGroupOffsetsResponseTopic::default()
                                    .with_topic_name(t.topic_name)
                                    .with_partitions(
                                        t.partitions
                                            .iter()
                                            .map(|p| {
                                                DescribeShareGroupOffsetsResponsePartition::default(
                                                )
                                                .with_partition_index(*p)
                                                .with_start_offset(-1)
                                                .with_leader_epoch(-1)
                                                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                }
                g.topics = Some(allowed);
            }
        }
        req.groups.push(g);
    }
    if !changed && all_topics.is_empty() {
        return Ok(Outcome::forward());
    }
    let nothing_left = req.groups.is_empty();
    let session = s.clone();
    Ok(inc.forward_with::<_, DescribeShareGroupOffsetsResponse, _>(
        &req,
        changed,
        nothing_left,
        move |r| {
            for g in &mut r.groups {
                if all_topics.iter().any(|a| a.as_str() == g.group_id.as_str()) {
                    g.topics.retain(|t| {
                        session.allow_quietly(
                            ResourceType::Topic,
                            &t.topic_name,
                            Operation::Describe,
                        )
                    });
                }
                if let Some(extra) = denied_topics.remove(g.group_id.as_str()) {
                    g.topics.extend(extra);
                }
            }
            r.groups.extend(denied_groups);
        },
    ))
}

/// AlterShareGroupOffsets: READ on the group (else 30 for the whole request), then READ on
/// each topic (29 per partition).
pub fn alter_offsets(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: AlterShareGroupOffsetsRequest = inc.decode()?;
    let api = ApiKey::AlterShareGroupOffsets;
    if !s.allow(api, ResourceType::Group, &req.group_id, Operation::Read) {
        return Ok(inc.respond(
            &AlterShareGroupOffsetsResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        ));
    }
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.topic_name.to_string(),
        |n| s.allow(api, ResourceType::Topic, n, Operation::Read),
        |topics, code| {
            topics
                .iter()
                .map(|t| {
                    AlterShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(t.topic_name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    AlterShareGroupOffsetsResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect()
        },
        |r: &mut AlterShareGroupOffsetsResponse| &mut r.responses,
    ))
}

/// DeleteShareGroupOffsets: DELETE on the group (else 30 for the whole request), then READ on
/// each topic (29 per topic), as OffsetDelete.
pub fn delete_offsets(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: DeleteShareGroupOffsetsRequest = inc.decode()?;
    let api = ApiKey::DeleteShareGroupOffsets;
    if !s.allow(api, ResourceType::Group, &req.group_id, Operation::Delete) {
        return Ok(inc.respond(
            &DeleteShareGroupOffsetsResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        ));
    }
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.topic_name.to_string(),
        |n| s.allow(api, ResourceType::Topic, n, Operation::Read),
        |topics, code| {
            topics
                .iter()
                .map(|t| {
                    DeleteShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(t.topic_name.clone())
                        .with_error_code(code)
                })
                .collect()
        },
        |r: &mut DeleteShareGroupOffsetsResponse| &mut r.responses,
    ))
}
