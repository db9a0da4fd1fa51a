//! Tests of the Kafka admin API families (topics, configs, cluster, group administration,
//! producers): each denial answered as Kafka answers it, partial denials merged in order.

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_topic_partitions_request::Cursor;
use kafka_protocol::messages::describe_topic_partitions_response::Cursor as NextCursor;
use kafka_protocol::messages::describe_transactions_response::TopicData;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request as iac;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    describe_producers_request, DescribeClientQuotasRequest, DescribeLogDirsRequest,
    ListTransactionsRequest, TransactionalId, UpdateFeaturesRequest,
};

use super::answers::*;

use super::producers::*;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::describe_transactions_response::TransactionState;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    incremental_alter_configs_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, ApiKey, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteGroupsRequest, DeleteGroupsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClientQuotasResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    DescribeLogDirsResponse, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ElectLeadersRequest, ElectLeadersResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    ListTransactionsResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{Operation, ResourceType};

use crate::authz::codes::{INVALID_REQUEST, INVALID_TOPIC};
use crate::authz::{Outcome, CLUSTER};

use super::test_support::*;

#[test]
fn create_topics_checks_duplicates_metadata_topic_create_and_describe_configs() {
    let s = alice(vec![
        acl("User:alice", Operation::Create, ResourceType::Topic, "a"),
        acl("User:alice", Operation::Create, ResourceType::Topic, "c"),
        acl(
            "User:alice",
            Operation::DescribeConfigs,
            ResourceType::Topic,
            "c",
        ),
    ]);
    let topic = |n: &str| {
        CreatableTopic::default()
            .with_name(tn(n))
            .with_num_partitions(3)
    };
    let req = CreateTopicsRequest::default().with_topics(vec![
        topic("a"),
        topic("b"),
        topic("dup"),
        topic("c"),
        topic("dup"),
        topic("__cluster_metadata"),
    ]);
    let (fwd, fixup) = forwarded::<CreateTopicsRequest>(
        run(&s, ApiKey::CreateTopics, 7, &req),
        ApiKey::CreateTopics,
        7,
    );
    let fwd = fwd.expect("trimmed");
    let names: Vec<&str> = fwd.topics.iter().map(|t| &**t.name).collect();
    assert_eq!(names, ["a", "c"]);
    let created = |n: &str| {
        CreatableTopicResult::default()
            .with_name(tn(n))
            .with_error_message(None)
            .with_num_partitions(3)
            .with_replication_factor(3)
            .with_configs(Some(vec![CreatableTopicConfigs::default()
                .with_name("cleanup.policy".into())
                .with_value(Some("delete".into()))]))
    };
    let upstream = CreateTopicsResponse::default().with_topics(vec![created("a"), created("c")]);
    let r = fixed(fixup.expect("fixup"), 7, &upstream);
    let got: Vec<(&str, i16, Option<&str>)> = r
        .topics
        .iter()
        .map(|t| (&**t.name, t.error_code, msg(&t.error_message)))
        .collect();
    assert_eq!(
        got,
        [
            ("a", 0, None),
            ("c", 0, None),
            ("dup", 42, Some("Duplicate topic name.")),
            ("b", 29, Some("Authorization failed.")),
            (
                "__cluster_metadata",
                42,
                Some("Creation of internal topic __cluster_metadata is prohibited.")
            ),
        ]
    );
    // Created but not describable: configs, partitions and replication withheld.
    assert_eq!(r.topics[0].topic_config_error_code, 29);
    assert_eq!(r.topics[0].configs.as_ref().map(Vec::len), Some(0));
    assert_eq!(
        (r.topics[0].num_partitions, r.topics[0].replication_factor),
        (-1, -1)
    );
    assert_eq!(r.topics[1].topic_config_error_code, 0);
    assert_eq!(r.topics[1].configs.as_ref().map(Vec::len), Some(1));
    assert_eq!(r.topics[1].num_partitions, 3);
}

#[test]
fn create_topics_cluster_create_allows_every_topic_and_nothing_allowed_is_answered_locally() {
    let admin_like = alice(vec![
        acl(
            "User:alice",
            Operation::Create,
            ResourceType::Cluster,
            CLUSTER,
        ),
        acl(
            "User:alice",
            Operation::AlterConfigs,
            ResourceType::Topic,
            "*",
        ),
    ]);
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default().with_name(tn("x"))]);
    let (fwd, fixup) = forwarded::<CreateTopicsRequest>(
        run(&admin_like, ApiKey::CreateTopics, 5, &req),
        ApiKey::CreateTopics,
        5,
    );
    assert!(fwd.is_none() && fixup.is_none(), "untouched");

    let nobody = alice(vec![]);
    let r: CreateTopicsResponse = answered(
        run(&nobody, ApiKey::CreateTopics, 2, &req),
        ApiKey::CreateTopics,
        2,
    );
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, 29);
}

#[test]
fn delete_topics_needs_describe_and_delete_and_copies_a_deletion_refusal() {
    let s = alice(vec![
        acl("User:alice", Operation::Delete, ResourceType::Topic, "x"),
        acl("User:alice", Operation::Describe, ResourceType::Topic, "y"),
    ]);
    let req = DeleteTopicsRequest::default().with_topic_names(vec![
        tn("x"),
        tn("y"),
        tn("z"),
        tn("d"),
        tn("d"),
    ]);
    let outcome = run(&s, ApiKey::DeleteTopics, 5, &req);
    let (fwd, fixup) = forwarded::<DeleteTopicsRequest>(outcome, ApiKey::DeleteTopics, 5);
    let fwd = fwd.expect("trimmed");
    assert_eq!(fwd.topic_names, [tn("x")]);
    let upstream = DeleteTopicsResponse::default().with_responses(vec![
        DeletableTopicResult::default().with_name(Some(tn("x"))),
    ]);
    let r = fixed(fixup.expect("fixup"), 5, &upstream);
    let got: Vec<(String, i16, Option<&str>)> = r
        .responses
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                msg(&t.error_message),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("x".into(), 0, None),
            ("d".into(), 42, Some("Duplicate topic name.")),
            ("y".into(), 29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
            ("z".into(), 29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
        ]
    );
    // delete.topic.enable=false: Kafka refuses every name before any check.
    let (_, fixup) = forwarded::<DeleteTopicsRequest>(
        run(&s, ApiKey::DeleteTopics, 5, &req),
        ApiKey::DeleteTopics,
        5,
    );
    let refused =
        DeleteTopicsResponse::default().with_responses(vec![DeletableTopicResult::default()
            .with_name(Some(tn("x")))
            .with_error_code(TOPIC_DELETION_DISABLED)]);
    let r = fixed(fixup.expect("fixup"), 5, &refused);
    assert_eq!(r.responses.len(), 5);
    assert!(r
        .responses
        .iter()
        .all(|t| t.error_code == TOPIC_DELETION_DISABLED));

    let cluster = alice(vec![acl(
        "User:alice",
        Operation::Delete,
        ResourceType::Cluster,
        CLUSTER,
    )]);
    let single = DeleteTopicsRequest::default().with_topic_names(vec![tn("z")]);
    assert!(matches!(
        run(&cluster, ApiKey::DeleteTopics, 5, &single),
        Outcome::Forward {
            request: None,
            fixup: None
        }
    ));
}

#[test]
fn delete_records_denies_per_partition_with_low_watermark_minus_one() {
    let s = alice(vec![acl(
        "User:alice",
        Operation::Delete,
        ResourceType::Topic,
        "ok",
    )]);
    let topic = |n: &str| {
        DeleteRecordsTopic::default()
            .with_name(tn(n))
            .with_partitions(vec![
                DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(5),
                DeleteRecordsPartition::default()
                    .with_partition_index(1)
                    .with_offset(5),
            ])
    };
    let req = DeleteRecordsRequest::default().with_topics(vec![topic("ok"), topic("no")]);
    let (fwd, fixup) = forwarded::<DeleteRecordsRequest>(
        run(&s, ApiKey::DeleteRecords, 2, &req),
        ApiKey::DeleteRecords,
        2,
    );
    assert_eq!(fwd.expect("trimmed").topics.len(), 1);
    let r = fixed(fixup.expect("fixup"), 2, &DeleteRecordsResponse::default());
    assert_eq!(&*r.topics[0].name, "no");
    for p in &r.topics[0].partitions {
        assert_eq!((p.error_code, p.low_watermark), (29, -1));
    }
}

#[test]
fn describe_configs_per_resource_type_and_unknown_type_fails_everything() {
    let s = alice(vec![acl(
        "User:alice",
        Operation::DescribeConfigs,
        ResourceType::Topic,
        "t",
    )]);
    let res = |t: i8, n: &str| {
        DescribeConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(n.to_owned().into())
    };
    let req = DescribeConfigsRequest::default().with_resources(vec![
        res(CONFIG_TOPIC, "t"),
        res(CONFIG_BROKER, "1"),
        res(CONFIG_GROUP, "g"),
        res(CONFIG_TOPIC, "u"),
        res(CONFIG_CLIENT_METRICS, "m"),
    ]);
    let (fwd, fixup) = forwarded::<DescribeConfigsRequest>(
        run(&s, ApiKey::DescribeConfigs, 4, &req),
        ApiKey::DescribeConfigs,
        4,
    );
    assert_eq!(fwd.expect("trimmed").resources.len(), 1);
    let r = fixed(
        fixup.expect("fixup"),
        4,
        &DescribeConfigsResponse::default(),
    );
    let got: Vec<(&str, i16, Option<&str>, usize)> = r
        .results
        .iter()
        .map(|x| {
            (
                &*x.resource_name,
                x.error_code,
                msg(&x.error_message),
                x.configs.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1", 31, Some(CLUSTER_AUTHORIZATION_MESSAGE), 0),
            ("g", 30, Some(GROUP_AUTHORIZATION_MESSAGE), 0),
            ("u", 29, Some(TOPIC_AUTHORIZATION_MESSAGE), 0),
            ("m", 31, Some(CLUSTER_AUTHORIZATION_MESSAGE), 0),
        ]
    );
    let bad = DescribeConfigsRequest::default()
        .with_resources(vec![res(CONFIG_TOPIC, "t"), res(99, "?")]);
    let r: DescribeConfigsResponse = answered(
        run(&s, ApiKey::DescribeConfigs, 1, &bad),
        ApiKey::DescribeConfigs,
        1,
    );
    assert_eq!(r.results.len(), 2);
    assert!(r.results.iter().all(|x| x.error_code == INVALID_REQUEST
        && msg(&x.error_message) == Some(INVALID_REQUEST_MESSAGE)));
}

#[test]
fn incremental_alter_configs_validates_then_authorizes_in_request_order() {
    let s = alice(vec![acl(
        "User:alice",
        Operation::AlterConfigs,
        ResourceType::Topic,
        "t",
    )]);
    let cfg = |k: &str, op: i8, v: Option<&str>| {
        iac::AlterableConfig::default()
            .with_name(k.to_owned().into())
            .with_config_operation(op)
            .with_value(v.map(|v| v.to_owned().into()))
    };
    let res = |t: i8, n: &str, configs: Vec<iac::AlterableConfig>| {
        iac::AlterConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(n.to_owned().into())
            .with_configs(configs)
    };
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        res(
            CONFIG_BROKER_LOGGER,
            "1",
            vec![cfg("kafka", 0, Some("DEBUG"))],
        ),
        res(
            CONFIG_TOPIC,
            "t",
            vec![cfg("retention.ms", 0, Some("1")), cfg("x", 1, None)],
        ),
        res(CONFIG_TOPIC, "u", vec![]),
        res(
            CONFIG_TOPIC,
            "nulls",
            vec![cfg("a", 0, None), cfg("b", 2, None)],
        ),
        res(
            CONFIG_TOPIC,
            "keys",
            vec![cfg("a", 0, Some("1")), cfg("a", 0, Some("2"))],
        ),
        res(CONFIG_GROUP, "g", vec![]),
        res(CONFIG_BROKER, "one", vec![]),
        res(CONFIG_BROKER, "", vec![]),
        res(CONFIG_CLIENT_METRICS, "twice", vec![]),
        res(CONFIG_CLIENT_METRICS, "twice", vec![]),
        res(3, "what", vec![]),
    ]);
    let (fwd, fixup) = forwarded::<IncrementalAlterConfigsRequest>(
        run(&s, ApiKey::IncrementalAlterConfigs, 1, &req),
        ApiKey::IncrementalAlterConfigs,
        1,
    );
    let fwd = fwd.expect("trimmed");
    assert_eq!(fwd.resources.len(), 1);
    assert_eq!(&*fwd.resources[0].resource_name, "t");
    // The broker answers nothing for "t": Kafka's reassembly reports a server error.
    let r = fixed(
        fixup.expect("fixup"),
        1,
        &IncrementalAlterConfigsResponse::default(),
    );
    let got: Vec<(&str, i16, Option<&str>)> = r
        .responses
        .iter()
        .map(|x| (&*x.resource_name, x.error_code, msg(&x.error_message)))
        .collect();
    assert_eq!(
        got,
        [
            ("1", 31, None),
            ("t", -1, Some(UNKNOWN_SERVER_ERROR_MESSAGE)),
            ("u", 29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
            ("nulls", 42, Some("Null value not supported for : a, b")),
            ("keys", 42, Some("Error due to duplicate config keys")),
            ("g", 30, Some(GROUP_AUTHORIZATION_MESSAGE)),
            (
                "one",
                42,
                Some("Node id must be an integer, but it is: one")
            ),
            ("", 31, Some(CLUSTER_AUTHORIZATION_MESSAGE)),
            ("twice", 42, Some("Each resource must appear at most once.")),
            ("twice", 42, Some("Each resource must appear at most once.")),
            ("what", 42, Some("Unknown resource type 3")),
        ]
    );
    // With the broker's answer for "t" it lands in its place.
    let (_, fixup) = forwarded::<IncrementalAlterConfigsRequest>(
        run(&s, ApiKey::IncrementalAlterConfigs, 1, &req),
        ApiKey::IncrementalAlterConfigs,
        1,
    );
    let upstream = IncrementalAlterConfigsResponse::default().with_responses(vec![
        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(CONFIG_TOPIC)
            .with_resource_name("t".into())
            .with_error_message(None),
    ]);
    let r = fixed(fixup.expect("fixup"), 1, &upstream);
    assert_eq!(
        (&*r.responses[1].resource_name, r.responses[1].error_code),
        ("t", 0)
    );
}

#[test]
fn legacy_alter_configs_has_no_broker_logger_and_answers_locally_when_all_denied() {
    let s = alice(vec![]);
    let req = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(CONFIG_BROKER_LOGGER)
            .with_resource_name("1".into()),
        AlterConfigsResource::default()
            .with_resource_type(CONFIG_TOPIC)
            .with_resource_name("t".into())
            .with_configs(vec![AlterableConfig::default()
                .with_name("a".into())
                .with_value(Some("1".into()))]),
    ]);
    let r: AlterConfigsResponse = answered(
        run(&s, ApiKey::AlterConfigs, 2, &req),
        ApiKey::AlterConfigs,
        2,
    );
    let got: Vec<(i16, Option<&str>)> = r
        .responses
        .iter()
        .map(|x| (x.error_code, msg(&x.error_message)))
        .collect();
    assert_eq!(
        got,
        [
            (42, Some("Unknown resource type 8")),
            (29, Some(TOPIC_AUTHORIZATION_MESSAGE)),
        ]
    );
}

#[test]
fn describe_log_dirs_denial_by_version() {
    let s = alice(vec![]);
    let req = DescribeLogDirsRequest::default().with_topics(None);
    let r: DescribeLogDirsResponse = answered(
        run(&s, ApiKey::DescribeLogDirs, 4, &req),
        ApiKey::DescribeLogDirs,
        4,
    );
    assert_eq!((r.error_code, r.results.len()), (31, 0));
    let r: DescribeLogDirsResponse = answered(
        run(&s, ApiKey::DescribeLogDirs, 1, &req),
        ApiKey::DescribeLogDirs,
        1,
    );
    assert_eq!((r.error_code, r.results.len()), (0, 0), "v0-2: just empty");
    let ok = alice(vec![acl(
        "User:alice",
        Operation::Describe,
        ResourceType::Cluster,
        CLUSTER,
    )]);
    assert!(matches!(
        run(&ok, ApiKey::DescribeLogDirs, 4, &req),
        Outcome::Forward {
            request: None,
            fixup: None
        }
    ));
}

#[test]
fn create_partitions_lists_duplicates_and_denials_first() {
    let s = alice(vec![acl(
        "User:alice",
        Operation::Alter,
        ResourceType::Topic,
        "a",
    )]);
    let t = |n: &str| {
        CreatePartitionsTopic::default()
            .with_name(tn(n))
            .with_count(6)
    };
    let req = CreatePartitionsRequest::default().with_topics(vec![t("a"), t("b"), t("d"), t("d")]);
    let (fwd, fixup) = forwarded::<CreatePartitionsRequest>(
        run(&s, ApiKey::CreatePartitions, 3, &req),
        ApiKey::CreatePartitions,
        3,
    );
    assert_eq!(fwd.expect("trimmed").topics.len(), 1);
    let upstream = CreatePartitionsResponse::default().with_results(vec![
        CreatePartitionsTopicResult::default().with_name(tn("a")),
    ]);
    let r = fixed(fixup.expect("fixup"), 3, &upstream);
    let got: Vec<(&str, i16, Option<&str>)> = r
        .results
        .iter()
        .map(|x| (&**x.name, x.error_code, msg(&x.error_message)))
        .collect();
    assert_eq!(
        got,
        [
            ("d", 42, Some("Duplicate topic name.")),
            ("b", 29, None),
            ("a", 0, None),
        ]
    );
}

#[test]
fn delete_groups_denies_each_distinct_group_once() {
    let s = alice(vec![acl(
        "User:alice",
        Operation::Delete,
        ResourceType::Group,
        "mine",
    )]);
    let g = |n: &str| StrBytes::from_string(n.to_owned()).into();
    let req =
        DeleteGroupsRequest::default().with_groups_names(vec![g("mine"), g("theirs"), g("theirs")]);
    let (fwd, fixup) = forwarded::<DeleteGroupsRequest>(
        run(&s, ApiKey::DeleteGroups, 2, &req),
        ApiKey::DeleteGroups,
        2,
    );
    assert_eq!(fwd.expect("trimmed").groups_names.len(), 1);
    let r = fixed(fixup.expect("fixup"), 2, &DeleteGroupsResponse::default());
    assert_eq!(r.results.len(), 1);
    assert_eq!(
        (&**r.results[0].group_id, r.results[0].error_code),
        ("theirs", 30)
    );
}

#[test]
fn cluster_operations_fail_whole_requests_with_kafka_shapes() {
    let s = alice(vec![]);
    let tp = TopicPartitions::default()
        .with_topic(tn("t"))
        .with_partitions(vec![0, 1]);
    let req = ElectLeadersRequest::default().with_topic_partitions(Some(vec![tp]));
    for version in [0, 2] {
        let r: ElectLeadersResponse = answered(
            run(&s, ApiKey::ElectLeaders, version, &req),
            ApiKey::ElectLeaders,
            version,
        );
        assert_eq!(r.error_code, if version == 0 { 0 } else { 31 });
        let p = &r.replica_election_results[0].partition_result;
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.error_code == 31));
    }

    let req = AlterPartitionReassignmentsRequest::default().with_topics(vec![
        ReassignableTopic::default()
            .with_name(tn("t"))
            .with_partitions(vec![
                ReassignablePartition::default().with_partition_index(3)
            ]),
    ]);
    let r: AlterPartitionReassignmentsResponse = answered(
        run(&s, ApiKey::AlterPartitionReassignments, 0, &req),
        ApiKey::AlterPartitionReassignments,
        0,
    );
    assert_eq!(r.error_code, 31);
    assert_eq!(r.responses[0].partitions[0].error_code, 31);

    let req = ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
        ListPartitionReassignmentsTopics::default()
            .with_name(tn("t"))
            .with_partition_indexes(vec![4]),
    ]));
    let r: ListPartitionReassignmentsResponse = answered(
        run(&s, ApiKey::ListPartitionReassignments, 0, &req),
        ApiKey::ListPartitionReassignments,
        0,
    );
    assert_eq!(r.error_code, 31);
    assert_eq!(r.topics[0].partitions[0].partition_index, 4);

    let r: DescribeClientQuotasResponse = answered(
        run(
            &s,
            ApiKey::DescribeClientQuotas,
            1,
            &DescribeClientQuotasRequest::default(),
        ),
        ApiKey::DescribeClientQuotas,
        1,
    );
    assert_eq!(
        (r.error_code, r.error_message.is_none(), r.entries.is_none()),
        (31, true, true)
    );

    let req = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(vec![EntityData::default()
            .with_entity_type("user".into())
            .with_entity_name(Some("bob".into()))])]);
    let r: AlterClientQuotasResponse = answered(
        run(&s, ApiKey::AlterClientQuotas, 1, &req),
        ApiKey::AlterClientQuotas,
        1,
    );
    assert_eq!(r.entries[0].error_code, 31);
    assert_eq!(
        msg(&r.entries[0].error_message),
        Some(CLUSTER_AUTHORIZATION_MESSAGE)
    );
    assert_eq!(r.entries[0].entity[0].entity_name.as_deref(), Some("bob"));

    // An API kgate has no model for fails closed.
    assert!(matches!(
        run(
            &s,
            ApiKey::UpdateFeatures,
            1,
            &UpdateFeaturesRequest::default()
        ),
        Outcome::Close(_)
    ));
}

#[test]
fn offset_delete_group_then_topics_with_kafkas_merge() {
    let req = OffsetDeleteRequest::default()
        .with_group_id(StrBytes::from_static_str("g").into())
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(tn("no"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ]),
            OffsetDeleteRequestTopic::default()
                .with_name(tn("yes"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(1)
                ]),
        ]);
    let r: OffsetDeleteResponse = answered(
        run(&alice(vec![]), ApiKey::OffsetDelete, 0, &req),
        ApiKey::OffsetDelete,
        0,
    );
    assert_eq!((r.error_code, r.topics.len()), (30, 0));

    let s = alice(vec![
        acl("User:alice", Operation::Delete, ResourceType::Group, "g"),
        acl("User:alice", Operation::Read, ResourceType::Topic, "yes"),
    ]);
    let (fwd, fixup) = forwarded::<OffsetDeleteRequest>(
        run(&s, ApiKey::OffsetDelete, 0, &req),
        ApiKey::OffsetDelete,
        0,
    );
    assert_eq!(fwd.expect("trimmed").topics.len(), 1);
    let upstream =
        OffsetDeleteResponse::default().with_topics(vec![OffsetDeleteResponseTopic::default()
            .with_name(tn("yes"))
            .with_partitions(vec![
                OffsetDeleteResponsePartition::default().with_partition_index(1)
            ])]);
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    let names: Vec<&str> = r.topics.iter().map(|t| &**t.name).collect();
    assert_eq!(names, ["no", "yes"]);
    assert_eq!(r.topics[0].partitions[0].error_code, 29);
    // A coordinator error replaces everything, as Kafka's Builder.merge does.
    let (_, fixup) = forwarded::<OffsetDeleteRequest>(
        run(&s, ApiKey::OffsetDelete, 0, &req),
        ApiKey::OffsetDelete,
        0,
    );
    let r = fixed(
        fixup.expect("fixup"),
        0,
        &OffsetDeleteResponse::default().with_error_code(69),
    );
    assert_eq!((r.error_code, r.topics.len()), (69, 0));
}

#[test]
fn describe_producers_validates_names_then_read_in_request_order() {
    let s = alice(vec![acl(
        "User:alice",
        Operation::Read,
        ResourceType::Topic,
        "ok",
    )]);
    let t = |n: &str| {
        describe_producers_request::TopicRequest::default()
            .with_name(tn(n))
            .with_partition_indexes(vec![0, 1])
    };
    let req =
        DescribeProducersRequest::default().with_topics(vec![t("no"), t("ok"), t("bad name")]);
    let (fwd, fixup) = forwarded::<DescribeProducersRequest>(
        run(&s, ApiKey::DescribeProducers, 0, &req),
        ApiKey::DescribeProducers,
        0,
    );
    assert_eq!(fwd.expect("trimmed").topics.len(), 1);
    let upstream = DescribeProducersResponse::default().with_topics(vec![TopicResponse::default()
        .with_name(tn("ok"))
        .with_partitions(vec![PartitionResponse::default().with_partition_index(0)])]);
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    let names: Vec<&str> = r.topics.iter().map(|t| &**t.name).collect();
    assert_eq!(names, ["no", "ok", "bad name"]);
    assert_eq!(r.topics[0].partitions.len(), 2);
    assert_eq!(r.topics[0].partitions[0].error_code, 29);
    assert_eq!(
        msg(&r.topics[0].partitions[0].error_message),
        Some(TOPIC_AUTHORIZATION_MESSAGE)
    );
    assert_eq!(r.topics[2].partitions[1].error_code, INVALID_TOPIC);
    assert_eq!(
            msg(&r.topics[2].partitions[1].error_message),
            Some("Topic name is invalid: 'bad name' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
        );
    assert_eq!(
        invalid_topic_name(&"x".repeat(250))
            .as_deref()
            .map(|m| m.ends_with("max allowed length 249")),
        Some(true)
    );
    assert_eq!(
        invalid_topic_name("..").as_deref(),
        Some("Topic name is invalid: '..' is not allowed")
    );
}

#[test]
fn transactions_are_described_and_listed_only_when_describable() {
    let s = alice(vec![
        acl(
            "User:alice",
            Operation::Describe,
            ResourceType::TransactionalId,
            "t1",
        ),
        acl(
            "User:alice",
            Operation::Describe,
            ResourceType::Topic,
            "seen",
        ),
    ]);
    let id = |n: &str| TransactionalId(StrBytes::from_string(n.to_owned()));
    let req =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![id("t2"), id("t1")]);
    let (fwd, fixup) = forwarded::<DescribeTransactionsRequest>(
        run(&s, ApiKey::DescribeTransactions, 0, &req),
        ApiKey::DescribeTransactions,
        0,
    );
    assert_eq!(fwd.expect("trimmed").transactional_ids, [id("t1")]);
    let upstream = DescribeTransactionsResponse::default().with_transaction_states(vec![
        TransactionState::default()
            .with_transactional_id(id("t1"))
            .with_transaction_state("Ongoing".into())
            .with_topics(vec![
                TopicData::default()
                    .with_topic(tn("seen"))
                    .with_partitions(vec![0]),
                TopicData::default()
                    .with_topic(tn("hidden"))
                    .with_partitions(vec![0]),
            ]),
    ]);
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    assert_eq!(r.transaction_states.len(), 2);
    assert_eq!(&*r.transaction_states[0].transactional_id, "t2");
    assert_eq!(r.transaction_states[0].error_code, 53);
    assert_eq!(&*r.transaction_states[1].transactional_id, "t1");
    let topics: Vec<&str> = r.transaction_states[1]
        .topics
        .iter()
        .map(|t| &**t.topic)
        .collect();
    assert_eq!(topics, ["seen"]);

    let (fwd, fixup) = forwarded::<ListTransactionsRequest>(
        run(
            &s,
            ApiKey::ListTransactions,
            1,
            &ListTransactionsRequest::default(),
        ),
        ApiKey::ListTransactions,
        1,
    );
    assert!(fwd.is_none());
    let upstream = ListTransactionsResponse::default().with_transaction_states(vec![
        ListedState::default().with_transactional_id(id("t1")),
        ListedState::default().with_transactional_id(id("t2")),
    ]);
    let r = fixed(fixup.expect("fixup"), 1, &upstream);
    assert_eq!(r.transaction_states.len(), 1);
    assert_eq!(r.error_code, 0);

    // v2's regex (KIP-1152) only narrows what the broker lists: each id it returns is still
    // filtered by DESCRIBE on it, so a regex matching everything reveals nothing more.
    let regex = ListTransactionsRequest::default()
        .with_transactional_id_pattern(Some(StrBytes::from_static_str(".*")));
    let (fwd, fixup) = forwarded::<ListTransactionsRequest>(
        run(&s, ApiKey::ListTransactions, 2, &regex),
        ApiKey::ListTransactions,
        2,
    );
    assert!(fwd.is_none());
    let r = fixed(fixup.expect("fixup"), 2, &upstream);
    assert_eq!(r.transaction_states.len(), 1);
}

#[test]
fn describe_topic_partitions_named_all_and_cursor() {
    let s = alice(vec![
        acl("User:alice", Operation::Read, ResourceType::Topic, "b"),
        acl("User:alice", Operation::Describe, ResourceType::Topic, "d"),
    ]);
    let t = |n: &str| TopicRequest::default().with_name(tn(n));
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![t("d"), t("c"), t("a"), t("b")])
        .with_cursor(Some(
            Cursor::default()
                .with_topic_name(tn("c"))
                .with_partition_index(2),
        ));
    let (fwd, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
        run(&s, ApiKey::DescribeTopicPartitions, 0, &req),
        ApiKey::DescribeTopicPartitions,
        0,
    );
    let fwd = fwd.expect("trimmed");
    let names: Vec<&str> = fwd.topics.iter().map(|t| &**t.name).collect();
    assert_eq!(
        names,
        ["d"],
        "a sorts before the cursor, b too; c is denied"
    );
    assert!(
        fwd.cursor.is_none(),
        "a cursor on a denied topic is dropped"
    );
    let upstream = DescribeTopicPartitionsResponse::default().with_topics(vec![
        DescribeTopicPartitionsResponseTopic::default().with_name(Some(tn("d"))),
    ]);
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    assert_eq!(r.topics.len(), 2);
    assert_eq!(
        r.topics[0].topic_authorized_operations,
        1 << Operation::Describe.code()
    );
    assert_eq!(r.topics[1].name.as_deref().map(|n| &**n), Some("c"));
    assert_eq!(r.topics[1].error_code, 29);
    assert_eq!(r.topics[1].topic_authorized_operations, i32::MIN);
    assert!(r.topics[1].partitions.is_empty());

    // The cursor must name a listed topic.
    let bad = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![t("d")])
        .with_cursor(Some(Cursor::default().with_topic_name(tn("a"))));
    let r: DescribeTopicPartitionsResponse = answered(
        run(&s, ApiKey::DescribeTopicPartitions, 0, &bad),
        ApiKey::DescribeTopicPartitions,
        0,
    );
    assert_eq!(r.topics[0].error_code, INVALID_REQUEST);

    // All topics: the undescribable ones vanish; a next page starting at one is refused.
    let all = DescribeTopicPartitionsRequest::default();
    let (_, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
        run(&s, ApiKey::DescribeTopicPartitions, 0, &all),
        ApiKey::DescribeTopicPartitions,
        0,
    );
    let topic = |n: &str| DescribeTopicPartitionsResponseTopic::default().with_name(Some(tn(n)));
    let upstream = DescribeTopicPartitionsResponse::default()
        .with_topics(vec![topic("a"), topic("b"), topic("c")])
        .with_next_cursor(Some(NextCursor::default().with_topic_name(tn("d"))));
    let r = fixed(fixup.expect("fixup"), 0, &upstream);
    let names: Vec<&str> = r
        .topics
        .iter()
        .map(|t| t.name.as_deref().map_or("", |n| &**n))
        .collect();
    assert_eq!(names, ["b"]);
    let (_, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
        run(&s, ApiKey::DescribeTopicPartitions, 0, &all),
        ApiKey::DescribeTopicPartitions,
        0,
    );
    // A next page starting at a hidden topic: the cursor moves past the last topic shown
    // (b has partitions 0 and 1, so the next page starts at b's partition 2).
    let part = |i: i32| {
        kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(i)
    };
    let leaky = upstream
        .clone()
        .with_topics(vec![
            topic("a"),
            topic("b").with_partitions(vec![part(0), part(1)]),
            topic("c"),
        ])
        .with_next_cursor(Some(NextCursor::default().with_topic_name(tn("secret"))));
    let r = fixed(fixup.expect("fixup"), 0, &leaky);
    let next = r.next_cursor.expect("a next page");
    assert_eq!((&*next.topic_name.0, next.partition_index), ("b", 2));
    // A page showing nothing ends the listing rather than naming the hidden topic.
    let (_, fixup) = forwarded::<DescribeTopicPartitionsRequest>(
        run(&s, ApiKey::DescribeTopicPartitions, 0, &all),
        ApiKey::DescribeTopicPartitions,
        0,
    );
    let hidden_only = upstream
        .with_topics(vec![topic("c")])
        .with_next_cursor(Some(NextCursor::default().with_topic_name(tn("secret"))));
    let r = fixed(fixup.expect("fixup"), 0, &hidden_only);
    assert!(r.topics.is_empty());
    assert!(r.next_cursor.is_none());
}

#[test]
fn helpers_split_duplicates_like_kafka() {
    let (once, dups) = once_and_duplicates(["a", "b", "a", "c", "a", "b"]);
    assert_eq!(once, ["c"]);
    assert_eq!(dups, ["a", "b"]);
}

#[test]
fn metadata_by_an_unlearned_id_is_authorized_by_the_name_in_the_answer() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let s = alice(vec![acl(
        "User:alice",
        Operation::Describe,
        ResourceType::Topic,
        "open",
    )]);
    let (open, secret) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    let req = MetadataRequest::default().with_topics(Some(
        [open, secret]
            .iter()
            .map(|id| {
                MetadataRequestTopic::default()
                    .with_name(None)
                    .with_topic_id(*id)
            })
            .collect(),
    ));
    let (sent, fixup) =
        forwarded::<MetadataRequest>(run(&s, ApiKey::Metadata, 12, &req), ApiKey::Metadata, 12);
    // Looked up as asked: nothing widened.
    if let Some(sent) = sent {
        assert_eq!(sent.topics.map(|t| t.len()), Some(2));
    }
    let upstream = MetadataResponse::default().with_topics(vec![
        MetadataResponseTopic::default()
            .with_name(Some(topic_name("open")))
            .with_topic_id(open),
        MetadataResponseTopic::default()
            .with_name(Some(topic_name("secret")))
            .with_topic_id(secret),
    ]);
    let r = fixed(fixup.expect("fixup"), 12, &upstream);
    assert_eq!(r.topics.len(), 2);
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[1].error_code, 29);
    assert_eq!(
        r.topics[1].name, None,
        "the name of a topic alice may not describe"
    );
    assert_eq!(r.topics[1].topic_id, secret);
    // Both ids are learned now; a Fetch by the secret id is denied by its name.
    assert_eq!(s.topic_name(secret).as_deref(), Some("secret"));
}

#[test]
fn transactions_v2_keep_the_transactional_checks() {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        EndTxnRequest, EndTxnResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    };
    let end = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
        .with_committed(true);
    let s = alice(vec![]);
    let r: EndTxnResponse = answered(run(&s, ApiKey::EndTxn, 5, &end), ApiKey::EndTxn, 5);
    assert_eq!(r.error_code, 53);
    let s = alice(vec![acl(
        "User:alice",
        Operation::Write,
        ResourceType::TransactionalId,
        "tx",
    )]);
    assert!(matches!(
        run(&s, ApiKey::EndTxn, 5, &end),
        Outcome::Forward {
            request: None,
            fixup: None
        }
    ));
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
        .with_group_id(kafka_protocol::messages::GroupId(
            StrBytes::from_static_str("g"),
        ))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()])]);
    let r: TxnOffsetCommitResponse = answered(
        run(&s, ApiKey::TxnOffsetCommit, 5, &commit),
        ApiKey::TxnOffsetCommit,
        5,
    );
    assert_eq!(r.topics[0].partitions[0].error_code, 30);
    let s = alice(vec![
        acl(
            "User:alice",
            Operation::Write,
            ResourceType::TransactionalId,
            "tx",
        ),
        acl("User:alice", Operation::Read, ResourceType::Group, "g"),
        acl("User:alice", Operation::Read, ResourceType::Topic, "t"),
    ]);
    assert!(matches!(
        run(&s, ApiKey::TxnOffsetCommit, 5, &commit),
        Outcome::Forward {
            request: None,
            fixup: None
        }
    ));
}

#[test]
fn delete_topics_by_id_is_authorized_by_the_learned_name() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let (open, secret, unseen) = (
        uuid::Uuid::from_u128(11),
        uuid::Uuid::from_u128(12),
        uuid::Uuid::from_u128(13),
    );
    let s = alice(vec![
        acl("User:alice", Operation::Delete, ResourceType::Topic, "open"),
        acl(
            "User:alice",
            Operation::Describe,
            ResourceType::Topic,
            "open",
        ),
    ]);
    if let Some(a) = &s.authz {
        a.topic_ids.learn(open, "open");
        a.topic_ids.learn(secret, "secret");
    }
    let by_id = |id| {
        DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(id)
    };
    let req =
        DeleteTopicsRequest::default().with_topics(vec![by_id(open), by_id(secret), by_id(unseen)]);
    let (sent, fixup) = forwarded::<DeleteTopicsRequest>(
        run(&s, ApiKey::DeleteTopics, 6, &req),
        ApiKey::DeleteTopics,
        6,
    );
    let sent = sent.expect("trimmed");
    assert_eq!(sent.topics.len(), 1);
    assert_eq!(sent.topics[0].topic_id, open);
    let r = fixed(fixup.expect("fixup"), 6, &DeleteTopicsResponse::default());
    let code = |id| {
        r.responses
            .iter()
            .find(|t| t.topic_id == id)
            .map(|t| (t.error_code, t.name.clone()))
    };
    assert_eq!(
        code(secret),
        Some((29, None)),
        "no name for a topic alice may not describe"
    );
    assert_eq!(
        code(unseen),
        Some((100, None)),
        "an id kgate never learned is not forwarded"
    );
    // Only the allowed one: the original bytes go on.
    let req = DeleteTopicsRequest::default().with_topics(vec![by_id(open)]);
    assert!(matches!(
        run(&s, ApiKey::DeleteTopics, 6, &req),
        Outcome::Forward {
            request: None,
            fixup: None
        }
    ));
}
