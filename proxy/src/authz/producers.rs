//! Producer and transaction inspection: DescribeProducers, DescribeTransactions and
//! ListTransactions (reference §1.1).
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask and answers a denial
//! with the response Kafka builds for it (see [`super::answers`] for the shared texts). When
//! some resources of a request are denied, the allowed ones are forwarded and the denials merged
//! into the broker's answer, in the order Kafka puts them.

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsResponse,
};

use kgate_policies::{Operation, ResourceType};

#[allow(unused_imports)]
use super::answers::*;
use super::codes::{
    INVALID_TOPIC, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::AuthzError;
use super::{typed_fixup, Incoming, Outcome, Session};

// === producers and transactions ===

/// Kafka's `Topic.validate` message for an invalid topic name, if it is one.
pub(crate) fn invalid_topic_name(name: &str) -> Option<String> {
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
pub fn describe_producers(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn describe_transactions(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
pub fn list_transactions(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
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
