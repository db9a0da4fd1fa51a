//! Finding out, without decoding, whether a Produce response names brokers.
//!
//! From v10 a Produce response may carry KIP-951 leader endpoints (broker addresses, sent
//! with NOT_LEADER_OR_FOLLOWER) in its top-level tagged field 0, which kgate must rewrite.
//! Almost every answer has none. Decoding the whole message to find out built a vector per
//! topic and per partition for every acknowledged batch; this walks the same bytes with a
//! checked cursor, allocating nothing, so that only the rare answer with endpoints is
//! decoded and rewritten and every other one is forwarded as the broker's bytes.
//!
//! # Format (flexible versions, body after the response header)
//! ```text
//! responses:        compact array of
//!   name            compact string (v10-12) | topic id, 16 bytes (v13)
//!   partitions:     compact array of
//!     index, error_code, base_offset, log_append_time_ms, log_start_offset: 4+2+8+8+8 bytes
//!     record_errors compact array of { batch_index: 4 bytes, message: compact string, tags }
//!     error_message compact nullable string
//!     tagged fields (tag 0: current leader; skipped by its size like any other)
//!   tagged fields
//! throttle_time_ms  4 bytes
//! tagged fields     tag 0: node endpoints
//! ```

/// Why a Produce response could not be scanned: it is truncated or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The bytes end before the field does.
    #[error("truncated at byte {at}: {field} needs more bytes")]
    Truncated {
        /// Offset in the body where the field starts.
        at: usize,
        /// The field being read.
        field: &'static str,
    },
    /// A varint runs past 5 bytes (more than 32 bits).
    #[error("varint longer than 5 bytes at byte {at}")]
    Varint {
        /// Offset in the body where the varint starts.
        at: usize,
    },
    /// An array or string that may not be null is.
    #[error("null {field} at byte {at}")]
    Null {
        /// Offset in the body.
        at: usize,
        /// The field.
        field: &'static str,
    },
    /// This module knows only the flexible versions that may carry endpoints.
    #[error("Produce response v{0} is not scanned (only v10 to v13)")]
    Version(i16),
}

/// The first and last Produce versions this scan understands.
const VERSIONS: std::ops::RangeInclusive<i16> = 10..=13;

/// The top-level tag of KIP-951's node endpoints.
const NODE_ENDPOINTS_TAG: u32 = 0;

/// Whether a Produce response body (after its header) carries node endpoints.
///
/// # Errors
/// [`ScanError`] when the bytes are not a well-formed Produce response of `version`; never
/// panics, whatever the bytes.
pub fn has_node_endpoints(version: i16, body: &[u8]) -> Result<bool, ScanError> {
    if !VERSIONS.contains(&version) {
        return Err(ScanError::Version(version));
    }
    let mut c = Cursor { buf: body, pos: 0 };
    let topics = c.array("responses")?;
    for _ in 0..topics {
        if version >= 13 {
            c.skip(16, "topic id")?;
        } else {
            c.string("topic name", false)?;
        }
        let partitions = c.array("partition responses")?;
        for _ in 0..partitions {
            c.skip(4 + 2 + 8 + 8 + 8, "partition response")?;
            let errors = c.array("record errors")?;
            for _ in 0..errors {
                c.skip(4, "batch index")?;
                c.string("batch index error message", true)?;
                c.skip_tagged_fields()?;
            }
            c.string("error message", true)?;
            c.skip_tagged_fields()?;
        }
        c.skip_tagged_fields()?;
    }
    c.skip(4, "throttle time")?;
    let tags = c.varint()?;
    for _ in 0..tags {
        let tag = c.varint()?;
        if tag == NODE_ENDPOINTS_TAG {
            return Ok(true);
        }
        let size = c.varint()?;
        c.skip(size as usize, "tagged field")?;
    }
    Ok(false)
}

/// A read position in untrusted bytes; every step is checked.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn skip(&mut self, n: usize, field: &'static str) -> Result<(), ScanError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(ScanError::Truncated {
                at: self.pos,
                field,
            })?;
        self.pos = end;
        Ok(())
    }

    /// An unsigned varint of at most 32 bits.
    fn varint(&mut self) -> Result<u32, ScanError> {
        let at = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = *self.buf.get(self.pos).ok_or(ScanError::Truncated {
                at,
                field: "varint",
            })?;
            self.pos += 1;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ScanError::Varint { at })
    }

    /// A compact array's element count (the wire holds count + 1; 0 is null).
    fn array(&mut self, field: &'static str) -> Result<u32, ScanError> {
        let at = self.pos;
        match self.varint()? {
            0 => Err(ScanError::Null { at, field }),
            n => Ok(n - 1),
        }
    }

    /// A compact string (length + 1; 0 is null, allowed only where `nullable`), skipped.
    fn string(&mut self, field: &'static str, nullable: bool) -> Result<(), ScanError> {
        let at = self.pos;
        match self.varint()? {
            0 if nullable => Ok(()),
            0 => Err(ScanError::Null { at, field }),
            n => self.skip((n - 1) as usize, field),
        }
    }

    fn skip_tagged_fields(&mut self) -> Result<(), ScanError> {
        let count = self.varint()?;
        for _ in 0..count {
            self.varint()?;
            let size = self.varint()?;
            self.skip(size as usize, "tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
        TopicProduceResponse,
    };
    use kafka_protocol::messages::{BrokerId, ProduceResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// A response with two topics, partitions with errors, a current leader and an unknown
    /// top-level tag: everything the scan must step over.
    fn busy_response() -> ProduceResponse {
        let partition = |i: i32| {
            PartitionProduceResponse::default()
                .with_index(i)
                .with_error_code(6)
                .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                    .with_batch_index(3)
                    .with_batch_index_error_message(Some(StrBytes::from_static_str("bad")))])
                .with_error_message(Some(StrBytes::from_static_str("not leader")))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(2))
                        .with_leader_epoch(7),
                )
        };
        let topic = |name: &'static str| {
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_partition_responses(vec![partition(0), partition(1)])
        };
        let mut r = ProduceResponse::default()
            .with_responses(vec![topic("a"), topic("bb")])
            .with_throttle_time_ms(5);
        r.unknown_tagged_fields
            .insert(9, bytes::Bytes::from_static(b"xyz"));
        r
    }

    fn encode(r: &ProduceResponse, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, version).expect("encode");
        buf.to_vec()
    }

    #[test]
    fn finds_no_endpoints_in_a_plain_answer() {
        for version in VERSIONS {
            assert_eq!(
                has_node_endpoints(version, &encode(&ProduceResponse::default(), version)),
                Ok(false)
            );
            assert_eq!(
                has_node_endpoints(version, &encode(&busy_response(), version)),
                Ok(false),
                "v{version}"
            );
        }
    }

    #[test]
    fn finds_endpoints_after_everything_else() {
        let r = busy_response().with_node_endpoints(vec![NodeEndpoint::default()
            .with_node_id(BrokerId(2))
            .with_host(StrBytes::from_static_str("10.0.0.2"))
            .with_port(9092)]);
        for version in VERSIONS {
            assert_eq!(has_node_endpoints(version, &encode(&r, version)), Ok(true));
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for version in VERSIONS {
            let full = encode(&busy_response(), version);
            for len in 0..full.len() {
                assert!(
                    has_node_endpoints(version, &full[..len]).is_err(),
                    "v{version} cut at {len}"
                );
            }
        }
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        // Huge counts and lengths, an endless varint, a null array.
        let cases: [&[u8]; 5] = [
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x02, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            &[0x00],
            &[0x01, 0, 0, 0, 0, 0x01, 0x07, 0x05],
        ];
        for bytes in cases {
            assert!(has_node_endpoints(11, bytes).is_err(), "{bytes:?}");
        }
        // Pseudo-random bytes never panic (the answer may be anything but a panic).
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut bytes = [0u8; 48];
            for b in &mut bytes {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let _ = has_node_endpoints(12, &bytes);
        }
        assert_eq!(has_node_endpoints(9, &[]), Err(ScanError::Version(9)));
    }
}
