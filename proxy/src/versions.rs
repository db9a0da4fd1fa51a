//! Which APIs and versions kgate accepts, and the ApiVersions answer it gives.
//!
//! kgate never forwards a request it has no model for. The allow-table below names every
//! client API kgate can authorize and, where needed, rewrite, with the version range it
//! understands. What a client is offered is the intersection of that table, what the
//! kafka-protocol crate can parse, and what the upstream cluster supports. Broker-internal
//! APIs (LeaderAndIsr, Envelope, BrokerHeartbeat, ...) are absent, so they are refused.

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// Where a request goes once it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by kgate itself (ApiVersions, SASL, ACL and SCRAM administration).
    Local,
    /// Sent to the upstream broker of the connection, its response possibly rewritten.
    Forward,
}

/// One row of the allow-table.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// The API.
    pub api: ApiKey,
    /// Lowest version kgate accepts.
    pub min: i16,
    /// Highest version kgate accepts; the comment beside each row says why it stops there.
    pub max: i16,
    /// Local or forwarded.
    pub route: Route,
}

const fn fwd(api: ApiKey, min: i16, max: i16) -> Allowed {
    Allowed {
        api,
        min,
        max,
        route: Route::Forward,
    }
}

const fn local(api: ApiKey, min: i16, max: i16) -> Allowed {
    Allowed {
        api,
        min,
        max,
        route: Route::Local,
    }
}

/// The allow-table. Caps are deliberate: a crate upgrade must never let through a version
/// with topic IDs or broker-address fields that kgate does not handle.
pub const ALLOW_TABLE: &[Allowed] = &[
    fwd(ApiKey::Produce, 3, 9), // v10+ adds node endpoints to the response
    fwd(ApiKey::Fetch, 4, 12),  // v13+ names topics by ID
    fwd(ApiKey::ListOffsets, 1, 10), //
    fwd(ApiKey::Metadata, 0, 11), // v12+ may name topics by ID
    fwd(ApiKey::OffsetCommit, 2, 9), // v10 names topics by ID
    fwd(ApiKey::OffsetFetch, 1, 9), // v10 names topics by ID
    fwd(ApiKey::FindCoordinator, 0, 5), // v6 adds the internal SHARE key type
    fwd(ApiKey::JoinGroup, 0, 5), // librdkafka's mock cluster cannot parse v6
    fwd(ApiKey::Heartbeat, 0, 4),
    fwd(ApiKey::LeaveGroup, 0, 2), // the mock cluster cannot parse v3+
    fwd(ApiKey::SyncGroup, 0, 3),  // the mock cluster cannot parse v4
    fwd(ApiKey::DescribeGroups, 0, 5),
    fwd(ApiKey::ListGroups, 0, 5),
    local(ApiKey::SaslHandshake, 0, 1),
    local(ApiKey::ApiVersions, 0, 4),
    fwd(ApiKey::CreateTopics, 2, 7),
    fwd(ApiKey::DeleteTopics, 1, 5), // v6 names topics by ID
    fwd(ApiKey::DeleteRecords, 0, 2),
    fwd(ApiKey::InitProducerId, 0, 5),
    fwd(ApiKey::OffsetForLeaderEpoch, 2, 4),
    fwd(ApiKey::AddPartitionsToTxn, 0, 3), // v4+ is broker-to-broker
    fwd(ApiKey::AddOffsetsToTxn, 0, 4),
    fwd(ApiKey::EndTxn, 0, 4),
    fwd(ApiKey::TxnOffsetCommit, 0, 4),
    fwd(ApiKey::DescribeConfigs, 1, 4),
    fwd(ApiKey::AlterConfigs, 0, 2),
    fwd(ApiKey::DescribeLogDirs, 1, 4),
    local(ApiKey::SaslAuthenticate, 0, 2),
    fwd(ApiKey::CreatePartitions, 0, 3),
    fwd(ApiKey::DeleteGroups, 0, 2),
    fwd(ApiKey::ElectLeaders, 0, 2),
    fwd(ApiKey::IncrementalAlterConfigs, 0, 1),
    fwd(ApiKey::AlterPartitionReassignments, 0, 0),
    fwd(ApiKey::ListPartitionReassignments, 0, 0),
    fwd(ApiKey::OffsetDelete, 0, 0),
    fwd(ApiKey::DescribeClientQuotas, 0, 1),
    fwd(ApiKey::AlterClientQuotas, 0, 1),
    fwd(ApiKey::DescribeCluster, 0, 1), // v2 adds controller endpoints
    fwd(ApiKey::DescribeProducers, 0, 0),
    fwd(ApiKey::DescribeTransactions, 0, 0),
    fwd(ApiKey::ListTransactions, 0, 1), // v2 adds a transactional-id regex
    fwd(ApiKey::DescribeTopicPartitions, 0, 0),
];

/// APIs kgate answers itself only when an administration handler is installed
/// (ACL and SCRAM-credential administration).
pub const ADMIN_TABLE: &[Allowed] = &[
    local(ApiKey::DescribeAcls, 1, 3),
    local(ApiKey::CreateAcls, 1, 3),
    local(ApiKey::DeleteAcls, 1, 3),
    local(ApiKey::DescribeUserScramCredentials, 0, 0),
    local(ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The versions kgate offers and accepts, after intersecting with the upstream.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    ranges: BTreeMap<i16, (i16, i16, Route)>,
}

impl VersionTable {
    /// Builds the table from the upstream's ApiVersions ranges (`api key → (min, max)`).
    ///
    /// Forwarded APIs the upstream lacks are left out; local APIs need only kafka-protocol.
    pub fn negotiate(upstream: &BTreeMap<i16, (i16, i16)>, with_admin: bool) -> Self {
        let mut ranges = BTreeMap::new();
        let rows = ALLOW_TABLE
            .iter()
            .chain(ADMIN_TABLE.iter().filter(|_| with_admin));
        for row in rows {
            let lib = row.api.valid_versions();
            let mut min = row.min.max(lib.min);
            let mut max = row.max.min(lib.max);
            if row.route == Route::Forward {
                let Some(&(up_min, up_max)) = upstream.get(&(row.api as i16)) else {
                    continue;
                };
                min = min.max(up_min);
                max = max.min(up_max);
            }
            if min <= max {
                ranges.insert(row.api as i16, (min, max, row.route));
            }
        }
        Self { ranges }
    }

    /// The route for a request, or `None` if kgate does not accept this key and version.
    pub fn route(&self, api_key: i16, version: i16) -> Option<Route> {
        self.ranges
            .get(&api_key)
            .filter(|(min, max, _)| (*min..=*max).contains(&version))
            .map(|(_, _, route)| *route)
    }

    /// The accepted range of one API.
    pub fn range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.ranges
            .get(&(api as i16))
            .map(|(min, max, _)| (*min, *max))
    }

    /// The ApiVersions response body kgate sends for a request of `version`.
    ///
    /// A version above kgate's gets Kafka's KIP-511 answer: error 35 (UNSUPPORTED_VERSION)
    /// with only ApiVersions' own range, to be encoded as v0.
    pub fn api_versions_response(&self, version: i16) -> (ApiVersionsResponse, i16) {
        let own = self.range(ApiKey::ApiVersions).unwrap_or((0, 0));
        if version > own.1 || version < 0 {
            let body = ApiVersionsResponse::default()
                .with_error_code(35)
                .with_api_keys(vec![ApiVersion::default()
                    .with_api_key(ApiKey::ApiVersions as i16)
                    .with_min_version(own.0)
                    .with_max_version(own.1)]);
            return (body, 0);
        }
        let keys = self
            .ranges
            .iter()
            .map(|(key, (min, max, _))| {
                ApiVersion::default()
                    .with_api_key(*key)
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect();
        (ApiVersionsResponse::default().with_api_keys(keys), version)
    }
}

/// Kafka's rule for ApiVersions v3+ `client_software_name` and `_version`: letters, digits,
/// `-` and `.`, starting and ending with a letter or digit.
pub fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            edge(first)
                && edge(last)
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        }
        _ => false,
    }
}

impl VersionTable {
    /// Answers an ApiVersions request frame: the encoded response, and whether it was a
    /// success (a client may retry after error 35 or 42, as KIP-511 intends).
    ///
    /// # Errors
    /// A malformed request or an encoding failure, as a reason to close.
    pub fn answer_api_versions(
        &self,
        frame: &bytes::Bytes,
        prefix: &crate::header::RequestPrefix,
    ) -> Result<(bytes::Bytes, bool), String> {
        let (mut body, mut version) = self.api_versions_response(prefix.api_version);
        if body.error_code == 0 && version >= 3 {
            let (_, rest) =
                crate::header::decode_request_header(ApiKey::ApiVersions, version, frame)
                    .map_err(|e| e.to_string())?;
            let req: kafka_protocol::messages::ApiVersionsRequest =
                crate::header::decode_body(ApiKey::ApiVersions, version, rest)
                    .map_err(|e| e.to_string())?;
            if !valid_software_field(&req.client_software_name)
                || !valid_software_field(&req.client_software_version)
            {
                body = ApiVersionsResponse::default().with_error_code(42);
                version = prefix.api_version;
            }
        }
        let ok = body.error_code == 0;
        let bytes = crate::header::encode_response(
            ApiKey::ApiVersions,
            version,
            prefix.correlation_id,
            &body,
        )
        .map_err(|e| e.to_string())?;
        Ok((bytes, ok))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn software_names_follow_kafkas_pattern() {
        assert!(super::valid_software_field("librdkafka"));
        assert!(super::valid_software_field("2.12.1"));
        assert!(super::valid_software_field("apache-kafka-java"));
        assert!(!super::valid_software_field(""));
        assert!(!super::valid_software_field("-x"));
        assert!(!super::valid_software_field("x."));
        assert!(!super::valid_software_field("a b"));
    }

    use super::*;

    fn upstream_all() -> BTreeMap<i16, (i16, i16)> {
        ApiKey::iter()
            .map(|k| (k as i16, (k.valid_versions().min, k.valid_versions().max)))
            .collect()
    }

    #[test]
    fn broker_internal_apis_are_never_offered() {
        let table = VersionTable::negotiate(&upstream_all(), true);
        // LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown, WriteTxnMarkers,
        // the Raft APIs, AlterPartition, Envelope, broker registration and heartbeats,
        // AllocateProducerIds, ControllerRegistration, AssignReplicasToDirs, UpdateRaftVoter
        // and the share-group state APIs.
        let internal = [
            4, 5, 6, 7, 27, 52, 53, 54, 56, 58, 59, 62, 63, 67, 70, 73, 82, 83, 84, 85, 86, 87,
        ];
        for key in internal {
            for version in 0..20 {
                assert!(
                    table.route(key, version).is_none(),
                    "API {key} must not be offered"
                );
            }
        }
    }

    #[test]
    fn forwarded_ranges_intersect_with_the_upstream() {
        let mut upstream = upstream_all();
        upstream.insert(ApiKey::Fetch as i16, (0, 11));
        upstream.remove(&(ApiKey::DeleteRecords as i16));
        let table = VersionTable::negotiate(&upstream, false);
        assert_eq!(table.range(ApiKey::Fetch), Some((4, 11)));
        assert_eq!(table.range(ApiKey::DeleteRecords), None);
        assert_eq!(table.route(ApiKey::Fetch as i16, 12), None);
        assert_eq!(table.route(ApiKey::Fetch as i16, 11), Some(Route::Forward));
        // Local APIs do not depend on the upstream.
        upstream.remove(&(ApiKey::SaslHandshake as i16));
        let table = VersionTable::negotiate(&upstream, false);
        assert_eq!(table.range(ApiKey::SaslHandshake), Some((0, 1)));
        assert_eq!(table.range(ApiKey::CreateAcls), None);
    }

    #[test]
    fn too_new_api_versions_gets_v0_error_35() {
        let table = VersionTable::negotiate(&upstream_all(), false);
        let (body, version) = table.api_versions_response(99);
        assert_eq!(version, 0);
        assert_eq!(body.error_code, 35);
        assert_eq!(body.api_keys.len(), 1);
        assert_eq!(body.api_keys[0].api_key, ApiKey::ApiVersions as i16);
    }

    #[test]
    fn allow_table_stays_within_what_the_library_parses() {
        for row in ALLOW_TABLE.iter().chain(ADMIN_TABLE) {
            let lib = row.api.valid_versions();
            assert!(
                row.max <= lib.max,
                "{:?} max {} > {}",
                row.api,
                row.max,
                lib.max
            );
        }
    }
}
