//! Which APIs and versions kgate accepts, and the ApiVersions answer it gives.
//!
//! kgate never forwards a request it has no model for. The APIs and version ranges come from
//! [`crate::registry`], where each API kgate serves is declared once. What a client is offered
//! is the intersection of that declaration, what the kafka-protocol crate can parse, and what
//! the upstream cluster supports (with a lower cap for an upstream that advertises versions it
//! cannot parse). Broker-internal APIs (LeaderAndIsr, Envelope, BrokerHeartbeat, ...) are never
//! declared, so they are refused.

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use crate::registry::{Answer, Upstream, SERVED};

/// Where a request goes once it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by kgate itself (ApiVersions, SASL, ACL and SCRAM administration).
    Local,
    /// Sent to the upstream broker of the connection, its response possibly rewritten.
    Forward,
}

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
        let kind = Upstream::identify(upstream);
        let mut ranges = BTreeMap::new();
        let rows = SERVED
            .iter()
            .filter(|api| with_admin || api.answer != Answer::KgatePolicy);
        for row in rows {
            let lib = row.key.valid_versions();
            let mut min = row.min.max(lib.min);
            let mut max = row.max_for(kind).min(lib.max);
            let route = if row.answer == Answer::Broker {
                let Some(&(up_min, up_max)) = upstream.get(&(row.key as i16)) else {
                    continue;
                };
                min = min.max(up_min);
                max = max.min(up_max);
                Route::Forward
            } else {
                Route::Local
            };
            if min <= max {
                ranges.insert(row.key as i16, (min, max, route));
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
    fn group_caps_follow_the_upstream() {
        let table = VersionTable::negotiate(&upstream_all(), false);
        assert_eq!(table.range(ApiKey::JoinGroup), Some((0, 9)));
        assert_eq!(table.range(ApiKey::SyncGroup), Some((0, 5)));
        assert_eq!(table.range(ApiKey::LeaveGroup), Some((0, 5)));
        // librdkafka's mock cluster: ApiVersions v0-2 with JoinGroup v6, SyncGroup v4 and
        // LeaveGroup v4, none of which it can parse.
        let mut mock = upstream_all();
        mock.insert(ApiKey::ApiVersions as i16, (0, 2));
        mock.insert(ApiKey::JoinGroup as i16, (0, 6));
        mock.insert(ApiKey::SyncGroup as i16, (0, 4));
        mock.insert(ApiKey::LeaveGroup as i16, (0, 4));
        let table = VersionTable::negotiate(&mock, false);
        assert_eq!(table.range(ApiKey::JoinGroup), Some((0, 5)));
        assert_eq!(table.range(ApiKey::SyncGroup), Some((0, 3)));
        assert_eq!(table.range(ApiKey::LeaveGroup), Some((0, 2)));
    }
}
