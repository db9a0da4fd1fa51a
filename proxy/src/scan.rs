//! Reading just enough of a response to know whether kgate must change it.
//!
//! From Fetch v16 a broker may add leader endpoints (KIP-951) to a fetch answer, as a tagged
//! field after every partition's records. Decoding each answer into messages to look for
//! them would copy every record batch kgate forwards; instead the answer is walked field by
//! field, record bytes skipped unread, and it is decoded (and rewritten) only when the tagged
//! field is there, which happens when partition leadership moves.

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

/// The first Fetch version whose answers may carry leader endpoints.
pub const FETCH_WITH_ENDPOINTS: i16 = 16;

/// The tag of `NodeEndpoints` in a Fetch answer.
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
    use kafka_protocol::messages::{BrokerId, FetchResponse};
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
}
