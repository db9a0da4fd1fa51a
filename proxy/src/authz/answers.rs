//! What the Kafka admin API families share: Kafka's error texts and codes, and the helpers that
//! put kgate's answers for denied resources together with the broker's.
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask (reference §1.1) and
//! answers a denial with the response Kafka builds for it: the same error codes, the same
//! messages (Kafka's default texts where Kafka's own message would spell out its internal
//! request object), the same fields left at their defaults. Checks Kafka makes before
//! authorization (duplicate names, `__cluster_metadata`, config-key validation, topic-name
//! validation, cursors) are made too, so a denied resource gets the answer Kafka would give.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{Fixup, FixupError};

/// Kafka's `Errors.TOPIC_AUTHORIZATION_FAILED.message()`.
pub const TOPIC_AUTHORIZATION_MESSAGE: &str = "Topic authorization failed.";
/// Kafka's `Errors.GROUP_AUTHORIZATION_FAILED.message()`.
pub const GROUP_AUTHORIZATION_MESSAGE: &str = "Group authorization failed.";
/// Kafka's `Errors.CLUSTER_AUTHORIZATION_FAILED.message()`. Kafka's cluster checks that throw
/// (`authorizeClusterOperation`) carry "Request Request(processor=…, connectionId=…, …) is
/// not authorized." instead, a dump of broker internals that kgate cannot and should not
/// reproduce; clients show this default text for it either way.
pub const CLUSTER_AUTHORIZATION_MESSAGE: &str = "Cluster authorization failed.";
/// Kafka's `Errors.INVALID_REQUEST.message()`.
pub const INVALID_REQUEST_MESSAGE: &str = "This most likely occurs because of a request being \
     malformed by the client library or the message was sent to an incompatible broker. See the \
     broker logs for more details.";
/// Kafka's `Errors.UNKNOWN_SERVER_ERROR.message()`.
pub(crate) const UNKNOWN_SERVER_ERROR_MESSAGE: &str =
    "The server experienced an unexpected error when processing the request.";
/// UNKNOWN_SERVER_ERROR.
pub(crate) const UNKNOWN_SERVER_ERROR: i16 = -1;
/// TOPIC_DELETION_DISABLED.
pub(crate) const TOPIC_DELETION_DISABLED: i16 = 73;
/// The KRaft metadata topic: never creatable by clients.
pub(crate) const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

// Config resource types (`ConfigResource.Type`).
pub(crate) const CONFIG_TOPIC: i8 = 2;
pub(crate) const CONFIG_BROKER: i8 = 4;
pub(crate) const CONFIG_BROKER_LOGGER: i8 = 8;
pub(crate) const CONFIG_CLIENT_METRICS: i8 = 16;
pub(crate) const CONFIG_GROUP: i8 = 32;

pub(crate) fn text(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

pub(crate) fn owned(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Splits names as Kafka's controller does before authorizing them: the names given once (in
/// request order) and the names given more than once (each once, in the order their second
/// occurrence appears). Kafka refuses every occurrence of a duplicate with INVALID_REQUEST.
pub(crate) fn once_and_duplicates<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> (Vec<String>, Vec<String>) {
    let mut order: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut duplicates: Vec<String> = Vec::new();
    for n in names {
        if seen.insert(n) {
            order.push(n);
        } else if !duplicates.iter().any(|d| d == n) {
            duplicates.push(n.to_owned());
        }
    }
    let once = order
        .into_iter()
        .filter(|n| !duplicates.iter().any(|d| d == n))
        .map(str::to_owned)
        .collect();
    (once, duplicates)
}

/// A [`Fixup`] that may refuse the broker's answer: the connection is then closed instead of
/// passing on something kgate cannot make Kafka-exact (or that would leak a name).
pub(crate) fn checked_fixup<Resp, F>(version: i16, f: F) -> Fixup
where
    Resp: Decodable + Encodable + 'static,
    F: FnOnce(&mut Resp) -> Result<(), FixupError> + Send + 'static,
{
    Box::new(move |body: Bytes| super::convert::<Resp, _>(body, version, version, f))
}

/// Puts answers back in request order, for the APIs Kafka answers item by item: `local[i]` is
/// kgate's answer to request item `i` (`None` when the item was forwarded), and the broker's
/// answers are matched to the forwarded items by key, first come first served. Broker answers
/// no item claimed are kept at the end.
pub(crate) fn in_request_order<T>(
    keys: &[String],
    mut local: Vec<Option<T>>,
    upstream: Vec<T>,
    key: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut upstream: Vec<Option<T>> = upstream.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if let Some(answer) = local.get_mut(i).and_then(Option::take) {
            out.push(answer);
        } else if let Some(slot) = upstream
            .iter_mut()
            .find(|u| u.as_ref().is_some_and(|u| key(u) == k.as_str()))
        {
            if let Some(answer) = slot.take() {
                out.push(answer);
            }
        }
    }
    out.extend(upstream.into_iter().flatten());
    out
}
