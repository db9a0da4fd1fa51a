//! Authorization of every client request, exactly as a Kafka broker with an authorizer.
//!
//! For each request kgate decodes the body, asks the [`Authorizer`] the checks Kafka's
//! `KafkaApis` asks (reference §1.1), and produces an [`Outcome`]: forward the request as is,
//! forward a trimmed copy and merge Kafka-shaped errors for the denied part into the response,
//! answer locally (everything denied, or an API kgate serves itself), or close the connection.
//! Authorization always comes before any existence check, so a topic a principal may not
//! describe gets `TOPIC_AUTHORIZATION_FAILED` whether or not it exists.
//!
//! # Layout
//! Which function authorizes which API is declared once, in [`crate::registry`].
//!
//! - this file: [`Authz`], [`Session`], [`Outcome`], [`AuthzError`] and the generic
//!   forward/merge helpers;
//! - [`data`]: Produce, Fetch, ListOffsets, Metadata, OffsetForLeaderEpoch, DescribeCluster;
//! - [`groups`]: consumer-group APIs, OffsetCommit/OffsetFetch, FindCoordinator;
//! - [`consumer_groups`]: KIP-848 ConsumerGroupHeartbeat and ConsumerGroupDescribe;
//! - [`share_groups`]: KIP-932 share groups, with the share sessions opened on a connection;
//! - [`txn`]: InitProducerId and the transaction APIs;
//! - Kafka's admin APIs by family: [`topics`], [`configs`], [`cluster`], [`group_admin`],
//!   [`producers`], with what they share in [`answers`];
//! - [`security_admin`]: ACL and SCRAM-credential administration, which kgate answers itself
//!   from its own policy and credential store;
//! - [`topic_ids`]: the topic id → name map learned from Metadata answers.

pub mod answers;
pub mod cluster;
pub mod configs;
pub mod consumer_groups;
pub mod data;
pub mod group_admin;
pub mod groups;
pub mod producers;
pub mod security_admin;
pub mod share_groups;
pub mod topic_ids;
pub mod topics;
pub mod txn;

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod coverage_tests;
#[cfg(test)]
mod share_groups_tests;
#[cfg(test)]
mod test_support;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use kgate_policies::{Authorizer, Operation, Principal, Request, ResourceType};

use crate::audit::Audit;
use crate::header::{decode_body, encode_request, encode_response};

/// Kafka error codes used by authorization.
pub mod codes {
    /// UNKNOWN_SERVER_ERROR
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// UNKNOWN_TOPIC_OR_PARTITION
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// INVALID_TOPIC_EXCEPTION
    pub const INVALID_TOPIC: i16 = 17;
    /// TOPIC_AUTHORIZATION_FAILED
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    /// GROUP_AUTHORIZATION_FAILED
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    /// CLUSTER_AUTHORIZATION_FAILED
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    /// INVALID_REQUEST
    pub const INVALID_REQUEST: i16 = 42;
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    /// SECURITY_DISABLED
    pub const SECURITY_DISABLED: i16 = 54;
    /// OPERATION_NOT_ATTEMPTED
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    /// UNKNOWN_TOPIC_ID
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// Why a request could not be authorized: the connection is closed with this reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The request body could not be decoded.
    #[error(transparent)]
    Malformed(#[from] crate::header::DecodeError),
    /// A request kgate could not re-encode (a bug, or a request beyond what kgate models).
    #[error(transparent)]
    Encode(#[from] crate::header::EncodeError),
}

/// The cluster resource's only name.
pub const CLUSTER: &str = "kafka-cluster";

/// Kafka's internal topics: never writable by clients, never addable to a transaction.
pub const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// What the gateway enforces: the authorizer, the audit log and (for the SCRAM admin APIs)
/// the credential store. Shared by every connection.
#[derive(Debug, Clone)]
pub struct Authz {
    /// Decisions.
    pub authorizer: Arc<Authorizer>,
    /// Where decisions are recorded.
    pub audit: Option<Arc<Audit>>,
    /// The credential store, for DescribeUserScramCredentials / AlterUserScramCredentials.
    pub credentials: Option<kgate_auth::SharedCredentials>,
    /// Topic ids → names learned from Metadata answers, to authorize requests by topic id.
    pub topic_ids: topic_ids::TopicIds,
}

/// One authenticated client, as authorization sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// `User:alice`.
    pub principal: Principal,
    /// The client's address as kgate sees it (host ACLs match on it).
    pub host: IpAddr,
    /// What to enforce; `None` means no authorizer (Kafka's default: allow everything).
    pub authz: Option<Arc<Authz>>,
    /// The share sessions opened on this connection (KIP-932), re-authorized on every
    /// ShareFetch.
    pub share_sessions: share_groups::ShareSessions,
}

impl Session {
    /// Kafka's `authorize`: records denials (and allows, when configured) in the audit log.
    pub fn allow(
        &self,
        api: ApiKey,
        resource_type: ResourceType,
        name: &str,
        operation: Operation,
    ) -> bool {
        let Some(authz) = &self.authz else {
            return true;
        };
        let decision = authz
            .authorizer
            .authorize(&self.request(resource_type, name, operation));
        if let Some(audit) = &authz.audit {
            audit.decision(self, api, resource_type, name, operation, &decision);
        }
        decision.allowed
    }

    /// Kafka's `authorize` with `logIfDenied = false`: an allow is recorded as usual, a deny
    /// is not (a check that has a fallback, such as InitProducerId's IDEMPOTENT_WRITE on the
    /// cluster before WRITE on any topic, must not write a DENY line for every idempotent
    /// producer).
    pub fn allow_unlogged_deny(
        &self,
        api: ApiKey,
        resource_type: ResourceType,
        name: &str,
        operation: Operation,
    ) -> bool {
        let Some(authz) = &self.authz else {
            return true;
        };
        let decision = authz
            .authorizer
            .authorize(&self.request(resource_type, name, operation));
        if decision.allowed {
            if let Some(audit) = &authz.audit {
                audit.decision(self, api, resource_type, name, operation, &decision);
            }
        }
        decision.allowed
    }

    /// A check that Kafka makes without logging a denial (cluster shortcuts, list filtering).
    pub fn allow_quietly(
        &self,
        resource_type: ResourceType,
        name: &str,
        operation: Operation,
    ) -> bool {
        match &self.authz {
            Some(authz) => {
                authz
                    .authorizer
                    .authorize(&self.request(resource_type, name, operation))
                    .allowed
            }
            None => true,
        }
    }

    /// Whether a topic is kgate's own (reserved): left out of listings no check filters.
    pub fn is_reserved_topic(&self, name: &str) -> bool {
        self.authz
            .as_ref()
            .is_some_and(|a| a.authorizer.is_reserved_topic(name))
    }

    /// The name of a topic id, as learned from the upstream's Metadata answers.
    pub fn topic_name(&self, id: uuid::Uuid) -> Option<String> {
        self.authz.as_ref().and_then(|a| a.topic_ids.name(id))
    }

    /// Kafka's `authorizeByResourceType` (InitProducerId's WRITE-on-any-topic rule).
    pub fn allow_by_type(
        &self,
        api: ApiKey,
        resource_type: ResourceType,
        operation: Operation,
    ) -> bool {
        let Some(authz) = &self.authz else {
            return true;
        };
        let decision = authz.authorizer.authorize_by_resource_type(
            &self.principal,
            &[],
            self.host,
            operation,
            resource_type,
        );
        if let Some(audit) = &authz.audit {
            audit.decision(self, api, resource_type, "*", operation, &decision);
        }
        decision.allowed
    }

    /// The `authorized_operations` mask of a resource.
    pub fn operations_mask(&self, resource_type: ResourceType, name: &str) -> i32 {
        match &self.authz {
            Some(authz) => authz.authorizer.authorized_operations(
                &self.principal,
                &[],
                self.host,
                resource_type,
                name,
            ),
            None => resource_type
                .supported_operations()
                .iter()
                .fold(0, |mask, op| mask | (1i32 << op.code())),
        }
    }

    fn request<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
        operation: Operation,
    ) -> Request<'a> {
        Request {
            principal: &self.principal,
            groups: &[],
            host: self.host,
            resource_type,
            name,
            operation,
        }
    }
}

/// Rewrites a response body (after the header) once the upstream answers.
pub type Fixup = Box<dyn FnOnce(Bytes) -> Result<Bytes, FixupError> + Send>;

/// Why kgate could not change the broker's answer as authorization requires: the connection
/// is closed with this reason (never a half-filtered answer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixupError {
    /// The broker's response does not parse at the version kgate expects.
    #[error("cannot parse the broker's response: {0}")]
    Parse(String),
    /// The changed response cannot be encoded at the client's version.
    #[error("cannot encode the merged response: {0}")]
    Encode(String),
    /// The response header does not parse.
    #[error(transparent)]
    Header(#[from] crate::header::DecodeError),
    /// kgate will not pass this answer on: it cannot be made Kafka-exact, or it would show
    /// the client something it may not see.
    #[error("{0}")]
    Refused(String),
}

/// What to do with one request.
pub enum Outcome {
    /// Forward; `request` replaces the original bytes (without size prefix) when set, and
    /// `fixup` rewrites the response body when set.
    Forward {
        /// The trimmed request, if it changed.
        request: Option<Bytes>,
        /// The response change, if any.
        fixup: Option<Fixup>,
    },
    /// Answer with this response (header and body, without size prefix).
    Respond(Bytes),
    /// Forward the original bytes; no response will come (a produce with `acks=0`).
    ForwardNoResponse,
    /// Close the connection, with the reason for the log.
    Close(String),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Forward { request, fixup } => f
                .debug_struct("Forward")
                .field("rewritten", &request.is_some())
                .field("fixup", &fixup.is_some())
                .finish(),
            Outcome::Respond(b) => f.debug_tuple("Respond").field(&b.len()).finish(),
            Outcome::ForwardNoResponse => f.write_str("ForwardNoResponse"),
            Outcome::Close(r) => f.debug_tuple("Close").field(r).finish(),
        }
    }
}

impl Outcome {
    /// Forward the original bytes; no response comes back (`acks=0`).
    pub fn forward_no_response() -> Self {
        Outcome::ForwardNoResponse
    }

    /// Forward the original bytes untouched.
    pub fn forward() -> Self {
        Outcome::Forward {
            request: None,
            fixup: None,
        }
    }
}

/// The request being authorized: its header, version and body bytes.
#[derive(Debug)]
pub struct Incoming {
    /// The API.
    pub api: ApiKey,
    /// Its version.
    pub version: i16,
    /// The decoded header (client id, correlation id).
    pub header: RequestHeader,
    /// The body bytes after the header.
    pub body: Bytes,
}

impl Incoming {
    /// Decodes the body as `T`.
    ///
    /// # Errors
    /// A malformed body: the caller closes the connection.
    pub fn decode<T: Decodable>(&self) -> Result<T, AuthzError> {
        Ok(decode_body(self.api, self.version, self.body.clone())?)
    }

    /// A local response with this body.
    pub fn respond<T: Encodable>(&self, body: &T) -> Outcome {
        match encode_response(self.api, self.version, self.header.correlation_id, body) {
            Ok(bytes) => Outcome::Respond(bytes),
            Err(e) => Outcome::Close(e.to_string()),
        }
    }

    /// Forward `request` (re-encoded if `changed`) and apply `fixup` to the response; when
    /// `nothing_left` is set, nothing is forwarded and `fixup` runs on an empty response.
    pub fn forward_with<Req, Resp, F>(
        &self,
        request: &Req,
        changed: bool,
        nothing_left: bool,
        fixup: F,
    ) -> Outcome
    where
        Req: Encodable,
        Resp: Decodable + Encodable + Default + 'static,
        F: FnOnce(&mut Resp) + Send + 'static,
    {
        self.forward_or::<Req, Resp, F, fn() -> Resp>(request, changed, nothing_left, fixup, None)
    }

    /// As [`Incoming::forward_with`], with the answer the client gets when kgate must change
    /// the broker's response but cannot parse it: Kafka's error for this one request (built
    /// by `fallback`), instead of a closed connection.
    pub fn forward_or<Req, Resp, F, G>(
        &self,
        request: &Req,
        changed: bool,
        nothing_left: bool,
        fixup: F,
        fallback: Option<G>,
    ) -> Outcome
    where
        Req: Encodable,
        Resp: Decodable + Encodable + Default + 'static,
        F: FnOnce(&mut Resp) + Send + 'static,
        G: FnOnce() -> Resp + Send + 'static,
    {
        let version = self.version;
        if nothing_left {
            let mut resp = Resp::default();
            fixup(&mut resp);
            return self.respond(&resp);
        }
        let request = if changed {
            match encode_request(self.api, version, &self.header, request) {
                Ok(b) => Some(b),
                Err(e) => return Outcome::Close(e.to_string()),
            }
        } else {
            None
        };
        let api = self.api;
        let fixup: Fixup = match fallback {
            None => typed_fixup::<Resp, F>(version, fixup),
            Some(fallback) => Box::new(move |body: Bytes| {
                let f = |r: &mut Resp| {
                    fixup(r);
                    Ok(())
                };
                match convert::<Resp, _>(body, version, version, f) {
                    Ok(out) => Ok(out),
                    Err(e) => {
                        tracing::warn!(
                            ?api,
                            version,
                            error = %e,
                            "answering one request with an error: the broker's response cannot be merged"
                        );
                        let mut out = BytesMut::new();
                        fallback()
                            .encode(&mut out, version)
                            .map_err(|e| FixupError::Encode(e.to_string()))?;
                        Ok(out.freeze())
                    }
                }
            }),
        };
        Outcome::Forward {
            request,
            fixup: Some(fixup),
        }
    }

    /// Forwards `request` encoded at `send_version` (above the client's, when the client's
    /// version cannot say what kgate must ask), and turns the response back into the client's
    /// version: decoded at `send_version`, changed by `f`, encoded at the client's version.
    pub fn forward_at<Req, Resp, F>(&self, request: &Req, send_version: i16, f: F) -> Outcome
    where
        Req: Encodable,
        Resp: Decodable + Encodable + 'static,
        F: FnOnce(&mut Resp) -> Result<(), FixupError> + Send + 'static,
    {
        let header = self.header.clone().with_request_api_version(send_version);
        let request = match encode_request(self.api, send_version, &header, request) {
            Ok(b) => b,
            Err(e) => return Outcome::Close(e.to_string()),
        };
        let version = self.version;
        Outcome::Forward {
            request: Some(request),
            fixup: Some(Box::new(move |body: Bytes| {
                convert::<Resp, _>(body, send_version, version, f)
            })),
        }
    }
}

/// Decodes a response body at `from`, applies `f`, and encodes it at `to`.
fn convert<Resp, F>(mut body: Bytes, from: i16, to: i16, f: F) -> Result<Bytes, FixupError>
where
    Resp: Decodable + Encodable,
    F: FnOnce(&mut Resp) -> Result<(), FixupError>,
{
    let mut resp = Resp::decode(&mut body, from).map_err(|e| FixupError::Parse(e.to_string()))?;
    f(&mut resp)?;
    let mut buf = BytesMut::new();
    resp.encode(&mut buf, to)
        .map_err(|e| FixupError::Encode(e.to_string()))?;
    Ok(buf.freeze())
}

/// A [`Fixup`] that decodes the response as `Resp`, applies `f` and encodes it again.
pub fn typed_fixup<Resp, F>(version: i16, f: F) -> Fixup
where
    Resp: Decodable + Encodable + 'static,
    F: FnOnce(&mut Resp) + Send + 'static,
{
    Box::new(move |body: Bytes| {
        convert::<Resp, _>(body, version, version, |r| {
            f(r);
            Ok(())
        })
    })
}

/// Applies a fixup to a whole response frame (header kept byte for byte).
///
/// # Errors
/// The fixup's error, or a malformed header.
pub fn apply_fixup(
    api: ApiKey,
    version: i16,
    frame: Bytes,
    fixup: Fixup,
) -> Result<Bytes, FixupError> {
    let (_header, body): (ResponseHeader, Bytes) =
        crate::header::decode_response_header(api, version, &frame)?;
    let header_len = frame.len() - body.len();
    let new_body = fixup(body)?;
    let mut out = BytesMut::with_capacity(header_len + new_body.len());
    out.extend_from_slice(&frame[..header_len]);
    out.extend_from_slice(&new_body);
    Ok(out.freeze())
}

/// Authorizes one request with the rule [`crate::registry`] declares for its API.
///
/// A request of an API without a rule there is refused (the connection is closed): kgate
/// never forwards a request it has no model for.
pub fn authorize(session: &Session, incoming: &Incoming) -> Outcome {
    let rule = crate::registry::find(incoming.api).map(|api| api.rule);
    let Some(crate::registry::Rule::Checks(check)) = rule else {
        return Outcome::Close(format!(
            "{:?} v{} has no authorization rule in kgate: {}",
            incoming.api,
            incoming.version,
            crate::registry::why_not(incoming.api)
        ));
    };
    check(session, incoming).unwrap_or_else(|e| {
        Outcome::Close(format!("{:?} v{}: {e}", incoming.api, incoming.version))
    })
}

/// Kafka's per-topic check on a request whose items each name one topic: with nothing denied
/// the original bytes go on; otherwise the allowed items are forwarded (or, when none is left,
/// kgate answers) and the `errors` built for the denied ones are merged into the response.
///
/// `errors` builds the error items for some request items with one error code: 29 for the
/// denied ones, and, should the broker's answer be unparsable, UNKNOWN_SERVER_ERROR for the
/// forwarded ones (the client then gets Kafka's error for this request, not a closed
/// connection).
pub fn check_each_topic<Req, Resp, T, E>(
    inc: &Incoming,
    mut req: Req,
    items: fn(&mut Req) -> &mut Vec<T>,
    name: impl Fn(&T) -> String,
    allow: impl FnMut(&str) -> bool,
    errors: impl Fn(&[T], i16) -> Vec<E>,
    merge: fn(&mut Resp) -> &mut Vec<E>,
) -> Outcome
where
    Req: Encodable,
    Resp: Decodable + Encodable + Default + 'static,
    E: Clone + Send + 'static,
{
    let all = std::mem::take(items(&mut req));
    let (allowed, denied) = partition_by(all, name, allow);
    if denied.is_empty() {
        return Outcome::forward();
    }
    let nothing_left = allowed.is_empty();
    let denied_errors = errors(&denied, codes::TOPIC_AUTHORIZATION_FAILED);
    let mut unparsable = errors(&allowed, codes::UNKNOWN_SERVER_ERROR);
    unparsable.extend(denied_errors.iter().cloned());
    *items(&mut req) = allowed;
    inc.forward_or::<_, Resp, _, _>(
        &req,
        true,
        nothing_left,
        move |r| merge(r).extend(denied_errors),
        Some(move || {
            let mut r = Resp::default();
            *merge(&mut r) = unparsable;
            r
        }),
    )
}

/// Kafka's DESCRIBE per group on a request that lists group ids (DescribeGroups,
/// ConsumerGroupDescribe, ShareGroupDescribe): the denied groups are answered 30 after the
/// broker's, the allowed ones forwarded (or kgate answers when none is left), and `finish`
/// runs on the broker's groups (authorized-operations masks, hidden assignments). With nothing
/// denied and `finish` not needed (`needs_finish` false), the original bytes go on.
#[allow(clippy::too_many_arguments)]
pub fn describe_each_group<Req, Resp, G>(
    s: &Session,
    inc: &Incoming,
    mut req: Req,
    ids: fn(&mut Req) -> &mut Vec<kafka_protocol::messages::GroupId>,
    denied_group: fn(kafka_protocol::messages::GroupId) -> G,
    groups: fn(&mut Resp) -> &mut Vec<G>,
    needs_finish: bool,
    finish: impl FnOnce(&Session, &mut Vec<G>) + Send + 'static,
) -> Outcome
where
    Req: Encodable,
    Resp: Decodable + Encodable + Default + 'static,
    G: Send + 'static,
{
    let all = std::mem::take(ids(&mut req));
    let (allowed, denied) = partition_by(
        all,
        |g| g.to_string(),
        |n| s.allow(inc.api, ResourceType::Group, n, Operation::Describe),
    );
    let nothing_left = allowed.is_empty();
    let changed = !denied.is_empty();
    if !changed && !needs_finish {
        return Outcome::forward();
    }
    *ids(&mut req) = allowed;
    let errors: Vec<G> = denied.into_iter().map(denied_group).collect();
    let session = s.clone();
    inc.forward_with::<_, Resp, _>(&req, changed, nothing_left, move |r| {
        finish(&session, groups(r));
        groups(r).extend(errors);
    })
}

/// Splits the items of a request by a check done once per distinct name (Kafka's
/// `filterByAuthorized`): returns (allowed items, denied names).
pub fn partition_by<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> String,
    mut check: impl FnMut(&str) -> bool,
) -> (Vec<T>, Vec<T>) {
    let mut memo: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut allowed = Vec::new();
    let mut denied = Vec::new();
    for item in items {
        let n = name(&item);
        let ok = *memo.entry(n.clone()).or_insert_with(|| check(&n));
        if ok {
            allowed.push(item);
        } else {
            denied.push(item);
        }
    }
    (allowed, denied)
}
