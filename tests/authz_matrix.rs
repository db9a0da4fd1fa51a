//! Kafka's AuthorizerIntegrationTest checklist through kgate: for each client API, one
//! request without the needed ACL and one with the minimal ACL, with Kafka's exact error
//! codes. Requests are sent raw (kafka-protocol) over SASL/PLAIN to a gateway in front of the
//! embedded cluster, so the codes seen are the ones kgate and the cluster put on the wire.

mod common;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kgate_policies::{
    AclBinding, Host, Operation, Permission, Policy, Principal, ResourcePattern, ResourceType,
};

use common::raw::RawClient;

const TOPIC: &str = "t";
const GROUP: &str = "g";
const TXN: &str = "tx";

/// The upstream behind kgate: the embedded cluster, or tansu (a Kafka-compatible broker).
enum Upstream {
    Embedded(kgate_labs::EmbeddedCluster),
    Tansu(common::tansu::Tansu),
}

/// APIs the embedded cluster does not serve (kgate does not offer them in front of it): each
/// is checked against tansu instead.
const EMBEDDED_LACKS: &[(ApiKey, &str)] = &[
    (
        ApiKey::DescribeGroups,
        "librdkafka's mock cluster has no DescribeGroups",
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        "librdkafka's mock cluster has no ConsumerGroupDescribe",
    ),
];
/// APIs tansu 0.6.0 does not serve: each is checked against the embedded cluster instead.
const TANSU_LACKS: &[(ApiKey, &str)] = &[
    (ApiKey::EndTxn, "tansu 0.6.0 has no EndTxn"),
    (
        ApiKey::ConsumerGroupHeartbeat,
        "tansu 0.6.0 has no ConsumerGroupHeartbeat",
    ),
    (
        ApiKey::OffsetForLeaderEpoch,
        "tansu 0.6.0 has no OffsetForLeaderEpoch",
    ),
];

struct Env {
    upstream: Upstream,
    _dir: tempfile::TempDir,
    gateway: kgate_proxy::Gateway,
    authz: Arc<kgate_proxy::authz::Authz>,
}

async fn env() -> Env {
    start_env(Upstream::Embedded(common::cluster_with_topic(TOPIC, 3))).await
}

async fn tansu_env() -> Env {
    let tansu = tokio::task::spawn_blocking(|| common::tansu::Tansu::start(&[(TOPIC, 3)]))
        .await
        .expect("join");
    start_env(Upstream::Tansu(tansu)).await
}

async fn start_env(upstream: Upstream) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let bootstrap = match &upstream {
        Upstream::Embedded(c) => c
            .bootstrap_servers()
            .split(',')
            .map(str::to_owned)
            .collect(),
        Upstream::Tansu(t) => vec![t.bootstrap()],
    };
    let mut config =
        kgate_proxy::GatewayConfig::new("127.0.0.1:0".parse().expect("addr"), bootstrap);
    config.refresh_interval = std::time::Duration::from_secs(3600);
    config.sasl.authenticator = Some(common::authenticator(dir.path()));
    let authz = common::authz(dir.path(), "");
    config.authz = Some(authz.clone());
    let (gateway, _) = common::start_gateway(config).await;
    Env {
        upstream,
        _dir: dir,
        gateway,
        authz,
    }
}

impl Env {
    fn name(&self) -> &'static str {
        match self.upstream {
            Upstream::Embedded(_) => "the embedded cluster",
            Upstream::Tansu(_) => "tansu",
        }
    }

    /// What this upstream does not serve, and why.
    fn lacks(&self) -> &'static [(ApiKey, &'static str)] {
        match self.upstream {
            Upstream::Embedded(_) => EMBEDDED_LACKS,
            Upstream::Tansu(_) => TANSU_LACKS,
        }
    }

    fn reset(&self) {
        let empty = Policy::parse("", "policy.toml".as_ref()).expect("empty policy");
        self.authz.authorizer.replace(empty).expect("reset policy");
    }

    fn grant(&self, resource_type: ResourceType, name: &str, operation: Operation) {
        let principal: Principal = "User:alice".parse().expect("principal");
        let acl = AclBinding {
            pattern: ResourcePattern::literal(resource_type, name).expect("pattern"),
            principal,
            host: Host::Any,
            operation,
            permission: Permission::Allow,
        };
        self.authz
            .authorizer
            .create_acls(vec![acl])
            .expect("create acl");
    }

    async fn alice(&self) -> RawClient {
        RawClient::login(&self.gateway.bootstrap_servers(), "alice", "alice-secret").await
    }
}

fn n(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn batch() -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch");
    buf.freeze()
}

async fn produce(c: &mut RawClient) -> i16 {
    // The highest version each upstream serves (v10+ answers may name leaders: rewritten).
    let v = c.version(ApiKey::Produce, 12);
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(n(TOPIC)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch())),
            ])]);
    let r: ProduceResponse = c.call(ApiKey::Produce, v, &req).await;
    r.responses[0].partition_responses[0].error_code
}

async fn fetch(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::Fetch, 11);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(10)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(n(TOPIC)))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, v, &req).await;
    r.responses[0].partitions[0].error_code
}

async fn list_offsets(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::ListOffsets, 5);
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(n(TOPIC)))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(-1),
            ])]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, v, &req).await;
    r.topics[0].partitions[0].error_code
}

async fn metadata(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::Metadata, 9);
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(n(TOPIC)))),
    ]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, v, &req).await;
    r.topics[0].error_code
}

async fn offset_commit(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::OffsetCommit, 7);
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(n(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(n(TOPIC)))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0),
                ]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, v, &req).await;
    r.topics[0].partitions[0].error_code
}

async fn offset_fetch(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::OffsetFetch, 7);
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(n(GROUP)))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(n(TOPIC)))
                .with_partition_indexes(vec![0]),
        ]));
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, v, &req).await;
    if r.error_code != 0 {
        return r.error_code;
    }
    r.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(0, |p| p.error_code)
}

async fn find_coordinator(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::FindCoordinator, 3);
    let req = FindCoordinatorRequest::default()
        .with_key(n(GROUP))
        .with_key_type(0);
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, v, &req).await;
    if v >= 4 {
        r.coordinators[0].error_code
    } else {
        r.error_code
    }
}

async fn join_group(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::JoinGroup, 5);
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(n(GROUP)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(n("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(n("range"))]);
    group_error_code::<JoinGroupResponse, _>(c, ApiKey::JoinGroup, v, &req).await
}

async fn heartbeat(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::Heartbeat, 3);
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(n(GROUP)))
        .with_generation_id(1)
        .with_member_id(n("m"));
    group_error_code::<HeartbeatResponse, _>(c, ApiKey::Heartbeat, v, &req).await
}

async fn leave_group(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::LeaveGroup, 2);
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(n(GROUP)))
        .with_member_id(n("m"));
    group_error_code::<LeaveGroupResponse, _>(c, ApiKey::LeaveGroup, v, &req).await
}

async fn sync_group(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::SyncGroup, 3);
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(n(GROUP)))
        .with_generation_id(1)
        .with_member_id(n("m"));
    group_error_code::<SyncGroupResponse, _>(c, ApiKey::SyncGroup, v, &req).await
}

async fn describe_groups(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::DescribeGroups, 4);
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(n(GROUP))]);
    let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, v, &req).await;
    r.groups[0].error_code
}

async fn init_producer_id_txn(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::InitProducerId, 3);
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(n(TXN))))
        .with_transaction_timeout_ms(10_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, v, &req).await;
    r.error_code
}

async fn init_producer_id_idempotent(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::InitProducerId, 3);
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(10_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, v, &req).await;
    r.error_code
}

async fn add_partitions_to_txn(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::AddPartitionsToTxn, 3);
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(n(TXN)))
        .with_v3_and_below_producer_id(ProducerId(1))
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(TopicName(n(TOPIC)))
                .with_partitions(vec![0]),
        ]);
    let r: AddPartitionsToTxnResponse = c.call(ApiKey::AddPartitionsToTxn, v, &req).await;
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn add_offsets_to_txn(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::AddOffsetsToTxn, 2);
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(n(TXN)))
        .with_producer_id(ProducerId(1))
        .with_group_id(GroupId(n(GROUP)));
    let r: AddOffsetsToTxnResponse = c.call(ApiKey::AddOffsetsToTxn, v, &req).await;
    r.error_code
}

async fn end_txn(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::EndTxn, 2);
    let req = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(n(TXN)))
        .with_producer_id(ProducerId(1));
    let r: EndTxnResponse = c.call(ApiKey::EndTxn, v, &req).await;
    r.error_code
}

async fn txn_offset_commit(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::TxnOffsetCommit, 3);
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(n(TXN)))
        .with_group_id(GroupId(n(GROUP)))
        .with_producer_id(ProducerId(1))
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(n(TOPIC)))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0),
                ]),
        ]);
    let r: TxnOffsetCommitResponse = c.call(ApiKey::TxnOffsetCommit, v, &req).await;
    r.topics[0].partitions[0].error_code
}

async fn offset_for_leader_epoch(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::OffsetForLeaderEpoch, 3);
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(TopicName(n(TOPIC)))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0),
                ]),
        ]);
    let r: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, v, &req).await;
    r.topics[0].partitions[0].error_code
}

/// The error code of a group response (JoinGroup, Heartbeat, LeaveGroup, SyncGroup). A closed
/// connection fails the case. librdkafka's mock cluster puts nulls where the schema has none in
/// some answers (JoinGroup v5 protocol_name, SyncGroup v3 assignment), so such an answer does
/// not decode; every one of these responses (at the versions used, v1 and later) starts with
/// throttle_time_ms (int32) then error_code (int16), and the code is read from there. A
/// denial comes from kgate, so it must decode.
async fn consumer_group_heartbeat(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::ConsumerGroupHeartbeat, 1);
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(n("g848")))
        .with_member_id(n("m848-0000000000000"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![TopicName(n(TOPIC))]))
        .with_topic_partitions(Some(Vec::new()));
    let r: ConsumerGroupHeartbeatResponse = c.call(ApiKey::ConsumerGroupHeartbeat, v, &req).await;
    r.error_code
}

async fn consumer_group_describe(c: &mut RawClient) -> i16 {
    let v = c.version(ApiKey::ConsumerGroupDescribe, 0);
    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(n("g848"))]);
    let r: ConsumerGroupDescribeResponse = c.call(ApiKey::ConsumerGroupDescribe, v, &req).await;
    r.groups[0].error_code
}

async fn group_error_code<Resp: Decodable, Req: Encodable>(
    c: &mut RawClient,
    api: ApiKey,
    v: i16,
    req: &Req,
) -> i16 {
    assert!(
        v >= 1,
        "{api:?} v{v} has no throttle_time_ms in front of its error code"
    );
    let body = c.call_bytes(api, v, req).await.unwrap_or_else(|e| {
        panic!("{api:?} v{v}: the connection closed instead of answering: {e}")
    });
    assert!(
        body.len() >= 6,
        "{api:?} v{v}: a response of {} bytes",
        body.len()
    );
    let code = i16::from_be_bytes([body[4], body[5]]);
    if AUTH_CODES.contains(&code) {
        // A denial is kgate's own answer: it must decode.
        if let Err(e) = Resp::decode(&mut body.clone(), v) {
            panic!("{api:?} v{v}: kgate's denial ({code}) does not decode: {e}");
        }
    }
    code
}

type Grant = (ResourceType, &'static str, Operation);

/// One row: the API, the request, then (grant, code seen before that grant) in order; after
/// the last grant the code must be none of the authorization codes.
struct Case {
    api: ApiKey,
    steps: Vec<(Grant, i16)>,
}

const AUTH_CODES: [i16; 4] = [29, 30, 31, 53];

/// Runs one case in its own task, so that a failure (a wrong code, a closed connection) is
/// recorded in `$failures` and the other cases still run.
macro_rules! run_case {
    ($env:expr, $failures:expr, $case:expr, $f:ident) => {{
        let case: Case = $case;
        let api = case.api;
        let env = Arc::clone(&$env);
        let outcome = tokio::spawn(async move {
            env.reset();
            let mut client = env.alice().await;
            let offered = client.versions.contains_key(&(case.api as i16));
            match (
                env.lacks().iter().find(|(api, _)| *api == case.api),
                offered,
            ) {
                (None, true) => {
                    for ((rt, name, op), expected) in &case.steps {
                        let code = $f(&mut client).await;
                        if code != *expected {
                            return Err(format!(
                                "got {code}, expected {expected} before granting {op:?} on \
                                 {rt:?}:{name}"
                            ));
                        }
                        env.grant(*rt, name, *op);
                    }
                    let code = $f(&mut client).await;
                    if AUTH_CODES.contains(&code) {
                        return Err(format!("with the minimal ACLs, still got {code}"));
                    }
                    Ok(())
                }
                (Some((_, why)), false) => {
                    eprintln!(
                        "{:?}: not served by {} ({why}); checked against the other upstream",
                        case.api,
                        env.name()
                    );
                    Ok(())
                }
                (None, false) => Err("not offered by kgate".to_owned()),
                (Some(_), true) => {
                    Err("offered: take it off the list of what this upstream lacks".to_owned())
                }
            }
        })
        .await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(join) => Some(match join.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".to_owned()),
                Err(e) => e.to_string(),
            }),
        };
        if let Some(f) = failure {
            $failures.push(format!("{api:?} in front of {}: {f}", $env.name()));
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_api_is_denied_without_its_acl_and_allowed_with_the_minimal_one() {
    let e = Arc::new(env().await);
    every_case(&e).await;
}

/// The same cases in front of tansu: what the embedded cluster lacks is checked here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_api_is_denied_and_allowed_in_front_of_tansu() {
    let e = Arc::new(tansu_env().await);
    every_case(&e).await;
}

#[test]
fn every_case_runs_against_at_least_one_upstream() {
    for (api, _) in EMBEDDED_LACKS {
        assert!(
            !TANSU_LACKS.iter().any(|(other, _)| other == api),
            "{api:?} is served by neither upstream: its case would never run"
        );
    }
}

/// Every case, then one failure listing each case that failed.
async fn every_case(e: &Arc<Env>) {
    use Operation::*;
    use ResourceType::{Cluster, Group, Topic, TransactionalId as Txn};
    let mut failures: Vec<String> = Vec::new();
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::Produce,
            steps: vec![((Topic, TOPIC, Write), 29)]
        },
        produce
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::Fetch,
            steps: vec![((Topic, TOPIC, Read), 29)]
        },
        fetch
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::ListOffsets,
            steps: vec![((Topic, TOPIC, Describe), 29)]
        },
        list_offsets
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::Metadata,
            steps: vec![((Topic, TOPIC, Describe), 29)]
        },
        metadata
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::OffsetCommit,
            steps: vec![((Group, GROUP, Read), 30), ((Topic, TOPIC, Read), 29)]
        },
        offset_commit
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::OffsetFetch,
            steps: vec![
                ((Group, GROUP, Describe), 30),
                ((Topic, TOPIC, Describe), 29)
            ]
        },
        offset_fetch
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::FindCoordinator,
            steps: vec![((Group, GROUP, Describe), 30)]
        },
        find_coordinator
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::JoinGroup,
            steps: vec![((Group, GROUP, Read), 30)]
        },
        join_group
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::Heartbeat,
            steps: vec![((Group, GROUP, Read), 30)]
        },
        heartbeat
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::LeaveGroup,
            steps: vec![((Group, GROUP, Read), 30)]
        },
        leave_group
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::SyncGroup,
            steps: vec![((Group, GROUP, Read), 30)]
        },
        sync_group
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::DescribeGroups,
            steps: vec![((Group, GROUP, Describe), 30)]
        },
        describe_groups
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::InitProducerId,
            steps: vec![((Txn, TXN, Write), 53)]
        },
        init_producer_id_txn
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::InitProducerId,
            steps: vec![((Topic, TOPIC, Write), 31)]
        },
        init_producer_id_idempotent
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::AddPartitionsToTxn,
            steps: vec![((Txn, TXN, Write), 53), ((Topic, TOPIC, Write), 29)]
        },
        add_partitions_to_txn
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::AddOffsetsToTxn,
            steps: vec![((Txn, TXN, Write), 53), ((Group, GROUP, Read), 30)]
        },
        add_offsets_to_txn
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::EndTxn,
            steps: vec![((Txn, TXN, Write), 53)]
        },
        end_txn
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::TxnOffsetCommit,
            steps: vec![
                ((Txn, TXN, Write), 53),
                ((Group, GROUP, Read), 30),
                ((Topic, TOPIC, Read), 29)
            ]
        },
        txn_offset_commit
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::OffsetForLeaderEpoch,
            steps: vec![((Topic, TOPIC, Describe), 29)]
        },
        offset_for_leader_epoch
    );
    // KIP-848: READ on the group, then DESCRIBE on every subscribed topic (Kafka 4.0+).
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::ConsumerGroupHeartbeat,
            steps: vec![((Group, "g848", Read), 30), ((Topic, TOPIC, Describe), 29)]
        },
        consumer_group_heartbeat
    );
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::ConsumerGroupDescribe,
            steps: vec![((Group, "g848", Describe), 30)]
        },
        consumer_group_describe
    );
    // Idempotent producers may also use IDEMPOTENT_WRITE on the cluster instead of a topic WRITE.
    run_case!(
        e,
        failures,
        Case {
            api: ApiKey::InitProducerId,
            steps: vec![((Cluster, "kafka-cluster", IdempotentWrite), 31)]
        },
        init_producer_id_idempotent
    );
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_denials_keep_the_allowed_part_and_hide_existence() {
    let e = env().await;
    e.reset();
    e.grant(ResourceType::Topic, TOPIC, Operation::Write);
    let mut c = e.alice().await;
    // One request with an allowed and a denied topic: the allowed one is written.
    let v = c.version(ApiKey::Produce, 7);
    let part = |name: &'static str| {
        produce_request::TopicProduceData::default()
            .with_name(TopicName(n(name)))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch()))])
    };
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![part(TOPIC), part("secret")]);
    let r: ProduceResponse = c.call(ApiKey::Produce, v, &req).await;
    let code = |name: &str| {
        r.responses
            .iter()
            .find(|t| &*t.name.0 == name)
            .map(|t| t.partition_responses[0].error_code)
    };
    assert_eq!(code("secret"), Some(29));
    assert_ne!(code(TOPIC), Some(29));
    assert!(code(TOPIC).is_some());
    // A topic that does not exist and one that exists look the same without DESCRIBE.
    let v = c.version(ApiKey::Metadata, 9);
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(n("no_such_topic"))))]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, v, &req).await;
    assert_eq!(r.topics[0].error_code, 29);
    assert!(r.topics[0].partitions.is_empty());
    e.gateway.shutdown().await;
}

/// Topics named by id (Metadata v12, Fetch v13+): authorized by the name kgate learned for the
/// id from a Metadata answer; an id kgate has not seen is UNKNOWN_TOPIC_ID, never forwarded.
async fn topic_ids_are_authorized_by_name(e: &Env) {
    use ResourceType::Topic;
    e.reset();
    let mut c = e.alice().await;
    let mv = c.version(ApiKey::Metadata, 12);
    let fv = c.version(ApiKey::Fetch, 13);
    assert_eq!((mv, fv), (12, 13), "in front of {}", e.name());
    let by_name = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(n(TOPIC)))),
    ]));
    let by_id = |id| {
        MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id),
        ]))
    };
    let unseen = uuid::Uuid::from_u128(0x6b67_6174_6500_0000_0000_0000_0000_0001);
    // Not seen by kgate: looked up as asked, and the broker knows no such id (Kafka: 100;
    // tansu 0.6.0 answers 3).
    let r: MetadataResponse = c.call(ApiKey::Metadata, mv, &by_id(unseen)).await;
    assert!([3, 100].contains(&r.topics[0].error_code), "{}", e.name());
    assert_eq!(r.topics[0].name, None);
    e.grant(Topic, TOPIC, Operation::Describe);
    let r: MetadataResponse = c.call(ApiKey::Metadata, mv, &by_name).await;
    assert_eq!(r.topics[0].error_code, 0, "{}", e.name());
    let id = r.topics[0].topic_id;
    assert!(!id.is_nil(), "{} gives no topic id", e.name());
    let fetch = |id| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(10)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(1 << 20)])])
    };
    // Known id, DESCRIBE but no READ: 29, the id echoed.
    let r: FetchResponse = c.call(ApiKey::Fetch, fv, &fetch(id)).await;
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(r.responses[0].partitions[0].error_code, 29, "{}", e.name());
    let r: FetchResponse = c.call(ApiKey::Fetch, fv, &fetch(unseen)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 100, "{}", e.name());
    e.grant(Topic, TOPIC, Operation::Read);
    // Allowed: forwarded by id, the broker's answer passed on as bytes (tansu's carries a
    // tagged field kafka-protocol 0.18 refuses at v13; kgate never decodes it).
    match c
        .try_call::<_, FetchResponse>(ApiKey::Fetch, fv, &fetch(id))
        .await
    {
        Ok(r) => {
            let code = r.responses[0].partitions[0].error_code;
            assert!(
                !AUTH_CODES.contains(&code) && code != 100,
                "{}: {code}",
                e.name()
            );
        }
        Err(err) => assert!(err.contains("Tag"), "{}: {err}", e.name()),
    }
    // The newest Fetch both sides serve (tansu: v17, whose answers kgate walks for leader
    // endpoints without decoding them): the same checks.
    let newest = c.version(ApiKey::Fetch, 18);
    if newest >= 16 {
        let r: FetchResponse = c.call(ApiKey::Fetch, newest, &fetch(id)).await;
        let code = r.responses[0].partitions[0].error_code;
        assert!(
            !AUTH_CODES.contains(&code) && code != 100,
            "{} v{newest}: {code}",
            e.name()
        );
        let r: FetchResponse = c.call(ApiKey::Fetch, newest, &fetch(unseen)).await;
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            100,
            "{} v{newest}",
            e.name()
        );
    }
    // Metadata by id: the name when describable; 29 with no name once it is not.
    let r: MetadataResponse = c.call(ApiKey::Metadata, mv, &by_id(id)).await;
    assert_eq!(r.topics[0].error_code, 0, "{}", e.name());
    e.reset();
    let r: MetadataResponse = c.call(ApiKey::Metadata, mv, &by_id(id)).await;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, 29, "{}", e.name());
    assert_eq!(r.topics[0].name, None);
    assert_eq!(r.topics[0].topic_id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_by_id_are_authorized_by_their_name() {
    let e = env().await;
    topic_ids_are_authorized_by_name(&e).await;
    e.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_by_id_are_authorized_by_their_name_in_front_of_tansu() {
    let e = tansu_env().await;
    topic_ids_are_authorized_by_name(&e).await;
    e.gateway.shutdown().await;
}
