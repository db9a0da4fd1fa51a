//! Consumer-group APIs: membership, offsets, coordinators, describing and listing groups.

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{Operation, ResourceType};

use super::codes::{
    GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{
    check_each_topic, describe_each_group, partition_by, typed_fixup, AuthzError, Incoming,
    Outcome, Session, CLUSTER,
};

/// JoinGroup, Heartbeat, LeaveGroup, SyncGroup: READ on the group, or the whole request
/// fails with 30.
pub fn membership(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let group = match inc.api {
        ApiKey::JoinGroup => inc.decode::<JoinGroupRequest>()?.group_id.to_string(),
        ApiKey::Heartbeat => inc.decode::<HeartbeatRequest>()?.group_id.to_string(),
        ApiKey::LeaveGroup => inc.decode::<LeaveGroupRequest>()?.group_id.to_string(),
        _ => inc.decode::<SyncGroupRequest>()?.group_id.to_string(),
    };
    if s.allow(inc.api, ResourceType::Group, &group, Operation::Read) {
        return Ok(Outcome::forward());
    }
    let code = GROUP_AUTHORIZATION_FAILED;
    Ok(match inc.api {
        ApiKey::JoinGroup => inc.respond(
            &JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1)
                // Not nullable before v7: Kafka sends an empty name.
                .with_protocol_name(Some(StrBytes::from_static_str(""))),
        ),
        ApiKey::Heartbeat => inc.respond(&HeartbeatResponse::default().with_error_code(code)),
        ApiKey::LeaveGroup => inc.respond(&LeaveGroupResponse::default().with_error_code(code)),
        _ => inc.respond(&SyncGroupResponse::default().with_error_code(code)),
    })
}

/// OffsetCommit: READ on the group (else every partition gets 30), then READ per topic
/// (denied partitions get 29).
pub fn offset_commit(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: OffsetCommitRequest = inc.decode()?;
    let errors_for =
        |topics: &[kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic],
         code: i16| {
            topics
                .iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect::<Vec<_>>()
        };
    if !s.allow(
        ApiKey::OffsetCommit,
        ResourceType::Group,
        &req.group_id,
        Operation::Read,
    ) {
        let resp = OffsetCommitResponse::default()
            .with_topics(errors_for(&req.topics, GROUP_AUTHORIZATION_FAILED));
        return Ok(inc.respond(&resp));
    }
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.name.to_string(),
        |n| {
            s.allow(
                ApiKey::OffsetCommit,
                ResourceType::Topic,
                n,
                Operation::Read,
            )
        },
        errors_for,
        |r: &mut OffsetCommitResponse| &mut r.topics,
    ))
}

/// OffsetFetch: DESCRIBE on each group (else 30 for that group), then DESCRIBE per topic:
/// named topics get 29 per partition with offset -1; "all partitions" silently drops the
/// topics the principal may not describe.
pub fn offset_fetch(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: OffsetFetchRequest = inc.decode()?;
    let version = inc.version;
    if version >= 8 {
        return offset_fetch_batched(s, inc, req);
    }
    if !s.allow(
        ApiKey::OffsetFetch,
        ResourceType::Group,
        &req.group_id,
        Operation::Describe,
    ) {
        let mut resp = OffsetFetchResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED);
        if let Some(topics) = &req.topics {
            resp.topics = topics
                .iter()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| unauthorized_partition_v7(*p, GROUP_AUTHORIZATION_FAILED))
                                .collect(),
                        )
                })
                .collect();
        }
        return Ok(inc.respond(&resp));
    }
    let session = s.clone();
    let Some(topics) = req.topics.take() else {
        return Ok(Outcome::Forward {
            request: None,
            fixup: Some(typed_fixup::<OffsetFetchResponse, _>(version, move |r| {
                r.topics.retain(|t| {
                    session.allow_quietly(ResourceType::Topic, &t.name, Operation::Describe)
                });
            })),
        });
    };
    let (allowed, denied) = partition_by(
        topics,
        |t| t.name.to_string(),
        |n| {
            s.allow(
                ApiKey::OffsetFetch,
                ResourceType::Topic,
                n,
                Operation::Describe,
            )
        },
    );
    if denied.is_empty() {
        return Ok(Outcome::forward());
    }
    let nothing_left = allowed.is_empty();
    req.topics = Some(allowed);
    let errors: Vec<OffsetFetchResponseTopic> = denied
        .iter()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| unauthorized_partition_v7(*p, TOPIC_AUTHORIZATION_FAILED))
                        .collect(),
                )
        })
        .collect();
    Ok(
        inc.forward_with::<_, OffsetFetchResponse, _>(&req, true, nothing_left, move |r| {
            r.topics.extend(errors)
        }),
    )
}

fn unauthorized_partition_v7(partition: i32, code: i16) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(partition)
        .with_committed_offset(-1)
        .with_committed_leader_epoch(-1)
        .with_metadata(Some(StrBytes::from_static_str("")))
        .with_error_code(code)
}

fn offset_fetch_batched(
    s: &Session,
    inc: &Incoming,
    mut req: OffsetFetchRequest,
) -> Result<Outcome, AuthzError> {
    let groups = std::mem::take(&mut req.groups);
    let (mut allowed, denied) = partition_by(
        groups,
        |g| g.group_id.to_string(),
        |n| {
            s.allow(
                ApiKey::OffsetFetch,
                ResourceType::Group,
                n,
                Operation::Describe,
            )
        },
    );
    let mut denied_groups: Vec<OffsetFetchResponseGroup> = denied
        .iter()
        .map(|g| {
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(GROUP_AUTHORIZATION_FAILED)
        })
        .collect();
    // Per group: named topics the principal may not describe get 29; "all" is filtered.
    let mut topic_errors: Vec<(String, Vec<OffsetFetchResponseTopics>)> = Vec::new();
    let mut changed = !denied_groups.is_empty();
    for g in &mut allowed {
        if let Some(topics) = g.topics.take() {
            let (ok, no) = partition_by(
                topics,
                |t| t.name.to_string(),
                |n| {
                    s.allow(
                        ApiKey::OffsetFetch,
                        ResourceType::Topic,
                        n,
                        Operation::Describe,
                    )
                },
            );
            if !no.is_empty() {
                changed = true;
                topic_errors.push((
                    g.group_id.to_string(),
                    no.iter()
                        .map(|t| {
                            OffsetFetchResponseTopics::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|p| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(*p)
                                                .with_committed_offset(-1)
                                                .with_committed_leader_epoch(-1)
                                                .with_metadata(Some(StrBytes::from_static_str("")))
                                                .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ));
            }
            g.topics = Some(ok);
        }
    }
    let all_topic_groups: Vec<String> = allowed
        .iter()
        .filter(|g| g.topics.is_none())
        .map(|g| g.group_id.to_string())
        .collect();
    let nothing_left = allowed.is_empty();
    req.groups = allowed;
    let session = s.clone();
    let filter_any = !all_topic_groups.is_empty();
    let fixup = move |r: &mut OffsetFetchResponse| {
        for g in &mut r.groups {
            if all_topic_groups
                .iter()
                .any(|id| id.as_str() == &**g.group_id)
            {
                g.topics.retain(|t| {
                    session.allow_quietly(ResourceType::Topic, &t.name, Operation::Describe)
                });
            }
            if let Some((_, errs)) = topic_errors
                .iter_mut()
                .find(|(id, _)| id.as_str() == &**g.group_id)
            {
                g.topics.append(errs);
            }
        }
        r.groups.append(&mut denied_groups);
    };
    if !changed && !filter_any {
        return Ok(Outcome::forward());
    }
    Ok(inc.forward_with::<_, OffsetFetchResponse, _>(&req, changed, nothing_left, fixup))
}

/// FindCoordinator: DESCRIBE on the group (key type 0) or transactional id (key type 1).
/// The share coordinator (key type 2) is broker-internal.
pub fn find_coordinator(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: FindCoordinatorRequest = inc.decode()?;
    let (resource_type, code) = match req.key_type {
        0 => (ResourceType::Group, GROUP_AUTHORIZATION_FAILED),
        1 => (
            ResourceType::TransactionalId,
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ),
        other => {
            return Ok(Outcome::Close(format!(
                "FindCoordinator for key type {other}"
            )))
        }
    };
    if inc.version < 4 {
        if s.allow(
            ApiKey::FindCoordinator,
            resource_type,
            &req.key,
            Operation::Describe,
        ) {
            return Ok(Outcome::forward());
        }
        return Ok(inc.respond(
            &FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_static_str(
                    if code == GROUP_AUTHORIZATION_FAILED {
                        "Group authorization failed."
                    } else {
                        "Transactional Id authorization failed."
                    },
                )))
                .with_node_id(BrokerId(-1))
                .with_port(-1),
        ));
    }
    let keys = std::mem::take(&mut req.coordinator_keys);
    let (allowed, denied) = partition_by(
        keys,
        |k| k.to_string(),
        |n| {
            s.allow(
                ApiKey::FindCoordinator,
                resource_type,
                n,
                Operation::Describe,
            )
        },
    );
    if denied.is_empty() {
        return Ok(Outcome::forward());
    }
    let nothing_left = allowed.is_empty();
    req.coordinator_keys = allowed;
    let errors: Vec<Coordinator> = denied
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(code)
        })
        .collect();
    Ok(
        inc.forward_with::<_, FindCoordinatorResponse, _>(&req, true, nothing_left, move |r| {
            r.coordinators.extend(errors)
        }),
    )
}

/// DescribeGroups: DESCRIBE per group (else 30 for that group), with the group's
/// authorized-operations mask when asked.
pub fn describe_groups(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: DescribeGroupsRequest = inc.decode()?;
    let want_ops = req.include_authorized_operations;
    Ok(describe_each_group::<_, DescribeGroupsResponse, _>(
        s,
        inc,
        req,
        |r| &mut r.groups,
        |g| {
            DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(GROUP_AUTHORIZATION_FAILED)
        },
        |r| &mut r.groups,
        want_ops,
        move |session, groups| {
            if want_ops {
                for g in groups.iter_mut().filter(|g| g.error_code == 0) {
                    g.authorized_operations =
                        session.operations_mask(ResourceType::Group, &g.group_id);
                }
            }
        },
    ))
}

/// ListGroups: never errors. DESCRIBE on the cluster shows every group; otherwise each group
/// is shown only if the principal may describe it.
pub fn list_groups(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    if s.allow_quietly(ResourceType::Cluster, CLUSTER, Operation::Describe) {
        return Ok(Outcome::forward());
    }
    let session = s.clone();
    Ok(Outcome::Forward {
        request: None,
        fixup: Some(typed_fixup::<ListGroupsResponse, _>(
            inc.version,
            move |r| {
                r.groups.retain(|g| {
                    session.allow_quietly(ResourceType::Group, &g.group_id, Operation::Describe)
                });
            },
        )),
    })
}
