//! Reading just enough of a response to know whether kgate must change it.
//!
//! From Produce v10 and Fetch v16 a broker may add leader endpoints (KIP-951, broker
//! addresses sent with NOT_LEADER_OR_FOLLOWER) to an answer, as a top-level tagged field
//! after everything else. Almost every answer has none. Decoding each one to find out would
//! build a vector per topic and partition for every acknowledged batch and copy every record
//! batch kgate forwards; instead the answer is walked field by field with a checked cursor,
//! allocating nothing and skipping record bytes unread, and it is decoded (and rewritten)
//! only when the tagged field is there, which happens when partition leadership moves.
//!
//! # Produce (v10+, body after the response header)
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
//!
//! # Fetch (v16+)
//! ```text
//! throttle_time_ms, error_code, session_id: 4+2+4 bytes
//! responses:        compact array of
//!   topic id        16 bytes
//!   partitions:     compact array of
//!     index, error_code, high_watermark, last_stable_offset, log_start_offset: 4+2+8+8+8
//!     aborted_transactions compact nullable array of { producer_id, first_offset, tags }
//!     preferred_read_replica 4 bytes
//!     records       compact nullable bytes (skipped unread)
//!     tagged fields
//!   tagged fields
//! tagged fields     tag 0: node endpoints
//! ```

/// A response that ended early or carried an impossible length.
#[derive(Debug, thiserror::Error)]
#[error("response malformed at byte {at}: {what}")]
pub struct ScanError {
    at: usize,
    what: &'static str,
}

/// A cursor over a response body.
struct Scan<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Scan<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Scan { buf, pos: 0 }
    }

    fn fail(&self, what: &'static str) -> ScanError {
        ScanError { at: self.pos, what }
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), ScanError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                self.pos = end;
                Ok(())
            }
            _ => Err(self.fail(what)),
        }
    }

    /// An unsigned varint of at most 32 bits (Kafka's lengths and tags).
    fn uvarint(&mut self, what: &'static str) -> Result<u32, ScanError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.fail(what));
            };
            self.pos += 1;
            if i == 4 && byte > 0x0f {
                return Err(self.fail("varint longer than 32 bits"));
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fail("varint longer than 32 bits"))
    }

    /// The length of a compact (nullable) array, string or bytes: `None` for null.
    fn compact_len(&mut self, what: &'static str) -> Result<Option<usize>, ScanError> {
        let n = self.uvarint(what)?;
        Ok(n.checked_sub(1).map(|n| n as usize))
    }

    /// Skips a compact string; null is refused unless `nullable`.
    fn string(&mut self, what: &'static str, nullable: bool) -> Result<(), ScanError> {
        match self.compact_len(what)? {
            Some(n) => self.skip(n, what),
            None if nullable => Ok(()),
            None => Err(self.fail(what)),
        }
    }

    /// The element count of a compact array that may not be null.
    fn array(&mut self, what: &'static str) -> Result<usize, ScanError> {
        self.compact_len(what)?.ok_or_else(|| self.fail(what))
    }

    /// Skips a block of tagged fields; says whether `tag` was among them.
    fn tagged_fields(&mut self, tag: u32) -> Result<bool, ScanError> {
        let count = self.uvarint("tagged field count")?;
        let mut found = false;
        for _ in 0..count {
            let t = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            self.skip(size as usize, "tagged field")?;
            found |= t == tag;
        }
        Ok(found)
    }
}

/// The Produce versions whose answers may carry leader endpoints (and that this walk knows).
const PRODUCE_WITH_ENDPOINTS: std::ops::RangeInclusive<i16> = 10..=13;

/// Whether a Produce answer body (after the response header) names brokers, that is carries
/// leader endpoints; always `false` before v10.
///
/// # Errors
/// [`ScanError`] for a body that is not a well-formed Produce answer of `version` (or a
/// version this walk does not know); never a panic, whatever the bytes.
pub fn produce_names_brokers(body: &[u8], version: i16) -> Result<bool, ScanError> {
    if version < *PRODUCE_WITH_ENDPOINTS.start() {
        return Ok(false);
    }
    let mut s = Scan::new(body);
    if !PRODUCE_WITH_ENDPOINTS.contains(&version) {
        return Err(s.fail("a Produce version this walk does not know"));
    }
    let topics = s.array("responses")?;
    for _ in 0..topics {
        if version >= 13 {
            s.skip(16, "topic id")?;
        } else {
            s.string("topic name", false)?;
        }
        let partitions = s.array("partition responses")?;
        for _ in 0..partitions {
            s.skip(4 + 2 + 8 + 8 + 8, "partition response")?;
            let errors = s.array("record errors")?;
            for _ in 0..errors {
                s.skip(4, "batch index")?;
                s.string("batch index error message", true)?;
                s.tagged_fields(u32::MAX)?;
            }
            s.string("error message", true)?;
            s.tagged_fields(u32::MAX)?;
        }
        s.tagged_fields(u32::MAX)?;
    }
    s.skip(4, "throttle time")?;
    let found = s.tagged_fields(NODE_ENDPOINTS_TAG)?;
    if s.pos != body.len() {
        return Err(s.fail("bytes after the end of the answer"));
    }
    Ok(found)
}

/// The first Fetch version whose answers may carry leader endpoints.
pub const FETCH_WITH_ENDPOINTS: i16 = 16;

/// The tag of `NodeEndpoints` in Produce and Fetch answers.
const NODE_ENDPOINTS_TAG: u32 = 0;

/// Whether a Fetch answer body (after the response header) names brokers, that is carries
/// leader endpoints; always `false` before v16.
///
/// # Errors
/// [`ScanError`] for a body that ends early or whose lengths run past its end.
pub fn fetch_names_brokers(body: &[u8], version: i16) -> Result<bool, ScanError> {
    if version < FETCH_WITH_ENDPOINTS {
        return Ok(false);
    }
    let mut s = Scan::new(body);
    // throttle_time_ms, error_code, session_id
    s.skip(4 + 2 + 4, "header fields")?;
    let topics = s.compact_len("topic count")?.unwrap_or(0);
    for _ in 0..topics {
        s.skip(16, "topic id")?;
        let partitions = s.compact_len("partition count")?.unwrap_or(0);
        for _ in 0..partitions {
            // partition_index, error_code, high_watermark, last_stable_offset,
            // log_start_offset
            s.skip(4 + 2 + 8 + 8 + 8, "partition fields")?;
            let aborted = s.compact_len("aborted transactions")?.unwrap_or(0);
            for _ in 0..aborted {
                s.skip(8 + 8, "aborted transaction")?;
                s.tagged_fields(u32::MAX)?;
            }
            s.skip(4, "preferred read replica")?;
            let records = s.compact_len("records length")?.unwrap_or(0);
            s.skip(records, "records")?;
            s.tagged_fields(u32::MAX)?;
        }
        s.tagged_fields(u32::MAX)?;
    }
    let found = s.tagged_fields(NODE_ENDPOINTS_TAG)?;
    if s.pos != body.len() {
        return Err(s.fail("bytes after the end of the answer"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
        PartitionData,
    };
    use kafka_protocol::messages::produce_response::{
        self, BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{BrokerId, FetchResponse, ProduceResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn answer(endpoints: bool) -> FetchResponse {
        let partition = |i: i32, records: Option<Bytes>| {
            PartitionData::default()
                .with_partition_index(i)
                .with_high_watermark(100)
                .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                    .with_producer_id(kafka_protocol::messages::ProducerId(7))
                    .with_first_offset(3)]))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(2))
                        .with_leader_epoch(4),
                )
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(1))
                .with_records(records)
        };
        let mut r = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic_id(uuid::Uuid::from_u128(9))
                .with_partitions(vec![
                    partition(0, Some(Bytes::from(vec![0xab; 300]))),
                    partition(1, None),
                ]),
            FetchableTopicResponse::default().with_topic_id(uuid::Uuid::from_u128(10)),
        ]);
        if endpoints {
            r.node_endpoints = vec![NodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(StrBytes::from_static_str("10.0.0.2"))
                .with_port(9092)];
        }
        r
    }

    fn encoded(r: &FetchResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, version).expect("encode");
        buf.freeze()
    }

    #[test]
    fn finds_leader_endpoints_and_only_them() {
        for version in [16i16, 17, 18] {
            let with = encoded(&answer(true), version);
            let without = encoded(&answer(false), version);
            assert!(
                fetch_names_brokers(&with, version).expect("scan"),
                "v{version}"
            );
            assert!(
                !fetch_names_brokers(&without, version).expect("scan"),
                "v{version}"
            );
        }
        let old = encoded(&answer(false), 15);
        assert!(!fetch_names_brokers(&old, 15).expect("not scanned"));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let full = encoded(&answer(true), 17);
        for cut in 0..full.len() {
            assert!(
                fetch_names_brokers(&full[..cut], 17).is_err(),
                "a body cut at {cut} of {} passed",
                full.len()
            );
        }
        let mut long = full.to_vec();
        long.push(0);
        assert!(fetch_names_brokers(&long, 17).is_err(), "trailing bytes");
        // A records length far past the end, and an over-long varint.
        let mut huge = vec![0u8; 10];
        huge.extend([
            2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ]);
        assert!(fetch_names_brokers(&huge, 16).is_err());
    }

    /// A Produce answer with two topics, partitions with record errors, a current leader and
    /// an unknown top-level tag: everything the walk must step over.
    fn busy_produce() -> ProduceResponse {
        let partition = |i: i32| {
            PartitionProduceResponse::default()
                .with_index(i)
                .with_error_code(6)
                .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                    .with_batch_index(3)
                    .with_batch_index_error_message(Some(StrBytes::from_static_str("bad")))])
                .with_error_message(Some(StrBytes::from_static_str("not leader")))
                .with_current_leader(
                    produce_response::LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(2))
                        .with_leader_epoch(7),
                )
        };
        let topic = |name: &'static str| {
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_topic_id(uuid::Uuid::from_u128(5))
                .with_partition_responses(vec![partition(0), partition(1)])
        };
        let mut r = ProduceResponse::default()
            .with_responses(vec![topic("a"), topic("bb")])
            .with_throttle_time_ms(5);
        r.unknown_tagged_fields
            .insert(9, Bytes::from_static(b"xyz"));
        r
    }

    fn produce_bytes(r: &ProduceResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, version).expect("encode");
        buf.freeze()
    }

    #[test]
    fn finds_produce_leader_endpoints_after_everything_else() {
        let moved =
            busy_produce().with_node_endpoints(vec![produce_response::NodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(StrBytes::from_static_str("10.0.0.2"))
                .with_port(9092)]);
        for version in PRODUCE_WITH_ENDPOINTS {
            let plain = produce_bytes(&ProduceResponse::default(), version);
            assert_eq!(
                produce_names_brokers(&plain, version).ok(),
                Some(false),
                "v{version}"
            );
            let busy = produce_bytes(&busy_produce(), version);
            assert_eq!(
                produce_names_brokers(&busy, version).ok(),
                Some(false),
                "v{version}"
            );
            let with = produce_bytes(&moved, version);
            assert_eq!(
                produce_names_brokers(&with, version).ok(),
                Some(true),
                "v{version}"
            );
            for cut in 0..with.len() {
                assert!(
                    produce_names_brokers(&with[..cut], version).is_err(),
                    "v{version} cut at {cut}"
                );
            }
        }
        assert_eq!(
            produce_names_brokers(&[], 9).ok(),
            Some(false),
            "before v10: never"
        );
        assert!(
            produce_names_brokers(&[], 14).is_err(),
            "a version the walk does not know"
        );
    }

    #[test]
    fn hostile_bytes_are_errors_never_panics() {
        // Huge counts and lengths, an over-long varint, a null array.
        let cases: [&[u8]; 5] = [
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x02, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            &[0x00],
            &[0x01, 0, 0, 0, 0, 0x01, 0x07, 0x05],
        ];
        for bytes in cases {
            assert!(produce_names_brokers(bytes, 11).is_err(), "{bytes:?}");
        }
        // Pseudo-random bytes: any answer but a panic.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..4000 {
            let mut bytes = [0u8; 48];
            for b in &mut bytes {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let _ = produce_names_brokers(&bytes, 12);
            let _ = fetch_names_brokers(&bytes, 17);
        }
    }
}
