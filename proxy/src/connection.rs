//! One client connection after authentication: pipelined forwarding to its upstream broker.
//!
//! Two halves run side by side. The *request* half reads client frames, checks each against
//! the allow-table, answers kgate's own APIs, and forwards the rest (the original bytes, in
//! one write). For every request that expects a response it queues a [`Pending`] entry. The
//! *response* half takes those entries in order: a local answer is written as is; for a
//! forwarded request it reads the next upstream response, checks its correlation id,
//! rewrites broker addresses where needed and writes it to the client. Kafka answers the
//! requests of one connection in order, so the queue keeps every response where it belongs;
//! `acks=0` produces queue nothing, as they get no response.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};

use crate::audit;
use crate::authz::{apply_fixup, authorize, Fixup, Incoming, Outcome, Session};
use crate::faults::inject::{
    chain, error_fixup, produce as produce_fault, request_topics, throttle_fixup, ProduceFault,
};
use crate::faults::RequestFacts;
use crate::frame::{put_frame, read_frame_raw, read_frame_timed, FrameError};
use crate::header::{decode_request_header, RequestPrefix};
use crate::reauth::{Intercept, Reauth, SaslLogin};
use crate::rewrite::{needs_rewrite, rewrite_response};
use crate::sasl::{after_authentication, api_name};
use crate::server::Shared;
use crate::upstream::MAX_UPSTREAM_FRAME;
use crate::versions::Route;

/// How many responses may be outstanding on one connection before kgate stops reading
/// requests from the client (back-pressure instead of unbounded buffering).
pub const MAX_IN_FLIGHT: usize = 256;

/// A response slot, in request order.
enum Pending {
    /// kgate's own answer, already framed.
    Ready(Bytes),
    /// The next upstream response answers this request.
    Upstream {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        /// Merges denied parts into, or filters, the response.
        fixup: Option<Fixup>,
        /// Injected latency: the response leaves no earlier than this (counted from the
        /// request, so pipelined requests are delayed side by side, as by a slow network).
        not_before: Option<tokio::time::Instant>,
        /// When the request had been read whole and when it went upstream.
        timing: Option<(tokio::time::Instant, tokio::time::Instant)>,
    },
}

/// Why a connection ended; printed in its one log line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the connection.
    #[error("client closed")]
    ClientClosed,
    /// The gateway is shutting down.
    #[error("gateway shutting down")]
    Shutdown,
    /// A request outside the allow-table, or malformed.
    #[error("refused request: {0}")]
    Refused(String),
    /// A frame could not be read from the client.
    #[error("client frame: {0}")]
    ClientFrame(FrameError),
    /// The upstream broker failed or misbehaved.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The broker's answer could not be changed as authorization requires.
    #[error("upstream response: {0}")]
    Response(#[from] crate::authz::FixupError),
    /// The broker's answer could not be given kgate's addresses.
    #[error("upstream response: {0}")]
    Rewrite(#[from] crate::rewrite::RewriteError),
    /// Writing to the client failed.
    #[error("client i/o: {0}")]
    ClientIo(std::io::Error),
    /// No request for the idle timeout (Kafka's `connections.max.idle.ms`).
    #[error("idle for {} ms", .0.as_millis())]
    Idle(std::time::Duration),
    /// The SASL session ended: it expired, or a re-authentication was refused (KIP-368).
    #[error("session: {0}")]
    Session(String),
    /// A fault rule closed the connection on purpose.
    #[error("fault injected: {0}")]
    Fault(String),
}

/// Bytes moved by one connection, for its log line and metrics.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes read from the client.
    pub from_client: AtomicU64,
    /// Bytes written to the client.
    pub to_client: AtomicU64,
}

/// A connection's upstream broker.
#[derive(Debug)]
pub struct Upstream<U> {
    /// The connection to the broker.
    pub stream: U,
    /// The broker's node id, on a broker listener (`None` on the bootstrap listener): what
    /// per-broker timings are counted under.
    pub node: Option<i32>,
}

/// Forwards requests between an authenticated client and its upstream broker until one side
/// closes, the gateway shuts down, or a request must be refused.
pub async fn forward<C, U>(
    shared: Arc<Shared>,
    session: Session,
    client: C,
    upstream: Upstream<U>,
    first_request: Option<Bytes>,
    login: Option<SaslLogin>,
    mut shutdown: watch::Receiver<bool>,
) -> CloseReason
where
    C: AsyncRead + AsyncWrite + Send + 'static,
    U: AsyncRead + AsyncWrite + Send + 'static,
{
    let Upstream {
        stream: upstream,
        node,
    } = upstream;
    let mut reauth = Reauth::new(&shared, login);
    let (mut client_rd, client_wr) = tokio::io::split(client);
    let (up_rd, mut up_wr) = tokio::io::split(upstream);
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    // Timings are per broker: the bootstrap connection's requests are not counted.
    let timed = node.filter(|_| shared.config.timings.is_some());
    let mut responses = tokio::spawn(respond(shared.clone(), rx, up_rd, client_wr, timed));
    let grace = shared.config.shutdown_grace;
    let requests = async move {
        let mut next = first_request.map(|body| {
            let mut raw = BytesMut::with_capacity(body.len() + 4);
            // A frame we just read always fits in a frame again.
            let _ = put_frame(&mut raw, &body);
            raw.freeze()
        });
        loop {
            // The frame, and when its first bytes arrived (unknown for the one read while
            // authenticating).
            let (raw, first_bytes) = match next.take() {
                Some(raw) => (raw, None),
                None => {
                    let idle = shared.config.idle_timeout;
                    let next_frame = read_frame_timed(&mut client_rd, shared.config.max_frame);
                    let read = tokio::select! {
                        r = next_frame => r,
                        _ = tokio::time::sleep(idle), if !idle.is_zero() => {
                            drop(tx);
                            return Some(CloseReason::Idle(idle));
                        }
                        _ = shutdown.changed() => {
                            // Closing the queue lets the response half finish what is in flight.
                            drop(tx);
                            return Some(CloseReason::Shutdown);
                        }
                    };
                    match read {
                        Ok(Some((raw, first))) => (raw, Some(first)),
                        Ok(None) => return Some(CloseReason::ClientClosed),
                        Err(e) => return Some(CloseReason::ClientFrame(e)),
                    }
                }
            };
            let received = tokio::time::Instant::now();
            let frame = raw.slice(4..);
            match reauth.intercept(&shared, &frame).await {
                Intercept::Pass => {}
                Intercept::Answer(resp) => {
                    shared.metrics.answered();
                    let Ok(resp) = framed(&resp) else {
                        return Some(CloseReason::Refused("cannot frame an answer".into()));
                    };
                    if tx.send(Pending::Ready(resp)).await.is_err() {
                        return None;
                    }
                    continue;
                }
                Intercept::AnswerAndClose(resp, why) => {
                    if let Ok(resp) = framed(&resp) {
                        let _ = tx.send(Pending::Ready(resp)).await;
                    }
                    // Dropping the queue lets the response half write what is queued first.
                    drop(tx);
                    return Some(CloseReason::Session(why));
                }
                Intercept::Close(why) => return Some(CloseReason::Session(why)),
            }
            let mut action = handle_request(&shared, &session, frame.clone()).await;
            if shared.config.faults.is_active() {
                action = action.and_then(|a| inject_faults(&shared, &session, &frame, a));
            }
            let pending = match action {
                Ok(Action::Answer(resp)) => {
                    shared.metrics.answered();
                    Some(Pending::Ready(resp))
                }
                Ok(Action::Forward { request, expect }) => {
                    shared.metrics.forwarded();
                    let written = match request {
                        Some(body) => {
                            let mut framed = BytesMut::with_capacity(body.len() + 4);
                            if let Err(e) = put_frame(&mut framed, &body) {
                                return Some(CloseReason::Refused(e.to_string()));
                            }
                            up_wr.write_all(&framed).await
                        }
                        None => up_wr.write_all(&raw).await,
                    };
                    if let Err(e) = written {
                        return Some(CloseReason::Upstream(format!("write: {e}")));
                    }
                    let mut expect = expect;
                    if let Some(Pending::Upstream { timing, api, .. }) = &mut expect {
                        *timing = Some((received, tokio::time::Instant::now()));
                        if let Some(first) = first_bytes {
                            let receiving = received.saturating_duration_since(first);
                            shared.metrics.times.receive.record(*api, receiving);
                        }
                    }
                    expect
                }
                Err(reason) => {
                    shared.metrics.refused();
                    return Some(reason);
                }
            };
            if let Some(p) = pending {
                if tx.send(p).await.is_err() {
                    // The response half ended; its reason is the one to report.
                    return None;
                }
            }
        }
    };
    tokio::select! {
        reason = requests => match reason {
            Some(reason @ (CloseReason::Session(_) | CloseReason::Idle(_))) => {
                // The last answer (a refused re-authentication) goes out before the close.
                let _ = tokio::time::timeout(grace, &mut responses).await;
                responses.abort();
                reason
            }
            Some(CloseReason::Shutdown) => {
                // Let in-flight responses drain, within the grace period.
                let _ = tokio::time::timeout(grace, &mut responses).await;
                responses.abort();
                CloseReason::Shutdown
            }
            Some(reason) => {
                responses.abort();
                reason
            }
            None => match responses.await {
                Ok(reason) => reason,
                Err(e) => CloseReason::Upstream(format!("response task failed: {e}")),
            },
        },
        result = &mut responses => match result {
            Ok(reason) => reason,
            Err(e) => CloseReason::Upstream(format!("response task failed: {e}")),
        },
    }
}

/// What to do with one request.
enum Action {
    /// Send this framed response (kgate answered).
    Answer(Bytes),
    /// Forward `request` (or, when `None`, the original bytes); `expect` is the slot of the
    /// response, if one comes.
    Forward {
        request: Option<Bytes>,
        expect: Option<Pending>,
    },
}

/// Reads only `acks` from a Produce body (after its nullable transactional id), so that
/// forwarding without authorization never materializes a hostile topic list in memory.
fn produce_acks(version: i16, body: &[u8]) -> Result<i16, String> {
    let short = || "Produce request too short for acks".to_string();
    let rest = if version >= 9 {
        // Compact nullable string: unsigned varint of length + 1 (0 = null).
        let mut len: u64 = 0;
        let mut shift = 0;
        let mut i = 0;
        loop {
            let b = *body.get(i).ok_or_else(short)?;
            len |= u64::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return Err("Produce transactional id length is not a varint".into());
            }
        }
        let skip = usize::try_from(len.saturating_sub(1)).map_err(|_| short())?;
        body.get(i.checked_add(skip).ok_or_else(short)?..)
            .ok_or_else(short)?
    } else {
        let len = i16::from_be_bytes([
            *body.first().ok_or_else(short)?,
            *body.get(1).ok_or_else(short)?,
        ]);
        let skip = usize::try_from(len.max(0)).map_err(|_| short())?;
        body.get(2 + skip..).ok_or_else(short)?
    };
    match rest {
        [a, b, ..] => Ok(i16::from_be_bytes([*a, *b])),
        _ => Err(short()),
    }
}

fn framed(body: &[u8]) -> Result<Bytes, CloseReason> {
    let mut raw = BytesMut::with_capacity(body.len() + 4);
    put_frame(&mut raw, body).map_err(|e| CloseReason::Refused(e.to_string()))?;
    Ok(raw.freeze())
}

/// Decides what to do with one request: answer it, forward it (possibly trimmed), or close.
///
/// Authorization runs inside [`audit::collect`], and its audit lines are queued before the
/// request goes on (waiting if the audit queue is full: back-pressure on this connection
/// only). The admin APIs that lock and fsync files (CreateAcls, DeleteAcls,
/// AlterUserScramCredentials) run on the blocking pool, off the runtime's worker threads.
async fn handle_request(
    shared: &Shared,
    session: &Session,
    frame: Bytes,
) -> Result<Action, CloseReason> {
    let prefix = RequestPrefix::peek(&frame)
        .ok_or_else(|| CloseReason::Refused("frame too short for a request header".into()))?;
    let versions = shared.versions();
    let route = versions
        .route(prefix.api_key, prefix.api_version)
        .ok_or_else(|| {
            CloseReason::Refused(format!(
                "{} v{} is not in kgate's allow-table",
                api_name(prefix.api_key, prefix.known_key()),
                prefix.api_version
            ))
        })?;
    // `route` returned Some, so the key is known.
    let api = prefix
        .known_key()
        .ok_or_else(|| CloseReason::Refused(format!("unknown API key {}", prefix.api_key)))?;
    let version = prefix.api_version;
    let expect = |fixup| {
        Some(Pending::Upstream {
            api,
            version,
            correlation_id: prefix.correlation_id,
            fixup,
            not_before: None,
            timing: None,
        })
    };
    match (route, api) {
        (Route::Local, ApiKey::ApiVersions) => {
            let (bytes, _) = versions
                .answer_api_versions(&frame, &prefix)
                .map_err(CloseReason::Refused)?;
            Ok(Action::Answer(framed(&bytes)?))
        }
        (Route::Local, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => {
            let bytes = after_authentication(&prefix, shared.mechanisms())
                .map_err(|e| CloseReason::Refused(e.to_string()))?;
            Ok(Action::Answer(framed(&bytes)?))
        }
        (Route::Forward, _) if session.authz.is_none() => {
            // No authorizer: Kafka's default is to allow everything; only acks=0 matters.
            if api == ApiKey::Produce {
                let (_, body) = decode_request_header(api, version, &frame)
                    .map_err(|e| CloseReason::Refused(e.to_string()))?;
                if produce_acks(version, &body).map_err(CloseReason::Refused)? == 0 {
                    return Ok(Action::Forward {
                        request: None,
                        expect: None,
                    });
                }
            }
            Ok(Action::Forward {
                request: None,
                expect: expect(None),
            })
        }
        (route, _) => {
            let (header, body) = decode_request_header(api, version, &frame)
                .map_err(|e| CloseReason::Refused(e.to_string()))?;
            let incoming = Incoming {
                api,
                version,
                header,
                body,
            };
            // kgate's own answers go through the registry's rule too.
            let local = |session: &Session, incoming: &Incoming| authorize(session, incoming);
            let writes_files = matches!(
                api,
                ApiKey::CreateAcls | ApiKey::DeleteAcls | ApiKey::AlterUserScramCredentials
            );
            let (outcome, recorded) = match route {
                Route::Local if writes_files => {
                    let session = session.clone();
                    tokio::task::spawn_blocking(move || {
                        audit::collect(|| local(&session, &incoming))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        let close = Outcome::Close(format!("{api:?} v{version} failed: {e}"));
                        (close, audit::Recorded::default())
                    })
                }
                Route::Local => audit::collect(|| local(session, &incoming)),
                Route::Forward => audit::collect(|| authorize(session, &incoming)),
            };
            recorded.send().await;
            match outcome {
                Outcome::Forward { request, fixup } => Ok(Action::Forward {
                    request,
                    expect: expect(fixup),
                }),
                Outcome::ForwardNoResponse => Ok(Action::Forward {
                    request: None,
                    expect: None,
                }),
                Outcome::Respond(bytes) => Ok(Action::Answer(framed(&bytes)?)),
                Outcome::Close(reason) => Err(CloseReason::Refused(reason)),
            }
        }
    }
}

/// Applies the fault rules in force to a request on its way out (after authorization):
/// close the connection, fail it with a Kafka error, or hold its response back.
fn inject_faults(
    shared: &Shared,
    session: &Session,
    frame: &Bytes,
    action: Action,
) -> Result<Action, CloseReason> {
    let Action::Forward { request, expect } = action else {
        // kgate's own answers (ApiVersions, SASL, denials, ACL admin) are never faulted.
        return Ok(action);
    };
    let Some(prefix) = RequestPrefix::peek(frame) else {
        return Ok(Action::Forward { request, expect });
    };
    let Some(api) = prefix.known_key() else {
        return Ok(Action::Forward { request, expect });
    };
    let version = prefix.api_version;
    let table = &shared.config.faults;
    let principal = session.principal.to_string();
    let needs = table.needs(&principal, api);
    let outgoing = request.clone().unwrap_or_else(|| frame.clone());
    let client_id = if needs.client_id {
        decode_request_header(api, version, frame)
            .map_err(|e| CloseReason::Refused(e.to_string()))?
            .0
            .client_id
            .map(|c| c.to_string())
    } else {
        None
    };
    let (topics, all_topics) = if needs.topics {
        // What goes upstream may be in a newer version than the client's (Metadata v0–3 is
        // sent as v4): read it in its own.
        let sent_version = RequestPrefix::peek(&outgoing).map_or(version, |p| p.api_version);
        let ids = session.authz.as_ref().map(|a| &a.topic_ids);
        let (names, all) =
            request_topics(api, sent_version, &outgoing, ids).map_err(CloseReason::Refused)?;
        (Some(names), all)
    } else {
        (None, false)
    };
    let verdict = table.decide(&RequestFacts {
        principal: &principal,
        api,
        client_id: client_id.as_deref(),
        topics: topics.as_deref(),
        all_topics,
    });
    if verdict.is_empty() {
        return Ok(Action::Forward { request, expect });
    }
    if let Some(id) = verdict.disconnect {
        return Err(CloseReason::Fault(format!(
            "rule #{id} closed the connection at a {api:?} request"
        )));
    }
    tracing::debug!(?api, %principal, ?verdict, "fault injected");
    let (mut fixup, not_before) = match expect {
        Some(Pending::Upstream {
            fixup, not_before, ..
        }) => (fixup, not_before),
        // acks=0: no response to delay or to fail but the connection itself.
        _ => {
            if verdict.error.is_some() {
                return Err(CloseReason::Fault(format!(
                    "a {api:?} without response failed, as Kafka closes an acks=0 producer's connection"
                )));
            }
            return Ok(Action::Forward { request, expect });
        }
    };
    let delay = verdict.latency + verdict.throttle;
    let not_before = match (delay.is_zero(), not_before) {
        (true, kept) => kept,
        (false, _) => Some(tokio::time::Instant::now() + delay),
    };
    if !verdict.throttle.is_zero() {
        let ms = i32::try_from(verdict.throttle.as_millis()).unwrap_or(i32::MAX);
        if let Some(f) = throttle_fixup(api, version, ms) {
            fixup = Some(chain(f, fixup));
        }
    }
    let mut request = request;
    if let Some((code, topic)) = verdict.error {
        if api == ApiKey::Produce {
            match produce_fault(version, &outgoing, code, topic.as_deref(), fixup.take())
                .map_err(CloseReason::Refused)?
            {
                ProduceFault::Close => {
                    return Err(CloseReason::Fault(
                        "an acks=0 produce failed: Kafka closes the connection".into(),
                    ))
                }
                ProduceFault::Answer(bytes) => return Ok(Action::Answer(framed(&bytes)?)),
                ProduceFault::Forward {
                    request: r,
                    fixup: f,
                } => {
                    request = Some(r);
                    fixup = Some(f);
                }
            }
        } else if let Some(f) = error_fixup(
            api,
            version,
            code,
            topic,
            session.authz.as_ref().map(|a| a.topic_ids.clone()),
        ) {
            fixup = Some(chain(f, fixup));
        }
    }
    Ok(Action::Forward {
        request,
        expect: Some(Pending::Upstream {
            api,
            version,
            correlation_id: prefix.correlation_id,
            fixup,
            not_before,
            timing: None,
        }),
    })
}

async fn respond<U, C>(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Pending>,
    mut up_rd: ReadHalf<U>,
    mut client_wr: WriteHalf<C>,
    node: Option<i32>,
) -> CloseReason
where
    U: AsyncRead + AsyncWrite,
    C: AsyncRead + AsyncWrite,
{
    while let Some(pending) = rx.recv().await {
        // (api, arrived at kgate, forwarded, answered by the broker) of a timed request.
        let mut timed = None;
        let out = match pending {
            Pending::Ready(raw) => raw,
            Pending::Upstream {
                api,
                version,
                correlation_id,
                fixup,
                not_before,
                timing,
            } => {
                let raw = match read_frame_raw(&mut up_rd, MAX_UPSTREAM_FRAME).await {
                    Ok(Some(raw)) => raw,
                    Ok(None) => {
                        return CloseReason::Upstream("broker closed the connection".into())
                    }
                    Err(e) => return CloseReason::Upstream(e.to_string()),
                };
                if let Some((arrived, sent)) = timing {
                    timed = Some((api, arrived, sent, tokio::time::Instant::now()));
                }
                let got = raw
                    .get(4..8)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if got != Some(correlation_id) {
                    return CloseReason::Upstream(format!(
                        "response correlation id {got:?}, expected {correlation_id}"
                    ));
                }
                let raw = match fixup {
                    Some(fixup) => {
                        // Filtering a response checks names too (hidden topics, groups).
                        let (fixed, recorded) =
                            audit::collect(|| apply_fixup(api, version, raw.slice(4..), fixup));
                        recorded.send().await;
                        match fixed {
                            Ok(body) => match framed(&body) {
                                Ok(f) => f,
                                Err(e) => return e,
                            },
                            Err(e) => return CloseReason::Response(e),
                        }
                    }
                    None => raw,
                };
                if let Some(at) = not_before.filter(|t| *t > tokio::time::Instant::now()) {
                    // Flush what is already written so the delay holds back only this one.
                    if let Err(e) = client_wr.flush().await {
                        return CloseReason::ClientIo(e);
                    }
                    tokio::time::sleep_until(at).await;
                }
                if needs_rewrite(api) {
                    match rewrite_response(api, version, raw.slice(4..), &shared.directory) {
                        // Nothing to change: the broker's frame goes on as it came.
                        Ok(None) => raw,
                        Ok(Some(body)) => {
                            let mut framed = BytesMut::with_capacity(body.len() + 4);
                            if let Err(e) = put_frame(&mut framed, &body) {
                                return CloseReason::Upstream(e.to_string());
                            }
                            framed.freeze()
                        }
                        Err(e) => return CloseReason::Rewrite(e),
                    }
                } else {
                    raw
                }
            }
        };
        if let Err(e) = client_wr.write_all(&out).await {
            return CloseReason::ClientIo(e);
        }
        // Over TLS the tail of a response can stay in the TLS layer when the socket is full;
        // push it out whenever no other response is about to follow.
        if rx.is_empty() {
            if let Err(e) = client_wr.flush().await {
                return CloseReason::ClientIo(e);
            }
        }
        if let Some((api, arrived, sent, answered)) = timed {
            let delivered = tokio::time::Instant::now();
            let held = sent.saturating_duration_since(arrived)
                + delivered.saturating_duration_since(answered);
            shared.metrics.times.held.record(api, held);
            if let (Some(node), Some(timings)) = (node, shared.config.timings.as_ref()) {
                timings.record(
                    node,
                    api as i16,
                    answered.saturating_duration_since(sent),
                    delivered.saturating_duration_since(arrived),
                );
            }
        }
    }
    let _ = client_wr.shutdown().await;
    CloseReason::ClientClosed
}

#[cfg(test)]
mod tests {
    use super::produce_acks;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ProduceRequest, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn acks_are_read_without_decoding_the_topics() {
        for version in [3i16, 7, 8, 9, 10] {
            for tid in [None, Some("tx-1")] {
                for acks in [0i16, 1, -1] {
                    let req = ProduceRequest::default()
                        .with_transactional_id(
                            tid.map(|t| TransactionalId(StrBytes::from_static_str(t))),
                        )
                        .with_acks(acks);
                    let mut buf = BytesMut::new();
                    req.encode(&mut buf, version).unwrap();
                    assert_eq!(
                        produce_acks(version, &buf).unwrap(),
                        acks,
                        "v{version} {tid:?}"
                    );
                }
            }
        }
        assert!(produce_acks(9, &[0x80]).is_err());
        assert!(produce_acks(3, &[0, 5, b'a']).is_err());
    }
}
