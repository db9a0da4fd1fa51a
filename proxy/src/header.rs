//! Request and response headers, read without trusting the bytes.
//!
//! The gateway needs the API key, the version and the correlation id of every request, and
//! the full header (client id, tagged fields) only for the requests it decodes. Reading them
//! here, with checked lengths, keeps every caller free of slicing that could panic.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// The fixed prefix every request starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    /// The raw API key, kept even when kgate does not know it, to name it in logs.
    pub api_key: i16,
    /// The requested API version.
    pub api_version: i16,
    /// Echoed unchanged in the response.
    pub correlation_id: i32,
}

impl RequestPrefix {
    /// Reads the first 8 bytes of a request; `None` if the frame is shorter.
    pub fn peek(frame: &[u8]) -> Option<Self> {
        let mut b = frame.get(..8)?;
        Some(Self {
            api_key: b.get_i16(),
            api_version: b.get_i16(),
            correlation_id: b.get_i32(),
        })
    }

    /// The API key as kafka-protocol knows it, if it knows it.
    pub fn known_key(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }
}

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed {api:?} v{version} request: {reason}")]
pub struct DecodeError {
    /// The API the request claimed to be.
    pub api: ApiKey,
    /// The version it claimed.
    pub version: i16,
    /// What the decoder reported.
    pub reason: String,
}

/// Decodes the header of a request whose key and version are already validated, and returns
/// it with the remaining body bytes.
///
/// # Errors
/// [`DecodeError`] if the header is malformed.
pub fn decode_request_header(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
) -> Result<(RequestHeader, Bytes), DecodeError> {
    let mut buf = frame.clone();
    let header =
        RequestHeader::decode(&mut buf, api.request_header_version(version)).map_err(|e| {
            DecodeError {
                api,
                version,
                reason: e.to_string(),
            }
        })?;
    Ok((header, buf))
}

/// Decodes a request body of type `T` (the body bytes that follow the header).
///
/// # Errors
/// [`DecodeError`] if the body is malformed or has trailing bytes.
pub fn decode_body<T: Decodable>(
    api: ApiKey,
    version: i16,
    mut body: Bytes,
) -> Result<T, DecodeError> {
    let value = T::decode(&mut body, version).map_err(|e| DecodeError {
        api,
        version,
        reason: e.to_string(),
    })?;
    Ok(value)
}

/// Encodes a response (header and body, without the size prefix).
///
/// # Errors
/// Only if kafka-protocol cannot encode the body at this version, which is a bug in kgate.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // ApiVersions responses always use header v0, even for flexible versions (KIP-511).
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    header
        .encode(&mut buf, header_version)
        .map_err(|e| EncodeError(format!("{api:?} v{version} header: {e}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError(format!("{api:?} v{version} body: {e}")))?;
    Ok(buf.freeze())
}

/// Encodes a request (header and body, without the size prefix).
///
/// # Errors
/// Only if kafka-protocol cannot encode the request at this version.
pub fn encode_request<T: Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &T,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|e| EncodeError(format!("{api:?} v{version} header: {e}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError(format!("{api:?} v{version} body: {e}")))?;
    Ok(buf.freeze())
}

/// A message kgate built could not be encoded (a bug, never caused by peer bytes alone).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {0}")]
pub struct EncodeError(pub String);

/// Splits a response frame into its header and body for an API and version.
///
/// # Errors
/// [`DecodeError`] if the header is malformed.
pub fn decode_response_header(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
) -> Result<(ResponseHeader, Bytes), DecodeError> {
    let mut buf = frame.clone();
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = ResponseHeader::decode(&mut buf, header_version).map_err(|e| DecodeError {
        api,
        version,
        reason: e.to_string(),
    })?;
    Ok((header, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_refuses_short_frames() {
        assert!(RequestPrefix::peek(&[0, 18, 0, 3, 0, 0, 0]).is_none());
        let p = RequestPrefix::peek(&[0, 18, 0, 3, 0, 0, 0, 7, 0xff]).unwrap();
        assert_eq!(p.api_key, 18);
        assert_eq!(p.api_version, 3);
        assert_eq!(p.correlation_id, 7);
        assert_eq!(p.known_key(), Some(ApiKey::ApiVersions));
    }

    #[test]
    fn unknown_api_key_is_a_value_not_an_error() {
        let p = RequestPrefix::peek(&[0x7f, 0, 0, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(p.known_key(), None);
    }

    #[test]
    fn truncated_header_is_an_error() {
        let frame = Bytes::from_static(&[0, 3, 0, 9, 0, 0, 0, 1, 0x7f]);
        assert!(decode_request_header(ApiKey::Metadata, 9, &frame).is_err());
    }
}
