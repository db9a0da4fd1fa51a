//! What the authorization tests share: a session under an in-memory policy, a request as it
//! arrives, and the ways to look at an outcome (a local answer, a forwarded request, the
//! response a fixup makes of the broker's).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kgate_policies::{
    AclBinding, Authorizer, AuthorizerOptions, Host, Operation, Permission, Policy,
    ResourcePattern, ResourceType,
};

use super::answers::topic_name;
use super::{authorize, Authz, Fixup, Incoming, Outcome, Session};

pub(crate) fn acl(
    principal: &str,
    operation: Operation,
    resource: ResourceType,
    name: &str,
) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern::literal(resource, name).expect("pattern"),
        principal: principal.parse().expect("principal"),
        host: Host::Any,
        operation,
        permission: Permission::Allow,
    }
}

/// `User:alice` from 10.0.0.1 under an in-memory policy with these ACLs (`User:admin` is
/// a super user).
pub(crate) fn alice(acls: Vec<AclBinding>) -> Session {
    session_with(
        acls,
        AuthorizerOptions {
            super_users: vec!["User:admin".parse().expect("principal")],
            ..AuthorizerOptions::default()
        },
    )
}

/// `User:alice` from 10.0.0.1 under an in-memory policy with these ACLs and options (the
/// decision cache off, so that every check is asked).
pub(crate) fn session_with(acls: Vec<AclBinding>, options: AuthorizerOptions) -> Session {
    let mut policy = Policy::new();
    for a in acls {
        policy.add_acl(a);
    }
    let authorizer = Authorizer::new(
        policy,
        AuthorizerOptions {
            cache_capacity: 0,
            ..options
        },
    );
    Session {
        principal: "User:alice".parse().expect("principal"),
        host: "10.0.0.1".parse().expect("ip"),
        authz: Some(Arc::new(Authz {
            authorizer: Arc::new(authorizer),
            audit: None,
            credentials: None,
            topic_ids: Default::default(),
        })),
        share_sessions: Default::default(),
    }
}

/// Asserts the request goes upstream as the client sent it, with nothing to merge.
pub(crate) fn assert_untouched(outcome: Outcome) {
    assert!(
        matches!(
            outcome,
            Outcome::Forward {
                request: None,
                fixup: None
            }
        ),
        "expected the request forwarded untouched, got {outcome:?}"
    );
}

pub(crate) fn incoming<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Incoming {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).expect("encode request");
    Incoming {
        api,
        version,
        header: RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(42),
        body: buf.freeze(),
    }
}

pub(crate) fn run<T: Encodable>(s: &Session, api: ApiKey, version: i16, body: &T) -> Outcome {
    authorize(s, &incoming(api, version, body))
}

/// The body of a local answer.
pub(crate) fn answered<R: Decodable>(outcome: Outcome, api: ApiKey, version: i16) -> R {
    let Outcome::Respond(frame) = outcome else {
        panic!("expected a local answer, got {outcome:?}");
    };
    let (header, body) =
        crate::header::decode_response_header(api, version, &frame).expect("header");
    assert_eq!(header.correlation_id, 42);
    R::decode(&mut body.clone(), version).expect("body")
}

/// The forwarded request (`None`: the original bytes) and the response fixup.
pub(crate) fn forwarded<Req: Decodable>(
    outcome: Outcome,
    api: ApiKey,
    version: i16,
) -> (Option<Req>, Option<Fixup>) {
    let Outcome::Forward { request, fixup } = outcome else {
        panic!("expected a forward, got {outcome:?}");
    };
    let request = request.map(|frame| {
        let (_, body) = crate::header::decode_request_header(api, version, &frame).expect("header");
        Req::decode(&mut body.clone(), version).expect("body")
    });
    (request, fixup)
}

/// What the client gets when the broker answers `upstream`.
pub(crate) fn fixed<R: Encodable + Decodable>(fixup: Fixup, version: i16, upstream: &R) -> R {
    let mut buf = BytesMut::new();
    upstream.encode(&mut buf, version).expect("encode response");
    let body = fixup(buf.freeze()).expect("fixup");
    R::decode(&mut body.clone(), version).expect("decode merged")
}

pub(crate) fn tn(s: &str) -> TopicName {
    topic_name(s)
}

pub(crate) fn msg(m: &Option<StrBytes>) -> Option<&str> {
    m.as_deref()
}
