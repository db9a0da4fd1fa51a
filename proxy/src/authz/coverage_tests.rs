//! Authorization cases for every API and version kgate serves, tied to the registry: a request
//! naming one resource of each kind the API checks, asked at every served version by a
//! principal with no ACL (it gets Kafka's code, or a filtered answer) and with the minimal
//! ACLs (the request goes on untouched, or kgate answers it without the denial). A served API
//! or version no case covers fails the tests, so no API can be added unauthorized or
//! untested. The per-family test files check the detail of each answer.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_partition_reassignments_request::ReassignableTopic;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialDeletion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_producers_request::TopicRequest as ProducersTopic;
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request as iac;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kgate_policies::{AclBinding, Operation, ResourceType};

use super::test_support::{acl, alice};
use super::{authorize, Incoming, Outcome, CLUSTER};
use crate::registry::{Answer, Rule, SERVED};

/// What a principal without the ACLs gets.
enum Denied {
    /// kgate answers, with this code somewhere in the answer.
    Code(i16),
    /// kgate forwards what is allowed and merges this code into the broker's answer (built
    /// from the broker's empty answer, encoded by the function).
    Merged(i16, fn(i16) -> Bytes),
    /// The broker's answer is filtered (listings never fail).
    Filtered,
    /// kgate answers with no error to show (an older version's empty answer).
    Answered,
}

struct Case {
    api: ApiKey,
    /// The version the request was written for (it must encode there).
    version: i16,
    /// The request encoded at a version, `None` where it cannot say the same thing.
    build: Box<dyn Fn(i16) -> Option<Bytes>>,
    minimal: Vec<AclBinding>,
    denied: Denied,
    /// The denial up to a version, when older versions answer it differently.
    early: Option<(i16, Denied)>,
    /// The versions this case is for (all served versions when `None`).
    only: Option<(i16, i16)>,
}

fn case<T: Encodable + Clone + 'static>(
    api: ApiKey,
    version: i16,
    req: T,
    minimal: Vec<AclBinding>,
    denied: Denied,
) -> Case {
    case_by_version(api, version, move |_| req.clone(), minimal, denied)
}

/// A case whose request is written differently by version (fields that moved).
fn case_by_version<T: Encodable + 'static>(
    api: ApiKey,
    version: i16,
    req: impl Fn(i16) -> T + 'static,
    minimal: Vec<AclBinding>,
    denied: Denied,
) -> Case {
    let build = move |v: i16| {
        let mut buf = BytesMut::new();
        req(v).encode(&mut buf, v).ok().map(|()| buf.freeze())
    };
    assert!(
        build(version).is_some(),
        "{api:?}: the case does not encode at v{version}"
    );
    Case {
        api,
        version,
        build: Box::new(build),
        minimal,
        denied,
        early: None,
        only: None,
    }
}

impl Case {
    /// Up to version `last` a denial looks different (older response shapes).
    fn until(mut self, last: i16, denied: Denied) -> Self {
        self.early = Some((last, denied));
        self
    }

    /// This case covers only versions `lo..=hi` (another case covers the rest).
    fn only(mut self, lo: i16, hi: i16) -> Self {
        self.only = Some((lo, hi));
        self
    }

    fn denied_at(&self, version: i16) -> &Denied {
        match &self.early {
            Some((last, denied)) if version <= *last => denied,
            _ => &self.denied,
        }
    }
}

fn empty<T: Encodable + Default>(version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    T::default().encode(&mut buf, version).expect("encode");
    buf.freeze()
}

/// The broker's empty answer to a denied v0–3 Metadata request: a v0 one asks v4 upstream
/// (its empty list would mean every topic), the others their own version.
fn metadata_upstream(version: i16) -> Bytes {
    empty::<MetadataResponse>(if version == 0 { 4 } else { version })
}

/// The id of `orders`, as the session learned it from a Metadata answer.
const ORDERS_ID: uuid::Uuid = uuid::Uuid::from_u128(0x0de5);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}
fn topic() -> TopicName {
    TopicName(s("orders"))
}
fn group() -> GroupId {
    GroupId(s("g"))
}
fn txn() -> TransactionalId {
    TransactionalId(s("t"))
}
fn on_topic(op: Operation) -> AclBinding {
    acl("User:alice", op, ResourceType::Topic, "orders")
}
fn on_group(op: Operation) -> AclBinding {
    acl("User:alice", op, ResourceType::Group, "g")
}
fn on_txn(op: Operation) -> AclBinding {
    acl("User:alice", op, ResourceType::TransactionalId, "t")
}
fn on_cluster(op: Operation) -> AclBinding {
    acl("User:alice", op, ResourceType::Cluster, CLUSTER)
}

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    use Denied::{Answered, Code, Filtered, Merged};
    use Operation::{Alter, AlterConfigs, Create, Delete, Describe, DescribeConfigs, Read, Write};
    let topics_read = |op| vec![on_topic(op)];
    vec![
        case(ApiKey::Produce, 9,
            ProduceRequest::default().with_acks(-1).with_topic_data(vec![
                TopicProduceData::default().with_name(topic()).with_partition_data(vec![
                    PartitionProduceData::default().with_index(0),
                ]),
            ]),
            topics_read(Write), Code(TOPIC_DENIED)),
        case_by_version(ApiKey::Fetch, 12,
            |v| {
                // From v13 topics are named by id (the one the session learned for orders).
                let t = if v >= 13 {
                    FetchTopic::default().with_topic_id(ORDERS_ID)
                } else {
                    FetchTopic::default().with_topic(topic())
                };
                FetchRequest::default().with_replica_id(BrokerId(-1)).with_session_epoch(-1)
                    .with_topics(vec![t.with_partitions(vec![FetchPartition::default()
                        .with_partition(0)])])
            },
            topics_read(Read), Code(TOPIC_DENIED)),
        case(ApiKey::ListOffsets, 7,
            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                ListOffsetsTopic::default().with_name(topic())
                    .with_partitions(vec![ListOffsetsPartition::default()]),
            ]),
            topics_read(Describe), Code(TOPIC_DENIED)),
        case(ApiKey::Metadata, 13,
            MetadataRequest::default().with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic()))])),
            topics_read(Describe), Merged(TOPIC_DENIED, empty::<MetadataResponse>))
            .only(4, 13),
        // Before v4 a Metadata request always allows auto-creation, so a topic needs CREATE
        // as well to go upstream untouched (with DESCRIBE alone kgate asks v4, no creation).
        case(ApiKey::Metadata, 3,
            MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic()))])),
            vec![on_topic(Describe), on_topic(Create)],
            Merged(TOPIC_DENIED, metadata_upstream))
            .only(0, 3),
        case(ApiKey::OffsetCommit, 8,
            OffsetCommitRequest::default().with_group_id(group()).with_topics(vec![
                OffsetCommitRequestTopic::default().with_name(topic())
                    .with_partitions(vec![OffsetCommitRequestPartition::default()]),
            ]),
            vec![on_group(Read), on_topic(Read)], Code(GROUP_DENIED)),
        case_by_version(ApiKey::OffsetFetch, 8,
            // v8 asks for several groups at once; before, one group at the top.
            |v| if v >= 8 {
                OffsetFetchRequest::default().with_groups(vec![
                    OffsetFetchRequestGroup::default().with_group_id(group())
                        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                            .with_name(topic()).with_partition_indexes(vec![0])])),
                ])
            } else {
                OffsetFetchRequest::default().with_group_id(group()).with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default().with_name(topic())
                        .with_partition_indexes(vec![0]),
                ]))
            },
            vec![on_group(Describe), on_topic(Describe)], Code(GROUP_DENIED)),
        case_by_version(ApiKey::FindCoordinator, 6,
            // v4 batches keys; before, one key.
            |v| if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")])
            } else {
                FindCoordinatorRequest::default().with_key(s("g"))
            },
            vec![on_group(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::JoinGroup, 5,
            JoinGroupRequest::default().with_group_id(group()).with_protocol_type(s("consumer")),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::Heartbeat, 4, HeartbeatRequest::default().with_group_id(group()),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::LeaveGroup, 3, LeaveGroupRequest::default().with_group_id(group()),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::SyncGroup, 3, SyncGroupRequest::default().with_group_id(group()),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::DescribeGroups, 5, DescribeGroupsRequest::default().with_groups(vec![group()]),
            vec![on_group(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::ListGroups, 4, ListGroupsRequest::default(),
            vec![on_cluster(Describe)], Filtered),
        case(ApiKey::CreateTopics, 5,
            CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default().with_name(topic()).with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
            vec![on_topic(Create), on_topic(DescribeConfigs)], Code(TOPIC_DENIED)),
        case_by_version(ApiKey::DeleteTopics, 6,
            // v6 names topics in structs (by name or id); before, by name only.
            |v| if v >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    DeleteTopicState::default().with_name(Some(topic())),
                ])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![topic()])
            },
            vec![on_topic(Describe), on_topic(Delete)], Code(TOPIC_DENIED)),
        case(ApiKey::DeleteRecords, 2,
            DeleteRecordsRequest::default().with_topics(vec![
                DeleteRecordsTopic::default().with_name(topic())
                    .with_partitions(vec![DeleteRecordsPartition::default()]),
            ]),
            topics_read(Delete), Code(TOPIC_DENIED)),
        case(ApiKey::InitProducerId, 4,
            InitProducerIdRequest::default().with_transactional_id(Some(txn())),
            vec![on_txn(Write)], Code(TXN_DENIED)),
        case(ApiKey::OffsetForLeaderEpoch, 4,
            OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                OffsetForLeaderTopic::default().with_topic(topic())
                    .with_partitions(vec![OffsetForLeaderPartition::default()]),
            ]),
            topics_read(Describe), Code(TOPIC_DENIED)),
        case(ApiKey::AddPartitionsToTxn, 3,
            AddPartitionsToTxnRequest::default().with_v3_and_below_transactional_id(txn())
                .with_v3_and_below_topics(vec![
                    AddPartitionsToTxnTopic::default().with_name(topic()).with_partitions(vec![0]),
                ]),
            vec![on_txn(Write), on_topic(Write)], Code(TXN_DENIED)),
        case(ApiKey::AddOffsetsToTxn, 3,
            AddOffsetsToTxnRequest::default().with_transactional_id(txn()).with_group_id(group()),
            vec![on_txn(Write), on_group(Read)], Code(TXN_DENIED)),
        case(ApiKey::EndTxn, 4, EndTxnRequest::default().with_transactional_id(txn()),
            vec![on_txn(Write)], Code(TXN_DENIED)),
        case(ApiKey::TxnOffsetCommit, 3,
            TxnOffsetCommitRequest::default().with_transactional_id(txn()).with_group_id(group())
                .with_topics(vec![TxnOffsetCommitRequestTopic::default().with_name(topic())
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()])]),
            vec![on_txn(Write), on_group(Read), on_topic(Read)], Code(TXN_DENIED)),
        case(ApiKey::DescribeAcls, 3, DescribeAclsRequest::default().with_resource_type_filter(1)
                .with_pattern_type_filter(1).with_operation(1).with_permission_type(1),
            vec![on_cluster(Describe)], Code(CLUSTER_DENIED)),
        case(ApiKey::CreateAcls, 3,
            CreateAclsRequest::default().with_creations(vec![
                AclCreation::default().with_resource_type(2).with_resource_name(s("orders"))
                    .with_resource_pattern_type(3).with_principal(s("User:bob"))
                    .with_host(s("*")).with_operation(3).with_permission_type(3),
            ]),
            vec![on_cluster(Alter)], Code(CLUSTER_DENIED)),
        case(ApiKey::DeleteAcls, 3,
            DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default().with_resource_type_filter(2)
                    .with_resource_name_filter(Some(s("orders"))).with_pattern_type_filter(3)
                    .with_operation(1).with_permission_type(1),
            ]),
            vec![on_cluster(Alter)], Code(CLUSTER_DENIED)),
        case(ApiKey::DescribeConfigs, 4,
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default().with_resource_type(2)
                    .with_resource_name(s("orders")),
            ]),
            topics_read(DescribeConfigs), Code(TOPIC_DENIED)),
        case(ApiKey::AlterConfigs, 2,
            AlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default().with_resource_type(2)
                    .with_resource_name(s("orders")),
            ]),
            topics_read(AlterConfigs), Code(TOPIC_DENIED)),
        case(ApiKey::DescribeLogDirs, 4, DescribeLogDirsRequest::default(),
            vec![on_cluster(Describe)], Code(CLUSTER_DENIED))
            // Before v3 Kafka answers a denial with an empty list, no error.
            .until(2, Answered),
        case(ApiKey::CreatePartitions, 3,
            CreatePartitionsRequest::default().with_topics(vec![
                CreatePartitionsTopic::default().with_name(topic()).with_count(2),
            ]),
            topics_read(Alter), Code(TOPIC_DENIED)),
        case(ApiKey::DeleteGroups, 2, DeleteGroupsRequest::default().with_groups_names(vec![group()]),
            vec![on_group(Delete)], Code(GROUP_DENIED)),
        case(ApiKey::ElectLeaders, 2,
            ElectLeadersRequest::default().with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default().with_topic(topic())
                    .with_partitions(vec![0]),
            ])),
            vec![on_cluster(Alter)], Code(CLUSTER_DENIED)),
        case(ApiKey::IncrementalAlterConfigs, 1,
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                iac::AlterConfigsResource::default().with_resource_type(2)
                    .with_resource_name(s("orders")),
            ]),
            topics_read(AlterConfigs), Code(TOPIC_DENIED)),
        case(ApiKey::AlterPartitionReassignments, 0,
            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                ReassignableTopic::default().with_name(topic()),
            ]),
            vec![on_cluster(Alter)], Code(CLUSTER_DENIED)),
        case(ApiKey::ListPartitionReassignments, 0, ListPartitionReassignmentsRequest::default(),
            vec![on_cluster(Describe)], Code(CLUSTER_DENIED)),
        case(ApiKey::OffsetDelete, 0,
            OffsetDeleteRequest::default().with_group_id(group()).with_topics(vec![
                OffsetDeleteRequestTopic::default().with_name(topic())
                    .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
            ]),
            vec![on_group(Delete), on_topic(Read)], Code(GROUP_DENIED)),
        case(ApiKey::DescribeClientQuotas, 1, DescribeClientQuotasRequest::default(),
            vec![on_cluster(DescribeConfigs)], Code(CLUSTER_DENIED)),
        case(ApiKey::AlterClientQuotas, 1,
            AlterClientQuotasRequest::default().with_entries(vec![
                alter_client_quotas_request::EntryData::default().with_entity(vec![
                    alter_client_quotas_request::EntityData::default()
                        .with_entity_type(s("user")).with_entity_name(Some(s("bob"))),
                ]),
            ]),
            vec![on_cluster(AlterConfigs)], Code(CLUSTER_DENIED)),
        case(ApiKey::DescribeUserScramCredentials, 0,
            DescribeUserScramCredentialsRequest::default(),
            vec![on_cluster(Describe)], Code(CLUSTER_DENIED)),
        case(ApiKey::AlterUserScramCredentials, 0,
            AlterUserScramCredentialsRequest::default().with_deletions(vec![
                ScramCredentialDeletion::default().with_name(s("bob")).with_mechanism(1),
            ]),
            vec![on_cluster(Alter)], Code(CLUSTER_DENIED)),
        // No check on the broker: Describe on the cluster only decides the mask.
        case(ApiKey::DescribeCluster, 2,
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            vec![on_cluster(Describe)], Filtered),
        case(ApiKey::DescribeProducers, 0,
            DescribeProducersRequest::default().with_topics(vec![
                ProducersTopic::default().with_name(topic()).with_partition_indexes(vec![0]),
            ]),
            topics_read(Read), Code(TOPIC_DENIED)),
        case(ApiKey::DescribeTransactions, 0,
            DescribeTransactionsRequest::default().with_transactional_ids(vec![txn()]),
            vec![on_txn(Describe)], Code(TXN_DENIED)),
        case(ApiKey::ListTransactions, 1, ListTransactionsRequest::default(),
            vec![on_txn(Describe)], Filtered),
        case(ApiKey::ConsumerGroupHeartbeat, 0,
            ConsumerGroupHeartbeatRequest::default().with_group_id(group())
                .with_subscribed_topic_names(Some(vec![topic()])),
            vec![on_group(Read), on_topic(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::ConsumerGroupDescribe, 0,
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![group()]),
            vec![on_group(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::ListConfigResources, 0, ListConfigResourcesRequest::default(),
            vec![on_cluster(DescribeConfigs)], Code(CLUSTER_DENIED)),
        case(ApiKey::DescribeTopicPartitions, 0,
            DescribeTopicPartitionsRequest::default().with_topics(vec![
                TopicRequest::default().with_name(topic()),
            ]),
            topics_read(Describe), Code(TOPIC_DENIED)),
        case(ApiKey::ShareGroupHeartbeat, 1,
            ShareGroupHeartbeatRequest::default().with_group_id(group())
                .with_subscribed_topic_names(Some(vec![topic()])),
            vec![on_group(Read), on_topic(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::ShareGroupDescribe, 1,
            ShareGroupDescribeRequest::default().with_group_ids(vec![group()]),
            vec![on_group(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::ShareFetch, 1,
            ShareFetchRequest::default().with_group_id(Some(group())),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::ShareAcknowledge, 1,
            ShareAcknowledgeRequest::default().with_group_id(Some(group())).with_share_session_epoch(1),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::DescribeShareGroupOffsets, 0,
            DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
                    .with_group_id(group()),
            ]),
            vec![on_group(Describe)], Code(GROUP_DENIED)),
        case(ApiKey::AlterShareGroupOffsets, 0,
            AlterShareGroupOffsetsRequest::default().with_group_id(group()),
            vec![on_group(Read)], Code(GROUP_DENIED)),
        case(ApiKey::DeleteShareGroupOffsets, 0,
            DeleteShareGroupOffsetsRequest::default().with_group_id(group()),
            vec![on_group(Delete)], Code(GROUP_DENIED)),
    ]
}

/// Every error code in a local answer (read off its debug form, which names each field).
fn codes_in(api: ApiKey, version: i16, frame: &Bytes) -> String {
    let (_, mut body) =
        crate::header::decode_response_header(api, version, frame).expect("response header");
    let resp = ResponseKind::decode(api, &mut body, version).expect("response body");
    format!("{resp:?}")
}

fn has_code(debug: &str, code: i16) -> bool {
    debug.contains(&format!("error_code: {code},"))
        || debug.contains(&format!("error_code: {code} "))
}

fn run(c: &Case, version: i16, body: Bytes, acls: Vec<AclBinding>) -> Outcome {
    let inc = Incoming {
        api: c.api,
        version,
        header: RequestHeader::default()
            .with_request_api_key(c.api as i16)
            .with_request_api_version(version)
            .with_correlation_id(42),
        body,
    };
    let session = alice(acls);
    if let Some(authz) = &session.authz {
        authz.topic_ids.learn(ORDERS_ID, "orders");
    }
    authorize(&session, &inc)
}

#[test]
fn every_served_api_has_an_authorization_case() {
    let cases = cases();
    for api in SERVED {
        if let Rule::Checks(_) = api.rule {
            let n = cases.iter().filter(|c| c.api == api.key).count();
            assert!(n >= 1, "{:?} has no authorization case", api.key);
        }
    }
    for c in &cases {
        let api = crate::registry::find(c.api).expect("case of an API kgate serves");
        assert!(
            (api.min..=api.max).contains(&c.version),
            "{:?} v{} is not served",
            c.api,
            c.version
        );
    }
}

/// What is wrong with one case at one version, if anything.
fn check(c: &Case, version: i16, body: &Bytes) -> Result<(), String> {
    let api = c.api;
    let kgate_answers = crate::registry::find(api).is_some_and(|a| a.answer != Answer::Broker);
    // Without ACLs.
    let denied = c.denied_at(version);
    match (run(c, version, body.clone(), vec![]), denied) {
        (Outcome::Respond(frame), Denied::Code(code)) => {
            let debug = codes_in(api, version, &frame);
            if !has_code(&debug, *code) {
                return Err(format!("without ACLs: no {code} in {debug}"));
            }
        }
        (
            Outcome::Forward {
                fixup: Some(fixup), ..
            },
            Denied::Merged(code, empty),
        ) => {
            let merged = fixup(empty(version)).map_err(|e| e.to_string())?;
            let mut frame = BytesMut::new();
            ResponseHeader::default()
                .encode(&mut frame, api.response_header_version(version))
                .map_err(|e| e.to_string())?;
            frame.extend_from_slice(&merged);
            let debug = codes_in(api, version, &frame.freeze());
            if !has_code(&debug, *code) {
                return Err(format!("without ACLs: no {code} in {debug}"));
            }
        }
        (Outcome::Respond(_), Denied::Answered) => {}
        (Outcome::Forward { request, fixup }, Denied::Filtered) => {
            if request.is_none() && fixup.is_none() {
                return Err("forwarded unfiltered without ACLs".into());
            }
        }
        (other, _) => return Err(format!("without ACLs: unexpected {other:?}")),
    }
    // With the minimal ACLs.
    let code = match denied {
        Denied::Code(code) | Denied::Merged(code, _) => *code,
        Denied::Filtered | Denied::Answered => 0,
    };
    match run(c, version, body.clone(), c.minimal.clone()) {
        Outcome::Forward { request: None, .. } if !kgate_answers => Ok(()),
        Outcome::Respond(frame) if kgate_answers => {
            let debug = codes_in(api, version, &frame);
            if has_code(&debug, code) {
                return Err(format!("denied with its minimal ACLs: {debug}"));
            }
            Ok(())
        }
        other => Err(format!("with its minimal ACLs: {other:?}")),
    }
}

#[test]
fn each_api_is_denied_without_its_acls_and_allowed_with_the_minimal_ones_at_every_version() {
    let mut failures = Vec::new();
    let mut covered = std::collections::HashSet::new();
    for c in cases() {
        let Some(api) = crate::registry::find(c.api) else {
            continue;
        };
        let (lo, hi) = c.only.unwrap_or((api.min, api.max));
        for version in lo.max(api.min)..=hi.min(api.max) {
            let Some(body) = (c.build)(version) else {
                continue;
            };
            covered.insert((c.api, version));
            if let Err(e) = check(&c, version, &body) {
                failures.push(format!("{:?} v{version}: {e}", c.api));
            }
        }
    }
    // Every version of every API kgate authorizes has been asked at least once.
    for api in SERVED {
        if let Rule::Checks(_) = api.rule {
            for version in api.min..=api.max {
                if !covered.contains(&(api.key, version)) {
                    failures.push(format!(
                        "{:?} v{version}: no case is written for it",
                        api.key
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
