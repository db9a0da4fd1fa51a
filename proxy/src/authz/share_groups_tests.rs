//! Tests of the share-group APIs (KIP-932) and ListConfigResources: each one denied without
//! the ACL it needs, with Kafka's code, and forwarded untouched with the minimal ACLs; share
//! sessions re-authorized on every ShareFetch.

use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequestGroup, DescribeShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic};
use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::share_fetch_response::{self, ShareFetchableTopicResponse};
use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, ApiKey,
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId,
    ListConfigResourcesRequest, ListConfigResourcesResponse, ShareAcknowledgeRequest,
    ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest,
    ShareGroupDescribeResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{AuthorizerOptions, Operation, ResourceType};
use uuid::Uuid;

use super::codes::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED,
    UNKNOWN_TOPIC_ID,
};
use super::share_groups::SHARE_SESSION_NOT_FOUND;
use super::test_support::*;
use super::{Outcome, Session, CLUSTER};

const ORDERS: Uuid = Uuid::from_u128(0x0e);
const PAYMENTS: Uuid = Uuid::from_u128(0x9a);

fn group(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_owned()))
}

/// alice with these ACLs, knowing the ids of `orders` and `payments`, sharing `like`'s share
/// sessions (the same connection after a policy change) when given.
fn alice_knowing(acls: Vec<kgate_policies::AclBinding>, like: Option<&Session>) -> Session {
    let mut s = alice(acls);
    if let Some(authz) = &s.authz {
        authz.topic_ids.learn(ORDERS, "orders");
        authz.topic_ids.learn(PAYMENTS, "payments");
    }
    if let Some(other) = like {
        s.share_sessions = other.share_sessions.clone();
    }
    s
}

fn read_group() -> kgate_policies::AclBinding {
    acl("User:alice", Operation::Read, ResourceType::Group, "g")
}

fn topic_acl(op: Operation, topic: &str) -> kgate_policies::AclBinding {
    acl("User:alice", op, ResourceType::Topic, topic)
}

#[test]
fn share_group_heartbeat_needs_read_on_the_group_and_describe_on_subscribed_topics() {
    let req = ShareGroupHeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_member_id(StrBytes::from_static_str("m1"))
        .with_subscribed_topic_names(Some(vec![tn("orders"), tn("orders")]));
    let api = ApiKey::ShareGroupHeartbeat;
    let r: ShareGroupHeartbeatResponse = answered(run(&alice(vec![]), api, 1, &req), api, 1);
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
    let r: ShareGroupHeartbeatResponse =
        answered(run(&alice(vec![read_group()]), api, 1, &req), api, 1);
    assert_eq!(r.error_code, TOPIC_AUTHORIZATION_FAILED);
    let minimal = alice(vec![read_group(), topic_acl(Operation::Describe, "orders")]);
    assert_untouched(run(&minimal, api, 1, &req));
}

#[test]
fn share_group_describe_per_group_and_hides_groups_assigned_undescribable_topics() {
    let api = ApiKey::ShareGroupDescribe;
    let req = ShareGroupDescribeRequest::default()
        .with_group_ids(vec![group("g")])
        .with_include_authorized_operations(true);
    let r: ShareGroupDescribeResponse = answered(run(&alice(vec![]), api, 1, &req), api, 1);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].error_code, GROUP_AUTHORIZATION_FAILED);

    let s = alice(vec![
        acl("User:alice", Operation::Describe, ResourceType::Group, "g"),
        topic_acl(Operation::Describe, "orders"),
    ]);
    let (request, fixup) = forwarded::<ShareGroupDescribeRequest>(run(&s, api, 1, &req), api, 1);
    assert!(request.is_none(), "nothing trimmed");
    let member = |topic: &str| {
        Member::default().with_assignment(Assignment::default().with_topic_partitions(vec![
            TopicPartitions::default()
                .with_topic_name(tn(topic))
                .with_partitions(vec![0]),
        ]))
    };
    let upstream =
        ShareGroupDescribeResponse::default().with_groups(vec![DescribedGroup::default()
            .with_group_id(group("g"))
            .with_members(vec![member("orders")])]);
    let r = fixed(fixup.expect("fixup"), 1, &upstream);
    assert_eq!(r.groups[0].error_code, 0);
    assert_ne!(r.groups[0].authorized_operations, 0, "the caller's mask");

    let (_, fixup) = forwarded::<ShareGroupDescribeRequest>(run(&s, api, 1, &req), api, 1);
    let upstream =
        ShareGroupDescribeResponse::default().with_groups(vec![DescribedGroup::default()
            .with_group_id(group("g"))
            .with_members(vec![member("orders"), member("payments")])]);
    let r = fixed(fixup.expect("fixup"), 1, &upstream);
    assert_eq!(r.groups[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert!(r.groups[0].members.is_empty(), "no member shown");
}

fn fetch(member: &str, epoch: i32, topics: &[(Uuid, &[i32])]) -> ShareFetchRequest {
    ShareFetchRequest::default()
        .with_group_id(Some(group("g")))
        .with_member_id(Some(StrBytes::from_string(member.to_owned())))
        .with_share_session_epoch(epoch)
        .with_topics(
            topics
                .iter()
                .map(|(id, parts)| {
                    FetchTopic::default().with_topic_id(*id).with_partitions(
                        parts
                            .iter()
                            .map(|p| FetchPartition::default().with_partition_index(*p))
                            .collect(),
                    )
                })
                .collect(),
        )
}

/// (topic id, partition, error code) of every partition of a ShareFetch answer.
fn fetch_codes(r: &ShareFetchResponse) -> Vec<(Uuid, i32, i16)> {
    let mut v: Vec<_> = r
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_id, p.partition_index, p.error_code))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn share_fetch_needs_read_on_the_group_and_on_each_topic() {
    let api = ApiKey::ShareFetch;
    let req = fetch("m1", 0, &[(ORDERS, &[0, 1])]);
    let r: ShareFetchResponse = answered(run(&alice_knowing(vec![], None), api, 1, &req), api, 1);
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);

    // Group allowed, topic not: forwarded without it (the epoch must advance), 29 merged.
    let s = alice_knowing(vec![read_group()], None);
    let (request, fixup) = forwarded::<ShareFetchRequest>(run(&s, api, 1, &req), api, 1);
    let request = request.expect("trimmed");
    assert!(request.topics.is_empty());
    assert_eq!(request.share_session_epoch, 0);
    let r = fixed(fixup.expect("fixup"), 1, &ShareFetchResponse::default());
    assert_eq!(
        fetch_codes(&r),
        vec![
            (ORDERS, 0, TOPIC_AUTHORIZATION_FAILED),
            (ORDERS, 1, TOPIC_AUTHORIZATION_FAILED)
        ]
    );

    // An id kgate has not learned is never forwarded.
    let unknown = Uuid::from_u128(0xdead);
    let s = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "orders")],
        None,
    );
    let req = fetch("m1", 0, &[(ORDERS, &[0]), (unknown, &[3])]);
    let (request, fixup) = forwarded::<ShareFetchRequest>(run(&s, api, 1, &req), api, 1);
    let request = request.expect("trimmed");
    assert_eq!(request.topics.len(), 1);
    assert_eq!(request.topics[0].topic_id, ORDERS);
    let r = fixed(fixup.expect("fixup"), 1, &ShareFetchResponse::default());
    assert_eq!(fetch_codes(&r), vec![(unknown, 3, UNKNOWN_TOPIC_ID)]);

    // The minimal ACLs: the request goes on as sent; the answer passes the same check.
    let s = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "orders")],
        None,
    );
    let req = fetch("m1", 0, &[(ORDERS, &[0, 1])]);
    let (request, fixup) = forwarded::<ShareFetchRequest>(run(&s, api, 1, &req), api, 1);
    assert!(request.is_none(), "forwarded as sent");
    let r = fixed(fixup.expect("answer check"), 1, &answer(&[(ORDERS, 0)]));
    assert_eq!(fetch_codes(&r), vec![(ORDERS, 0, 0)]);
    assert!(
        r.responses[0].partitions[0].records.is_some(),
        "readable records kept"
    );
    assert_eq!(s.share_sessions.len(), 1, "the session is tracked");
}

/// A broker's ShareFetch answer with records for each (topic, partition).
fn answer(parts: &[(Uuid, i32)]) -> ShareFetchResponse {
    ShareFetchResponse::default().with_responses(
        parts
            .iter()
            .map(|(id, p)| {
                ShareFetchableTopicResponse::default()
                    .with_topic_id(*id)
                    .with_partitions(vec![share_fetch_response::PartitionData::default()
                        .with_partition_index(*p)
                        .with_records(Some(bytes::Bytes::from_static(b"records")))
                        .with_acquired_records(vec![
                            share_fetch_response::AcquiredRecords::default()
                                .with_first_offset(0)
                                .with_last_offset(9),
                        ])])
            })
            .collect(),
    )
}

#[test]
fn records_of_a_topic_the_caller_may_not_read_never_reach_it() {
    // Another connection took over member m1's session (the broker keys sessions by group
    // and member id) and filled it with orders; this caller may read payments only. Its own
    // requests name nothing denied, so the request goes on as sent, but the broker's answer
    // for orders is withheld, as Kafka answers a partition of a session it does not authorize.
    let api = ApiKey::ShareFetch;
    let s = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "payments")],
        None,
    );
    run(&s, api, 1, &fetch("m1", 0, &[(PAYMENTS, &[0])]));
    let (request, fixup) =
        forwarded::<ShareFetchRequest>(run(&s, api, 1, &fetch("m1", 1, &[])), api, 1);
    assert!(request.is_none(), "nothing denied in the request");
    let r = fixed(
        fixup.expect("answer check"),
        1,
        &answer(&[(ORDERS, 0), (PAYMENTS, 0)]),
    );
    assert_eq!(
        fetch_codes(&r),
        vec![(ORDERS, 0, TOPIC_AUTHORIZATION_FAILED), (PAYMENTS, 0, 0)]
    );
    let orders = &r.responses[0].partitions[0];
    assert!(orders.records.is_none() && orders.acquired_records.is_empty());
    assert!(r.responses[1].partitions[0].records.is_some());
    // An id kgate has not learned is withheld too.
    let unknown = Uuid::from_u128(0xbeef);
    let (_, fixup) = forwarded::<ShareFetchRequest>(run(&s, api, 1, &fetch("m1", 2, &[])), api, 1);
    let r = fixed(fixup.expect("answer check"), 1, &answer(&[(unknown, 3)]));
    assert_eq!(
        fetch_codes(&r),
        vec![(unknown, 3, TOPIC_AUTHORIZATION_FAILED)]
    );
}

#[test]
fn a_revoked_topic_is_forgotten_by_the_share_session() {
    let api = ApiKey::ShareFetch;
    let before = alice_knowing(
        vec![
            read_group(),
            topic_acl(Operation::Read, "orders"),
            topic_acl(Operation::Read, "payments"),
        ],
        None,
    );
    let open = fetch("m1", 0, &[(ORDERS, &[0, 1]), (PAYMENTS, &[0])]);
    assert!(matches!(
        run(&before, api, 1, &open),
        Outcome::Forward { request: None, .. }
    ));
    // READ on orders is revoked; the member's next fetch names no topic (incremental).
    let after = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "payments")],
        Some(&before),
    );
    let next = fetch("m1", 1, &[]);
    let (request, fixup) = forwarded::<ShareFetchRequest>(run(&after, api, 1, &next), api, 1);
    let request = request.expect("rewritten");
    assert_eq!(
        request.forgotten_topics_data,
        vec![ForgottenTopic::default()
            .with_topic_id(ORDERS)
            .with_partitions(vec![0, 1])]
    );
    let r = fixed(fixup.expect("fixup"), 1, &ShareFetchResponse::default());
    assert_eq!(
        fetch_codes(&r),
        vec![
            (ORDERS, 0, TOPIC_AUTHORIZATION_FAILED),
            (ORDERS, 1, TOPIC_AUTHORIZATION_FAILED)
        ]
    );
    // Forgotten once: the next fetch goes through untouched (payments is still allowed).
    let again = fetch("m1", 2, &[]);
    assert!(matches!(
        run(&after, api, 1, &again),
        Outcome::Forward { request: None, .. }
    ));
    // Closing the session forgets it.
    run(&after, api, 1, &fetch("m1", -1, &[]));
    assert!(after.share_sessions.is_empty());
}

#[test]
fn a_forget_the_broker_may_have_refused_keeps_the_partition_tracked() {
    let api = ApiKey::ShareFetch;
    let before = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "orders")],
        None,
    );
    run(&before, api, 1, &fetch("m1", 0, &[(ORDERS, &[0])]));
    // The member forgets orders, with an epoch the broker may refuse (then it keeps orders).
    let mut forget = fetch("m1", 7, &[]);
    forget.forgotten_topics_data = vec![ForgottenTopic::default()
        .with_topic_id(ORDERS)
        .with_partitions(vec![0])];
    run(&before, api, 1, &forget);
    // READ is revoked: kgate still knows orders may be in the session and forgets it again.
    let after = alice_knowing(vec![read_group()], Some(&before));
    let (request, _) =
        forwarded::<ShareFetchRequest>(run(&after, api, 1, &fetch("m1", 8, &[])), api, 1);
    let request = request.expect("rewritten");
    assert_eq!(
        request.forgotten_topics_data,
        vec![ForgottenTopic::default()
            .with_topic_id(ORDERS)
            .with_partitions(vec![0])]
    );
}

#[test]
fn a_share_session_not_opened_on_this_connection_is_not_found() {
    let s = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "orders")],
        None,
    );
    let api = ApiKey::ShareFetch;
    let r: ShareFetchResponse =
        answered(run(&s, api, 1, &fetch("m9", 4, &[(ORDERS, &[0])])), api, 1);
    assert_eq!(r.error_code, SHARE_SESSION_NOT_FOUND);
    assert!(r.responses.is_empty(), "no data, no partition answered");
}

#[test]
fn share_acknowledge_needs_read_on_the_group_and_each_topic() {
    let api = ApiKey::ShareAcknowledge;
    let ack = |topics: &[Uuid]| {
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(group("g")))
            .with_member_id(Some(StrBytes::from_static_str("m1")))
            .with_share_session_epoch(3)
            .with_topics(
                topics
                    .iter()
                    .map(|id| {
                        AcknowledgeTopic::default()
                            .with_topic_id(*id)
                            .with_partitions(vec![
                                AcknowledgePartition::default().with_partition_index(2)
                            ])
                    })
                    .collect(),
            )
    };
    let req = ack(&[ORDERS, PAYMENTS]);
    let r: ShareAcknowledgeResponse =
        answered(run(&alice_knowing(vec![], None), api, 1, &req), api, 1);
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);

    let s = alice_knowing(
        vec![read_group(), topic_acl(Operation::Read, "orders")],
        None,
    );
    let (request, fixup) = forwarded::<ShareAcknowledgeRequest>(run(&s, api, 1, &req), api, 1);
    let request = request.expect("trimmed");
    assert_eq!(request.topics.len(), 1);
    assert_eq!(request.topics[0].topic_id, ORDERS);
    let r = fixed(
        fixup.expect("fixup"),
        1,
        &ShareAcknowledgeResponse::default(),
    );
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].topic_id, PAYMENTS);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );

    assert_untouched(run(&s, api, 1, &ack(&[ORDERS])));
}

#[test]
fn describe_share_group_offsets_per_group_and_topic_and_filters_all_topics() {
    let api = ApiKey::DescribeShareGroupOffsets;
    let req = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(group("g"))
            .with_topics(Some(vec![
                DescribeShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(tn("orders"))
                    .with_partitions(vec![0]),
                DescribeShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(tn("payments"))
                    .with_partitions(vec![1]),
            ])),
    ]);
    let r: DescribeShareGroupOffsetsResponse = answered(run(&alice(vec![]), api, 0, &req), api, 0);
    assert_eq!(r.groups[0].error_code, GROUP_AUTHORIZATION_FAILED);

    let describe_group = acl("User:alice", Operation::Describe, ResourceType::Group, "g");
    let s = alice(vec![
        describe_group.clone(),
        topic_acl(Operation::Describe, "orders"),
    ]);
    let (request, fixup) =
        forwarded::<DescribeShareGroupOffsetsRequest>(run(&s, api, 0, &req), api, 0);
    let request = request.expect("trimmed");
    let asked = request.groups[0].topics.as_ref().expect("topics");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].topic_name, tn("orders"));
    let upstream = DescribeShareGroupOffsetsResponse::default().with_groups(vec![
        DescribeShareGroupOffsetsResponseGroup::default()
            .with_group_id(group("g"))
            .with_topics(vec![
                DescribeShareGroupOffsetsResponseTopic::default().with_topic_name(tn("orders"))
            ]),
    ]);
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    let payments = r.groups[0]
        .topics
        .iter()
        .find(|t| t.topic_name == tn("payments"))
        .expect("payments answered");
    assert_eq!(
        payments.partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(payments.partitions[0].start_offset, -1);

    // All topics of the group: what the caller may not describe is left out of the answer.
    let all = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(group("g"))
            .with_topics(None),
    ]);
    let (_, fixup) = forwarded::<DescribeShareGroupOffsetsRequest>(run(&s, api, 0, &all), api, 0);
    let upstream = DescribeShareGroupOffsetsResponse::default().with_groups(vec![
        DescribeShareGroupOffsetsResponseGroup::default()
            .with_group_id(group("g"))
            .with_topics(vec![
                DescribeShareGroupOffsetsResponseTopic::default().with_topic_name(tn("orders")),
                DescribeShareGroupOffsetsResponseTopic::default().with_topic_name(tn("payments")),
            ]),
    ]);
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    let names: Vec<_> = r.groups[0]
        .topics
        .iter()
        .map(|t| t.topic_name.to_string())
        .collect();
    assert_eq!(names, vec!["orders"]);

    let minimal = alice(vec![
        describe_group,
        topic_acl(Operation::Describe, "orders"),
        topic_acl(Operation::Describe, "payments"),
    ]);
    assert_untouched(run(&minimal, api, 0, &req));
}

#[test]
fn alter_share_group_offsets_needs_read_on_group_and_topics() {
    let api = ApiKey::AlterShareGroupOffsets;
    let req = AlterShareGroupOffsetsRequest::default()
        .with_group_id(group("g"))
        .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
            .with_topic_name(tn("orders"))
            .with_partitions(vec![
                AlterShareGroupOffsetsRequestPartition::default()
                    .with_partition_index(0)
                    .with_start_offset(5),
            ])]);
    let r: AlterShareGroupOffsetsResponse = answered(run(&alice(vec![]), api, 0, &req), api, 0);
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
    let r: AlterShareGroupOffsetsResponse =
        answered(run(&alice(vec![read_group()]), api, 0, &req), api, 0);
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    let minimal = alice(vec![read_group(), topic_acl(Operation::Read, "orders")]);
    assert_untouched(run(&minimal, api, 0, &req));
}

#[test]
fn delete_share_group_offsets_needs_delete_on_group_and_read_on_topics() {
    let api = ApiKey::DeleteShareGroupOffsets;
    let req = DeleteShareGroupOffsetsRequest::default()
        .with_group_id(group("g"))
        .with_topics(vec![
            DeleteShareGroupOffsetsRequestTopic::default().with_topic_name(tn("orders"))
        ]);
    // READ on the group is not enough: deleting needs DELETE.
    let r: DeleteShareGroupOffsetsResponse =
        answered(run(&alice(vec![read_group()]), api, 0, &req), api, 0);
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
    let delete_group = acl("User:alice", Operation::Delete, ResourceType::Group, "g");
    let r: DeleteShareGroupOffsetsResponse = answered(
        run(&alice(vec![delete_group.clone()]), api, 0, &req),
        api,
        0,
    );
    assert_eq!(r.responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    let minimal = alice(vec![delete_group, topic_acl(Operation::Read, "orders")]);
    assert_untouched(run(&minimal, api, 0, &req));
}

#[test]
fn list_config_resources_needs_describe_configs_on_the_cluster_and_hides_the_state_topic() {
    let api = ApiKey::ListConfigResources;
    let req = ListConfigResourcesRequest::default();
    let r: ListConfigResourcesResponse = answered(run(&alice(vec![]), api, 1, &req), api, 1);
    assert_eq!(r.error_code, CLUSTER_AUTHORIZATION_FAILED);

    let describe_configs = acl(
        "User:alice",
        Operation::DescribeConfigs,
        ResourceType::Cluster,
        CLUSTER,
    );
    // v0 lists client-metrics resources only: forwarded untouched.
    let (request, fixup) = forwarded::<ListConfigResourcesRequest>(
        run(&alice(vec![describe_configs.clone()]), api, 0, &req),
        api,
        0,
    );
    assert!(request.is_none() && fixup.is_none(), "forwarded untouched");

    // v1 may list topics: kgate's reserved state topic never shows.
    let s = session_with(
        vec![describe_configs],
        AuthorizerOptions {
            reserved_topics: vec!["__kgate_state".into()],
            ..AuthorizerOptions::default()
        },
    );
    let (request, fixup) = forwarded::<ListConfigResourcesRequest>(run(&s, api, 1, &req), api, 1);
    assert!(request.is_none(), "the request is not changed");
    let resource = |name: &str, kind: i8| {
        ConfigResource::default()
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_resource_type(kind)
    };
    let upstream = ListConfigResourcesResponse::default().with_config_resources(vec![
        resource("orders", 2),
        resource("__kgate_state", 2),
        resource("__kgate_state", 32),
    ]);
    let r = fixed(fixup.expect("fixup"), 1, &upstream);
    let left: Vec<_> = r
        .config_resources
        .iter()
        .map(|c| (c.resource_name.to_string(), c.resource_type))
        .collect();
    assert_eq!(
        left,
        vec![("orders".to_owned(), 2), ("__kgate_state".to_owned(), 32)],
        "only the topic of that name is hidden; a group may share the name"
    );
}

#[test]
fn find_coordinator_v6_refuses_the_share_coordinator_key_type() {
    use kafka_protocol::messages::FindCoordinatorRequest;
    let api = ApiKey::FindCoordinator;
    let req = FindCoordinatorRequest::default()
        .with_key_type(2)
        .with_coordinator_keys(vec![StrBytes::from_static_str("g:topic-id:0")]);
    let admin_like = alice(vec![
        read_group(),
        acl(
            "User:alice",
            Operation::ClusterAction,
            ResourceType::Cluster,
            CLUSTER,
        ),
    ]);
    assert!(
        matches!(run(&admin_like, api, 6, &req), Outcome::Close(_)),
        "the share coordinator is broker-internal"
    );
    let groups = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str("g")]);
    let describe = alice(vec![acl(
        "User:alice",
        Operation::Describe,
        ResourceType::Group,
        "g",
    )]);
    assert!(matches!(
        run(&describe, api, 6, &groups),
        Outcome::Forward { request: None, .. }
    ));
}
