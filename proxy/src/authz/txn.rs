//! InitProducerId and the transaction APIs.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kgate_policies::{Operation, ResourceType};

use super::codes::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, OPERATION_NOT_ATTEMPTED,
    TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{check_each_topic, AuthzError, Incoming, Outcome, Session, CLUSTER, INTERNAL_TOPICS};

/// InitProducerId: WRITE on the transactional id; without one (idempotent producer),
/// IDEMPOTENT_WRITE on the cluster or WRITE on any topic (KIP-679).
pub fn init_producer_id(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: InitProducerIdRequest = inc.decode()?;
    let denied = match &req.transactional_id {
        Some(tid) => (!s.allow(
            ApiKey::InitProducerId,
            ResourceType::TransactionalId,
            tid,
            Operation::Write,
        ))
        .then_some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        None => {
            let ok = s.allow_unlogged_deny(
                ApiKey::InitProducerId,
                ResourceType::Cluster,
                CLUSTER,
                Operation::IdempotentWrite,
            ) || s.allow_by_type(
                ApiKey::InitProducerId,
                ResourceType::Topic,
                Operation::Write,
            );
            (!ok).then_some(CLUSTER_AUTHORIZATION_FAILED)
        }
    };
    Ok(match denied {
        None => Outcome::forward(),
        Some(code) => inc.respond(
            &InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
    })
}

/// AddPartitionsToTxn v0–3: WRITE on the transactional id (else every partition 53), then
/// WRITE per topic; internal topics are always refused. If any partition is refused, the
/// refused ones get 29 and the others 55, and nothing is added.
pub fn add_partitions_to_txn(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: AddPartitionsToTxnRequest = inc.decode()?;
    if inc.version >= 4 {
        return Ok(Outcome::Close(
            "AddPartitionsToTxn v4+ is broker-to-broker".into(),
        ));
    }
    let topics = &req.v3_and_below_topics;
    let tid = req.v3_and_below_transactional_id.to_string();
    let result = |code_for: &dyn Fn(&str) -> i16| -> Vec<AddPartitionsToTxnTopicResult> {
        topics
            .iter()
            .map(|t| {
                let code = code_for(&t.name);
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(*p)
                                    .with_partition_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect()
    };
    if !s.allow(
        ApiKey::AddPartitionsToTxn,
        ResourceType::TransactionalId,
        &tid,
        Operation::Write,
    ) {
        let resp = AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(result(&|_| TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
        return Ok(inc.respond(&resp));
    }
    let mut memo = std::collections::HashMap::new();
    let mut any_denied = false;
    for t in topics {
        let name = t.name.to_string();
        let ok = !INTERNAL_TOPICS.contains(&name.as_str())
            && s.allow(
                ApiKey::AddPartitionsToTxn,
                ResourceType::Topic,
                &name,
                Operation::Write,
            );
        any_denied |= !ok;
        memo.insert(name, ok);
    }
    if !any_denied {
        return Ok(Outcome::forward());
    }
    let resp =
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(result(&|name| {
            if memo.get(name).copied().unwrap_or(false) {
                OPERATION_NOT_ATTEMPTED
            } else {
                TOPIC_AUTHORIZATION_FAILED
            }
        }));
    Ok(inc.respond(&resp))
}

/// AddOffsetsToTxn: WRITE on the transactional id (53), then READ on the group (30).
pub fn add_offsets_to_txn(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: AddOffsetsToTxnRequest = inc.decode()?;
    let code = if !s.allow(
        ApiKey::AddOffsetsToTxn,
        ResourceType::TransactionalId,
        &req.transactional_id,
        Operation::Write,
    ) {
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if !s.allow(
        ApiKey::AddOffsetsToTxn,
        ResourceType::Group,
        &req.group_id,
        Operation::Read,
    ) {
        GROUP_AUTHORIZATION_FAILED
    } else {
        return Ok(Outcome::forward());
    };
    Ok(inc.respond(&AddOffsetsToTxnResponse::default().with_error_code(code)))
}

/// EndTxn: WRITE on the transactional id (53).
pub fn end_txn(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: EndTxnRequest = inc.decode()?;
    if s.allow(
        ApiKey::EndTxn,
        ResourceType::TransactionalId,
        &req.transactional_id,
        Operation::Write,
    ) {
        return Ok(Outcome::forward());
    }
    Ok(inc.respond(
        &EndTxnResponse::default()
            .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    ))
}

/// TxnOffsetCommit: WRITE on the transactional id (53 for every partition), READ on the
/// group (30 for every partition), then READ per topic (29 per partition).
pub fn txn_offset_commit(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: TxnOffsetCommitRequest = inc.decode()?;
    let errors_for = |topics: &[kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic], code: i16| {
        topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
            })
            .collect::<Vec<_>>()
    };
    let whole = if !s.allow(
        ApiKey::TxnOffsetCommit,
        ResourceType::TransactionalId,
        &req.transactional_id,
        Operation::Write,
    ) {
        Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if !s.allow(
        ApiKey::TxnOffsetCommit,
        ResourceType::Group,
        &req.group_id,
        Operation::Read,
    ) {
        Some(GROUP_AUTHORIZATION_FAILED)
    } else {
        None
    };
    if let Some(code) = whole {
        return Ok(inc.respond(
            &TxnOffsetCommitResponse::default().with_topics(errors_for(&req.topics, code)),
        ));
    }
    Ok(check_each_topic(
        inc,
        req,
        |r| &mut r.topics,
        |t| t.name.to_string(),
        |n| {
            s.allow(
                ApiKey::TxnOffsetCommit,
                ResourceType::Topic,
                n,
                Operation::Read,
            )
        },
        errors_for,
        |r: &mut TxnOffsetCommitResponse| &mut r.topics,
    ))
}
