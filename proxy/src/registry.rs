//! Every Kafka API kgate serves, declared once.
//!
//! One [`Api`] row per API says which versions kgate serves and why it stops there, who answers
//! (kgate or the broker), how a request is authorized (the function that makes Kafka's checks,
//! reference §1.1), which names it carries (for authorization, fault rules and the audit log),
//! whether its response names brokers (so that it is rewritten), and what a fault rule may do
//! to it. Everything else derives from these rows:
//!
//! - the allow-table and the ApiVersions answer ([`crate::versions::VersionTable`]);
//! - the authorization dispatch ([`crate::authz::authorize`]);
//! - which responses are rewritten ([`crate::rewrite::needs_rewrite`]);
//! - which APIs fault rules can fail, and which ones a `topic=` filter can match
//!   ([`crate::faults`]);
//! - the `kgate versions` table and the README's list of what is served.
//!
//! An API not declared here is refused (the connection is closed), and [`LEFT_OUT`] says why
//! each client API Kafka 4.1 serves is not (yet) served. Broker-internal APIs are never
//! declared: a test fails if one becomes reachable.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kafka_protocol::messages::ApiKey;

use crate::authz::{
    cluster, configs, consumer_groups, data, group_admin, groups, producers, security_admin,
    share_groups, topics, txn, AuthzError, Incoming, Outcome, Session,
};

/// Who answers a request once it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The upstream broker (the response passes through, rewritten or merged if need be).
    Broker,
    /// kgate itself, always (ApiVersions, SASL).
    Kgate,
    /// kgate itself, when it enforces a policy (ACL and SCRAM-credential administration
    /// against kgate's own files; without a policy these are not offered).
    KgatePolicy,
}

/// A kind of name a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// Consumer groups (and share groups).
    Group,
    /// Topics by name.
    Topic,
    /// Topics by id (authorized by the name kgate learned for the id).
    TopicId,
    /// Transactional ids.
    TransactionalId,
}

impl Name {
    fn label(self) -> &'static str {
        match self {
            Name::Group => "group",
            Name::Topic => "topic",
            Name::TopicId => "topic id",
            Name::TransactionalId => "transactional id",
        }
    }
}

/// What a fault rule may do to an API's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faults {
    /// Delay or disconnect only.
    Delay,
    /// Also fail it with an injected Kafka error (top-level, or everywhere).
    Error,
    /// Also fail it with an injected error per topic: a `topic=` filter matches its requests.
    ErrorByTopic,
}

/// How a request is authorized.
pub type Check = fn(&Session, &Incoming) -> Result<Outcome, AuthzError>;

/// How a request is authorized.
#[derive(Clone, Copy)]
pub enum Rule {
    /// Answered by kgate around authentication (ApiVersions, SASL): nothing to authorize.
    NoneNeeded,
    /// Kafka's checks for this API.
    Checks(Check),
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::NoneNeeded => f.write_str("NoneNeeded"),
            Rule::Checks(_) => f.write_str("Checks"),
        }
    }
}

/// The kind of upstream a version cap applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// A Kafka broker (or anything that serves what it advertises).
    Kafka,
    /// librdkafka's mock cluster (kgate's embedded cluster): it advertises some versions it
    /// cannot parse (reference dependencies.md, trap 2).
    LibrdkafkaMock,
}

impl Upstream {
    /// Recognizes the upstream from its ApiVersions answer (`api key → (min, max)`).
    ///
    /// librdkafka's mock cluster advertises ApiVersions only up to v2 together with JoinGroup
    /// v6: no Kafka release has that shape (ApiVersions v3 and JoinGroup v6 both came with
    /// Kafka 2.4), while tansu and Kafka 2.4+ advertise ApiVersions v3 or later.
    pub fn identify(versions: &BTreeMap<i16, (i16, i16)>) -> Self {
        let max = |api: ApiKey| versions.get(&(api as i16)).map(|(_, max)| *max);
        match (max(ApiKey::ApiVersions), max(ApiKey::JoinGroup)) {
            (Some(av), Some(jg)) if av <= 2 && jg >= 6 => Upstream::LibrdkafkaMock,
            _ => Upstream::Kafka,
        }
    }
}

/// A lower cap for one kind of upstream, with the reason.
#[derive(Debug, Clone, Copy)]
pub struct Quirk {
    /// The upstream it applies to.
    pub upstream: Upstream,
    /// The highest version offered to clients of that upstream.
    pub max: i16,
    /// Why.
    pub reason: &'static str,
}

/// One Kafka API as kgate serves it.
#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// The API.
    pub key: ApiKey,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served (further capped by what the upstream advertises).
    pub max: i16,
    /// Why the versions stop at `max` (or start at `min`); empty when kgate serves every
    /// version kafka-protocol parses.
    pub cap: &'static str,
    /// Who answers.
    pub answer: Answer,
    /// How a request is authorized.
    pub rule: Rule,
    /// Kafka's checks, in words (reference §1.1), for `kgate versions` and the README.
    pub checks: &'static str,
    /// The names its requests carry.
    pub names: &'static [Name],
    /// Whether its responses name brokers, so that kgate rewrites them to its own listeners.
    pub names_brokers: bool,
    /// What fault rules may do to it (`None`: nothing, kgate answers it).
    pub faults: Option<Faults>,
    /// A lower cap for one kind of upstream.
    pub quirk: Option<Quirk>,
}

impl Api {
    /// A forwarded API with Kafka's checks; the builder methods below fill in the rest.
    const fn broker(key: ApiKey, min: i16, max: i16, check: Check, checks: &'static str) -> Self {
        Api {
            key,
            min,
            max,
            cap: "",
            answer: Answer::Broker,
            rule: Rule::Checks(check),
            checks,
            names: &[],
            names_brokers: false,
            faults: Some(Faults::Delay),
            quirk: None,
        }
    }

    const fn kgate(key: ApiKey, min: i16, max: i16, answer: Answer, rule: Rule) -> Self {
        Api {
            key,
            min,
            max,
            cap: "",
            answer,
            rule,
            checks: "",
            names: &[],
            names_brokers: false,
            faults: None,
            quirk: None,
        }
    }

    const fn cap(mut self, why: &'static str) -> Self {
        self.cap = why;
        self
    }

    const fn names(mut self, names: &'static [Name]) -> Self {
        self.names = names;
        self
    }

    const fn checks(mut self, checks: &'static str) -> Self {
        self.checks = checks;
        self
    }

    const fn rewritten(mut self) -> Self {
        self.names_brokers = true;
        self
    }

    const fn faults(mut self, faults: Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    const fn quirk(mut self, upstream: Upstream, max: i16, reason: &'static str) -> Self {
        self.quirk = Some(Quirk {
            upstream,
            max,
            reason,
        });
        self
    }

    /// The highest version for an upstream of this kind.
    pub fn max_for(&self, upstream: Upstream) -> i16 {
        match self.quirk {
            Some(q) if q.upstream == upstream => q.max.min(self.max),
            _ => self.max,
        }
    }
}

use Name::{Group, Topic, TopicId, TransactionalId};

const MOCK_GROUPS: &str = "librdkafka's mock cluster advertises it but cannot parse it \
                           (kafka-python 3 groups break)";

/// Every API kgate serves, in API-key order.
#[rustfmt::skip]
pub const SERVED: &[Api] = &[
    Api::broker(ApiKey::Produce, 3, 12, data::produce,
        "Write on each topic (29 per partition); a transactional produce also needs Write on \
         its transactional id (53; from v12 it adds partitions to the transaction itself)")
        .cap("v13 names topics by id: fault rules and the merge of denied topics match topics \
             by name, so kgate stops at v12, which Kafka 4.x producers also speak")
        .names(&[Topic, TransactionalId])
        .rewritten()
        .faults(Faults::ErrorByTopic),
    Api::broker(ApiKey::Fetch, 4, 18, data::fetch,
        "Read on each topic (29 per partition; by id from v13, an id kgate has not seen gets \
         100); a follower fetch (replica id >= 0) is broker-internal and refused")
        .names(&[Topic, TopicId])
        .rewritten()
        .faults(Faults::ErrorByTopic),
    Api::broker(ApiKey::ListOffsets, 1, 10, data::list_offsets,
        "Describe on each topic (29 per partition)")
        .names(&[Topic])
        .faults(Faults::ErrorByTopic),
    Api::broker(ApiKey::Metadata, 0, 13, data::metadata,
        "Describe on each topic asked for (29; by id from v12: 100 unknown, 29 with no name \
         denied); all-topics answers filtered; auto-creation needs Create")
        .names(&[Topic, TopicId])
        .rewritten()
        .faults(Faults::ErrorByTopic),
    Api::broker(ApiKey::OffsetCommit, 2, 9, groups::offset_commit,
        "Read on the group (30), then Read on each topic (29 per partition)")
        .cap("v10 (topic ids) is beyond what kafka-protocol 0.18 parses")
        .names(&[Group, Topic])
        .faults(Faults::ErrorByTopic),
    Api::broker(ApiKey::OffsetFetch, 1, 9, groups::offset_fetch,
        "Describe on each group (30), then Describe on each topic (29; all-partitions answers \
         filtered)")
        .cap("v10 (topic ids) is beyond what kafka-protocol 0.18 parses")
        .names(&[Group, Topic])
        .faults(Faults::ErrorByTopic),
    Api::broker(ApiKey::FindCoordinator, 0, 6, groups::find_coordinator,
        "Describe on the group (30) or the transactional id (53); the share-coordinator key \
         type (v6) is broker-internal and closes the connection")
        .names(&[Group, TransactionalId])
        .rewritten()
        .faults(Faults::Error),
    Api::broker(ApiKey::JoinGroup, 0, 9, groups::membership, "Read on the group (30)")
        .names(&[Group])
        .faults(Faults::Error)
        .quirk(Upstream::LibrdkafkaMock, 5, MOCK_GROUPS),
    Api::broker(ApiKey::Heartbeat, 0, 4, groups::membership, "Read on the group (30)")
        .names(&[Group])
        .faults(Faults::Error),
    Api::broker(ApiKey::LeaveGroup, 0, 5, groups::membership, "Read on the group (30)")
        .names(&[Group])
        .faults(Faults::Error)
        .quirk(Upstream::LibrdkafkaMock, 2, MOCK_GROUPS),
    Api::broker(ApiKey::SyncGroup, 0, 5, groups::membership, "Read on the group (30)")
        .names(&[Group])
        .faults(Faults::Error)
        .quirk(Upstream::LibrdkafkaMock, 3, MOCK_GROUPS),
    Api::broker(ApiKey::DescribeGroups, 0, 5, groups::describe_groups,
        "Describe on each group (30 per group)")
        .names(&[Group]),
    Api::broker(ApiKey::ListGroups, 0, 5, groups::list_groups,
        "Describe on the cluster (quietly), else each group filtered by Describe; never an \
         error")
        .names(&[Group]),
    Api::kgate(ApiKey::SaslHandshake, 0, 1, Answer::Kgate, Rule::NoneNeeded)
        .checks("none (authentication); after it, Kafka's answer to a second handshake"),
    Api::kgate(ApiKey::ApiVersions, 0, 4, Answer::Kgate, Rule::NoneNeeded)
        .checks("none; answered before authentication too"),
    Api::broker(ApiKey::CreateTopics, 2, 7, topics::create_topics,
        "Create on the cluster (quietly) or on each topic (29); DescribeConfigs on each topic \
         for its configs")
        .names(&[Topic]),
    Api::broker(ApiKey::DeleteTopics, 1, 6, topics::delete_topics,
        "Describe and Delete on each topic (29; 3 only when describable and deletable); by id \
         (v6): an id kgate has not learned gets 100, a denied one 29 with no name unless \
         describable")
        .names(&[Topic, TopicId]),
    Api::broker(ApiKey::DeleteRecords, 0, 2, topics::delete_records,
        "Delete on each topic (29 per partition)")
        .names(&[Topic]),
    Api::broker(ApiKey::InitProducerId, 0, 5, txn::init_producer_id,
        "Write on the transactional id (53); idempotent: IdempotentWrite on the cluster or \
         Write on any topic (31)")
        .cap("v6 (KIP-939 two-phase commit, which needs TWO_PHASE_COMMIT on the transactional \
              id) is beyond what kafka-protocol 0.18 parses")
        .names(&[TransactionalId])
        .faults(Faults::Error),
    Api::broker(ApiKey::OffsetForLeaderEpoch, 2, 4, data::offset_for_leader_epoch,
        "ClusterAction on the cluster (quietly) or Describe on each topic (29)")
        .names(&[Topic]),
    Api::broker(ApiKey::AddPartitionsToTxn, 0, 3, txn::add_partitions_to_txn,
        "Write on the transactional id (53), then Write on each topic (29, the rest 55); \
         internal topics never")
        .cap("v4+ is broker-to-broker (KIP-890)")
        .names(&[TransactionalId, Topic]),
    Api::broker(ApiKey::AddOffsetsToTxn, 0, 4, txn::add_offsets_to_txn,
        "Write on the transactional id (53), then Read on the group (30)")
        .names(&[TransactionalId, Group]),
    Api::broker(ApiKey::EndTxn, 0, 5, txn::end_txn,
        "Write on the transactional id (53); v5's new producer id and epoch pass through")
        .names(&[TransactionalId]),
    Api::broker(ApiKey::TxnOffsetCommit, 0, 5, txn::txn_offset_commit,
        "Write on the transactional id (53), Read on the group (30), Read on each topic (29); \
         v5 adds the offsets to the transaction itself (KIP-890), under the same checks")
        .names(&[TransactionalId, Group, Topic]),
    Api::kgate(ApiKey::DescribeAcls, 1, 3, Answer::KgatePolicy,
        Rule::Checks(security_admin::describe_acls))
        .checks("Describe on the cluster (31); answered from kgate's policy"),
    Api::kgate(ApiKey::CreateAcls, 1, 3, Answer::KgatePolicy,
        Rule::Checks(security_admin::create_acls))
        .checks("Alter on the cluster (31); written to kgate's policy"),
    Api::kgate(ApiKey::DeleteAcls, 1, 3, Answer::KgatePolicy,
        Rule::Checks(security_admin::delete_acls))
        .checks("Alter on the cluster (31); written to kgate's policy"),
    Api::broker(ApiKey::DescribeConfigs, 1, 4, configs::describe_configs,
        "DescribeConfigs on the cluster (broker, logger, client metrics: 31), topic (29) or \
         group (30)")
        .names(&[Topic, Group]),
    Api::broker(ApiKey::AlterConfigs, 0, 2, configs::alter_configs,
        "AlterConfigs on the cluster (31), topic (29) or group (30)")
        .names(&[Topic, Group]),
    Api::broker(ApiKey::DescribeLogDirs, 1, 4, cluster::describe_log_dirs,
        "Describe on the cluster (31 from v3, else an empty answer)"),
    Api::kgate(ApiKey::SaslAuthenticate, 0, 2, Answer::Kgate, Rule::NoneNeeded)
        .checks("none (authentication); re-authentication as KIP-368"),
    Api::broker(ApiKey::CreatePartitions, 0, 3, topics::create_partitions,
        "Alter on each topic (29)")
        .names(&[Topic]),
    Api::broker(ApiKey::DeleteGroups, 0, 2, group_admin::delete_groups,
        "Delete on each group (30)")
        .names(&[Group]),
    Api::broker(ApiKey::ElectLeaders, 0, 2, cluster::elect_leaders,
        "Alter on the cluster (31)")
        .names(&[Topic]),
    Api::broker(ApiKey::IncrementalAlterConfigs, 0, 1, configs::incremental_alter_configs,
        "AlterConfigs on the cluster (31), topic (29) or group (30)")
        .names(&[Topic, Group]),
    Api::broker(ApiKey::AlterPartitionReassignments, 0, 0,
        cluster::alter_partition_reassignments, "Alter on the cluster (31)")
        .names(&[Topic]),
    Api::broker(ApiKey::ListPartitionReassignments, 0, 0,
        cluster::list_partition_reassignments, "Describe on the cluster (31)")
        .names(&[Topic]),
    Api::broker(ApiKey::OffsetDelete, 0, 0, group_admin::offset_delete,
        "Delete on the group (30), then Read on each topic (29)")
        .names(&[Group, Topic]),
    Api::broker(ApiKey::DescribeClientQuotas, 0, 1, cluster::describe_client_quotas,
        "DescribeConfigs on the cluster (31)"),
    Api::broker(ApiKey::AlterClientQuotas, 0, 1, cluster::alter_client_quotas,
        "AlterConfigs on the cluster (31)"),
    Api::kgate(ApiKey::DescribeUserScramCredentials, 0, 0, Answer::KgatePolicy,
        Rule::Checks(security_admin::describe_user_scram_credentials))
        .checks("Describe on the cluster (31); answered from kgate's credential store"),
    Api::kgate(ApiKey::AlterUserScramCredentials, 0, 0, Answer::KgatePolicy,
        Rule::Checks(security_admin::alter_user_scram_credentials))
        .checks("Alter on the cluster (31); written to kgate's credential store"),
    Api::broker(ApiKey::DescribeCluster, 0, 2, data::describe_cluster,
        "none; Describe on the cluster decides the authorized-operations mask; kgate's \
         listeners are brokers, so asking for controllers gets the broker's \
         MISMATCHED_ENDPOINT_TYPE")
        .rewritten(),
    Api::broker(ApiKey::DescribeProducers, 0, 0, producers::describe_producers,
        "Read on each topic (29 per partition)")
        .names(&[Topic]),
    Api::broker(ApiKey::DescribeTransactions, 0, 0, producers::describe_transactions,
        "Describe on each transactional id (53); topics filtered by Describe")
        .names(&[TransactionalId, Topic]),
    Api::broker(ApiKey::ListTransactions, 0, 2, producers::list_transactions,
        "each id filtered by Describe on it; never an error (v2's regex only narrows the list)")
        .names(&[TransactionalId]),
    Api::broker(ApiKey::ConsumerGroupHeartbeat, 0, 1, consumer_groups::heartbeat,
        "Read on the group (30), Describe on every subscribed topic (29 for the whole \
         request); a regex subscription is refused (42, KAFKA-18813)")
        .names(&[Group, Topic])
        .faults(Faults::Error),
    Api::broker(ApiKey::ConsumerGroupDescribe, 0, 1, consumer_groups::describe,
        "Describe on each group (30); a group whose assignments name a topic the caller may \
         not describe gets 29 and no members")
        .names(&[Group, Topic]),
    Api::broker(ApiKey::ListConfigResources, 0, 1, configs::list_config_resources,
        "DescribeConfigs on the cluster (31); kgate's own state topic is left out of the list")
        .names(&[Topic, Group]),
    Api::broker(ApiKey::DescribeTopicPartitions, 0, 0, topics::describe_topic_partitions,
        "Describe on each topic (29, zero id); all-topics answers filtered")
        .names(&[Topic]),
    Api::broker(ApiKey::ShareGroupHeartbeat, 1, 1, share_groups::heartbeat,
        "Read on the group (30), Describe on every subscribed topic (29 for the whole request)")
        .names(&[Group, Topic])
        .cap(SHARE_V1),
    Api::broker(ApiKey::ShareGroupDescribe, 1, 1, share_groups::describe,
        "Describe on each group (30); a group whose assignments name a topic the caller may \
         not describe gets 29 and no members")
        .names(&[Group, Topic])
        .cap(SHARE_V1),
    Api::broker(ApiKey::ShareFetch, 1, 1, share_groups::fetch,
        "Read on the group (30), Read on each topic named or cached in the share session (29 \
         per partition; a revoked topic is forgotten by the session; by id, 100 unknown); a \
         session not opened through this connection gets 122")
        .names(&[Group, TopicId])
        .cap(SHARE_V1)
        .rewritten(),
    Api::broker(ApiKey::ShareAcknowledge, 1, 1, share_groups::acknowledge,
        "Read on the group (30), Read on each topic (29 per partition; by id, 100 unknown)")
        .names(&[Group, TopicId])
        .cap(SHARE_V1)
        .rewritten(),
    Api::broker(ApiKey::DescribeShareGroupOffsets, 0, 0, share_groups::describe_offsets,
        "Describe on each group (30), Describe on each topic (29 per partition; all-topics \
         answers filtered)")
        .names(&[Group, Topic]),
    Api::broker(ApiKey::AlterShareGroupOffsets, 0, 0, share_groups::alter_offsets,
        "Read on the group (30 for the whole request), Read on each topic (29 per partition)")
        .names(&[Group, Topic]),
    Api::broker(ApiKey::DeleteShareGroupOffsets, 0, 0, share_groups::delete_offsets,
        "Delete on the group (30 for the whole request), Read on each topic (29 per topic)")
        .names(&[Group, Topic]),
];

/// Why the share-group member APIs start and stop at v1.
const SHARE_V1: &str = "v1 only: v0 was Kafka 4.0's early-access protocol, which kafka-protocol \
     0.18 no longer parses";

/// Client APIs of Kafka 4.1 that kgate does not serve, with the reason.
#[rustfmt::skip]
pub const LEFT_OUT: &[(ApiKey, &str)] = &[
    (ApiKey::AlterReplicaLogDirs,
        "moves replicas between a broker's disks: operators use the brokers directly"),
    (ApiKey::CreateDelegationToken,
        "delegation tokens authenticate to brokers, which kgate's clients never reach"),
    (ApiKey::RenewDelegationToken, "as CreateDelegationToken"),
    (ApiKey::ExpireDelegationToken, "as CreateDelegationToken"),
    (ApiKey::DescribeDelegationToken, "as CreateDelegationToken"),
    (ApiKey::DescribeQuorum, "a controller API: operators use the controllers directly"),
    (ApiKey::UpdateFeatures, "changes cluster features: operators use the brokers directly"),
    (ApiKey::UnregisterBroker, "cluster membership: operators use the brokers directly"),
    (ApiKey::GetTelemetrySubscriptions,
        "KIP-714 telemetry: the broker would attribute it to kgate's connection, not the \
         client's; clients run without it"),
    (ApiKey::PushTelemetry, "as GetTelemetrySubscriptions"),
    (ApiKey::AddRaftVoter, "a controller API: operators use the controllers directly"),
    (ApiKey::RemoveRaftVoter, "a controller API: operators use the controllers directly"),
];

/// Broker-internal and controller-only APIs (reference §1.2): never served to clients.
///
/// The ZooKeeper-era LeaderAndIsr, StopReplica, UpdateMetadata and ControlledShutdown (keys
/// 4–7) are unknown to kafka-protocol 0.18, so they are refused as unknown keys; so are the
/// streams-group APIs (KIP-1071), whose source-topic regex would be resolved with kgate's
/// identity as ConsumerGroupHeartbeat's (KAFKA-18813).
pub const INTERNAL: &[ApiKey] = &[
    ApiKey::WriteTxnMarkers,
    ApiKey::Vote,
    ApiKey::BeginQuorumEpoch,
    ApiKey::EndQuorumEpoch,
    ApiKey::AlterPartition,
    ApiKey::Envelope,
    ApiKey::FetchSnapshot,
    ApiKey::BrokerRegistration,
    ApiKey::BrokerHeartbeat,
    ApiKey::AllocateProducerIds,
    ApiKey::ControllerRegistration,
    ApiKey::AssignReplicasToDirs,
    ApiKey::UpdateRaftVoter,
    ApiKey::InitializeShareGroupState,
    ApiKey::ReadShareGroupState,
    ApiKey::WriteShareGroupState,
    ApiKey::DeleteShareGroupState,
    ApiKey::ReadShareGroupStateSummary,
];

/// The declaration of an API, if kgate serves it.
pub fn find(key: ApiKey) -> Option<&'static Api> {
    SERVED.iter().find(|api| api.key == key)
}

/// Why kgate does not serve an API.
pub fn why_not(key: ApiKey) -> &'static str {
    if INTERNAL.contains(&key) {
        return "broker-internal: never offered, the connection is closed";
    }
    LEFT_OUT
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("not modelled", |(_, why)| why)
}

/// Whether responses of this API name brokers.
pub fn names_brokers(key: ApiKey) -> bool {
    find(key).is_some_and(|api| api.names_brokers)
}

/// The APIs fault rules can fail with an injected error.
pub fn error_apis() -> impl Iterator<Item = ApiKey> {
    SERVED
        .iter()
        .filter(|a| matches!(a.faults, Some(Faults::Error | Faults::ErrorByTopic)))
        .map(|a| a.key)
}

/// Whether a fault rule's `topic=` filter can match this API's requests.
pub fn faults_by_topic(key: ApiKey) -> bool {
    find(key).is_some_and(|a| a.faults == Some(Faults::ErrorByTopic))
}

/// Whether kgate answers this API itself (fault rules never touch it).
pub fn answered_by_kgate(key: ApiKey) -> bool {
    find(key).is_some_and(|a| a.answer != Answer::Broker)
}

fn answer_label(answer: Answer) -> &'static str {
    match answer {
        Answer::Broker => "broker",
        Answer::Kgate => "kgate",
        Answer::KgatePolicy => "kgate (policy)",
    }
}

/// The table `kgate versions` prints: one line per API served (versions, who answers, the
/// checks, the names carried, whether the answer is rewritten, why the versions stop there),
/// then the APIs left out with the reason. Markdown, so that the README can show it as is.
pub fn table() -> String {
    let mut out = String::new();
    out.push_str(
        "| Key | API | Versions | Answered by | Checks (Kafka's) | Names | Why it stops there |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    for api in SERVED {
        let names: Vec<&str> = api.names.iter().map(|n| n.label()).collect();
        let mut answered = answer_label(api.answer).to_owned();
        if api.names_brokers {
            answered.push_str(", brokers rewritten");
        }
        let mut cap = api.cap.to_owned();
        if let Some(q) = api.quirk {
            if !cap.is_empty() {
                cap.push_str("; ");
            }
            let _ = write!(
                cap,
                "at most v{} against librdkafka's mock cluster: {}",
                q.max, q.reason
            );
        }
        let _ = writeln!(
            out,
            "| {} | {:?} | {}–{} | {} | {} | {} | {} |",
            api.key as i16,
            api.key,
            api.min,
            api.max,
            answered,
            api.checks,
            names.join(", "),
            cap
        );
    }
    out.push_str("\nNot served (the connection is closed if a client sends one):\n\n");
    out.push_str("| Key | API | Why |\n|---|---|---|\n");
    for (key, why) in LEFT_OUT {
        let _ = writeln!(out, "| {} | {:?} | {} |", *key as i16, key, why);
    }
    let internal: Vec<String> = INTERNAL.iter().map(|k| format!("{k:?}")).collect();
    let _ = writeln!(
        out,
        "\nBroker-internal, never offered: {}.",
        internal.join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_api_has_an_authorization_rule() {
        for api in SERVED {
            match api.rule {
                Rule::NoneNeeded => assert!(
                    matches!(
                        api.key,
                        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
                    ),
                    "{:?} is served without an authorization rule",
                    api.key
                ),
                Rule::Checks(_) => assert!(
                    !api.checks.is_empty(),
                    "{:?}: say which checks it makes",
                    api.key
                ),
            }
            assert!(
                api.answer == Answer::Broker || api.faults.is_none(),
                "{:?}: kgate answers it, faults cannot touch it",
                api.key
            );
        }
    }

    #[test]
    fn no_broker_internal_api_is_served() {
        for key in INTERNAL {
            assert!(find(*key).is_none(), "{key:?} is broker-internal");
        }
        // Fetch from a follower and AddPartitionsToTxn v4+ are internal uses of client APIs.
        let fetch = find(ApiKey::Fetch).map(|a| a.rule);
        assert!(matches!(fetch, Some(Rule::Checks(_))));
        assert!(find(ApiKey::AddPartitionsToTxn).is_some_and(|a| a.max <= 3));
        assert!(find(ApiKey::FindCoordinator).is_some_and(|a| a.max <= 6));
    }

    #[test]
    fn every_api_is_declared_once_and_in_key_order() {
        let keys: Vec<i16> = SERVED.iter().map(|a| a.key as i16).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(keys, sorted);
        for (key, _) in LEFT_OUT {
            assert!(find(*key).is_none(), "{key:?} is both served and left out");
            assert!(!INTERNAL.contains(key));
        }
    }

    #[test]
    fn every_kafka_api_is_served_left_out_or_internal() {
        for key in ApiKey::iter() {
            let known = find(key).is_some()
                || INTERNAL.contains(&key)
                || LEFT_OUT.iter().any(|(k, _)| *k == key);
            assert!(
                known,
                "{key:?} is neither served, left out with a reason, nor internal"
            );
        }
    }

    #[test]
    fn versions_stay_within_what_the_library_parses() {
        for api in SERVED {
            let lib = api.key.valid_versions();
            assert!(api.min >= lib.min && api.max <= lib.max, "{:?}", api.key);
            assert!(api.min <= api.max, "{:?}", api.key);
        }
    }

    #[test]
    fn the_mock_cluster_is_recognized_by_its_api_versions() {
        let mut mock = BTreeMap::new();
        mock.insert(ApiKey::ApiVersions as i16, (0, 2));
        mock.insert(ApiKey::JoinGroup as i16, (0, 6));
        assert_eq!(Upstream::identify(&mock), Upstream::LibrdkafkaMock);
        mock.insert(ApiKey::ApiVersions as i16, (0, 4));
        assert_eq!(Upstream::identify(&mock), Upstream::Kafka);
        mock.insert(ApiKey::ApiVersions as i16, (0, 2));
        mock.insert(ApiKey::JoinGroup as i16, (0, 5));
        assert_eq!(Upstream::identify(&mock), Upstream::Kafka);
    }
}
