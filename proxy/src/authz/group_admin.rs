//! Consumer-group administration: DeleteGroups and OffsetDelete (reference §1.1).
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask and answers a denial
//! with the response Kafka builds for it (see [`super::answers`] for the shared texts). When
//! some resources of a request are denied, the allowed ones are forwarded and the denials merged
//! into the broker's answer, in the order Kafka puts them.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{Operation, ResourceType};

#[allow(unused_imports)]
use super::answers::*;
use super::codes::{GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED};
use super::AuthzError;
use super::{partition_by, Incoming, Outcome, Session};

// === groups ===

/// DeleteGroups: DELETE per distinct group; denied groups get 30 after the coordinator's
/// results.
pub fn delete_groups(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn offset_delete(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
