//! KIP-848 consumer groups: ConsumerGroupHeartbeat and ConsumerGroupDescribe.
//!
//! The broker assigns partitions to the members of a KIP-848 group itself, by topic id, from
//! the topics each member subscribes to. Kafka 4.x therefore checks, besides READ on the
//! group, DESCRIBE on every topic a member subscribes to (reference §1.1, key 68). A regex
//! subscription (ConsumerGroupHeartbeat v1) is resolved by the broker with the principal of
//! the connection: behind kgate that is kgate's, not the member's, so a regex could assign a
//! member topics it may not read (KAFKA-18813). kgate refuses regex subscriptions instead.

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{Operation, ResourceType};

use super::codes::{GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST, TOPIC_AUTHORIZATION_FAILED};
use super::{describe_each_group, AuthzError, Incoming, Outcome, Session};

/// What a member subscribing by regex is told.
pub const REGEX_REFUSED: &str = "kgate does not serve regex subscriptions: the broker would \
     resolve the regex with the gateway's identity, not the member's (KAFKA-18813); subscribe \
     to topic names";

/// Kafka 4.x's message for a described group whose assignments name a topic the caller may
/// not describe.
pub const DESCRIBED_TOPICS_DENIED: &str =
    "The group has described topic(s) that the client is not authorized to describe.";

/// ConsumerGroupHeartbeat: a regex subscription is refused (42); READ on the group, else the
/// whole request fails with 30; DESCRIBE on every subscribed topic, else the whole request
/// fails with 29 (Kafka 4.0+). The assignment in the answer passes through as bytes.
pub fn heartbeat(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: ConsumerGroupHeartbeatRequest = inc.decode()?;
    let refuse = |code: i16, message: Option<&'static str>| {
        inc.respond(
            &ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_static_str))
                .with_member_epoch(0)
                .with_heartbeat_interval_ms(0),
        )
    };
    if req
        .subscribed_topic_regex
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        return Ok(refuse(INVALID_REQUEST, Some(REGEX_REFUSED)));
    }
    let api = ApiKey::ConsumerGroupHeartbeat;
    if !s.allow(api, ResourceType::Group, &req.group_id, Operation::Read) {
        return Ok(refuse(GROUP_AUTHORIZATION_FAILED, None));
    }
    let mut denied = false;
    let mut seen = std::collections::HashSet::new();
    for topic in req.subscribed_topic_names.iter().flatten() {
        if seen.insert(topic.0.as_str())
            && !s.allow(api, ResourceType::Topic, topic, Operation::Describe)
        {
            denied = true;
        }
    }
    if denied {
        return Ok(refuse(TOPIC_AUTHORIZATION_FAILED, None));
    }
    Ok(Outcome::forward())
}

/// ConsumerGroupDescribe: DESCRIBE on each group (30 per group). A described group whose
/// current or target assignments name a topic the caller may not describe gets 29 with
/// Kafka's message and no members (Kafka 4.x); the authorized-operations mask is the caller's.
pub fn describe(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: ConsumerGroupDescribeRequest = inc.decode()?;
    let want_ops = req.include_authorized_operations;
    Ok(describe_each_group::<_, ConsumerGroupDescribeResponse, _>(
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
                let names = g.members.iter().flat_map(|m| {
                    m.assignment
                        .topic_partitions
                        .iter()
                        .chain(&m.target_assignment.topic_partitions)
                        .map(|t| &t.topic_name)
                });
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

/// Whether a described group's assignments name a topic the caller may not describe (Kafka
/// 4.x then answers the group 29 with no members).
pub(super) fn assigns_hidden_topics<'a>(
    session: &Session,
    mut names: impl Iterator<Item = &'a kafka_protocol::messages::TopicName>,
) -> bool {
    names.any(|t| !session.allow_quietly(ResourceType::Topic, t, Operation::Describe))
}
