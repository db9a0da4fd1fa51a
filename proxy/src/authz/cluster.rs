//! Cluster-level administration: DescribeLogDirs, ElectLeaders, partition reassignments and
//! client quotas, all checked on the cluster resource (reference §1.1).
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask and answers a denial
//! with the response Kafka builds for it (see [`super::answers`] for the shared texts). When
//! some resources of a request are denied, the allowed ones are forwarded and the denials merged
//! into the broker's answer, in the order Kafka puts them.

use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, ApiKey, DescribeClientQuotasResponse,
    DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use kgate_policies::{Operation, ResourceType};

#[allow(unused_imports)]
use super::answers::*;
use super::codes::CLUSTER_AUTHORIZATION_FAILED;
use super::AuthzError;
use super::{Incoming, Outcome, Session, CLUSTER};

// === cluster-level administration ===

/// DescribeLogDirs: DESCRIBE on the cluster; otherwise no results, with CLUSTER_AUTHORIZATION_
/// FAILED at the top from v3 on (v0–2 have no error field: just an empty answer).
pub fn describe_log_dirs(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn elect_leaders(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn alter_partition_reassignments(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn list_partition_reassignments(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn describe_client_quotas(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn alter_client_quotas(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
