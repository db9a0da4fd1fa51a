//! kafka-protocol's decoders fed hostile bytes.
//!
//! Upstream kafka-protocol sizes `Vec::with_capacity` from element counts read off the wire,
//! so a 4-byte count of 2^31-1 asks the allocator for hundreds of gigabytes and aborts the
//! process (no `catch_unwind` helps). The vendored copy refuses a count larger than the bytes
//! left and pre-allocates at most 1024 elements (vendor/kafka-protocol/VENDORED.md). These
//! tests pin that down: every hostile count is an error, returned quickly, with the vendored
//! message, through the same functions the gateway calls. Without the fix this binary aborts.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Message, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use kgate_proxy::header::{decode_body, decode_request_header, RequestPrefix};

/// A refused decode must take far less than this (it takes microseconds).
const QUICK: Duration = Duration::from_secs(1);
/// An i32 array count of 2^31-1.
const HUGE_ARRAY: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
/// A compact array count of 2^32-2: the unsigned varint 2^32-1 (it stores n + 1).
const HUGE_COMPACT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

/// Runs `decode`, checks that it fails quickly, and returns the error text.
fn refused<T: std::fmt::Debug, E: std::fmt::Display>(
    what: &str,
    decode: impl FnOnce() -> Result<T, E>,
) -> String {
    let start = Instant::now();
    let result = decode();
    let took = start.elapsed();
    assert!(took < QUICK, "{what}: the decoder took {took:?}");
    match result {
        Ok(value) => panic!("{what}: decoded {value:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that the error is the vendored bound check, not some unrelated failure.
fn assert_bound_check(what: &str, error: &str) {
    assert!(
        error.contains("exceeds the") && error.contains("bytes remaining"),
        "{what}: {error}"
    );
}

fn is_flexible(api: ApiKey, version: i16) -> bool {
    api.request_header_version(version) >= 2
}

fn encode<T: Encodable>(message: &T, version: i16) -> Vec<u8> {
    let mut buf = Vec::new();
    message.encode(&mut buf, version).expect("encode");
    buf
}

/// Replaces the empty array at `at` (i32 0, or compact varint 1) with a hostile count.
fn with_huge_count(mut body: Vec<u8>, at: usize, flexible: bool) -> Bytes {
    if flexible {
        assert_eq!(body[at], 1, "an empty compact array at {at}: {body:02x?}");
        body.splice(at..at + 1, HUGE_COMPACT);
    } else {
        assert_eq!(
            body[at..at + 4],
            [0, 0, 0, 0],
            "an empty array at {at}: {body:02x?}"
        );
        body.splice(at..at + 4, HUGE_ARRAY);
    }
    Bytes::from(body)
}

// ---------------------------------------------------------------------------------------------
// Request bodies with hostile top-level and nested array counts, in every version.

#[test]
fn metadata_request_with_a_huge_topic_count_is_refused_in_every_version() {
    let versions = MetadataRequest::VERSIONS;
    for version in versions.min..=versions.max {
        let flexible = is_flexible(ApiKey::Metadata, version);
        let request = MetadataRequest::default().with_topics(Some(vec![]));
        // The topic array is the first field.
        let body = with_huge_count(encode(&request, version), 0, flexible);
        let what = format!("Metadata v{version}");
        let error = refused(&what, || {
            decode_body::<MetadataRequest>(ApiKey::Metadata, version, body)
        });
        assert_bound_check(&what, &error);
    }
}

#[test]
fn produce_request_with_a_huge_topic_count_is_refused_in_every_version() {
    let versions = ProduceRequest::VERSIONS;
    for version in versions.min..=versions.max {
        let flexible = is_flexible(ApiKey::Produce, version);
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1000);
        // transactional_id (null), acks, timeout_ms, then the topic array.
        let at = if flexible { 1 + 2 + 4 } else { 2 + 2 + 4 };
        let body = with_huge_count(encode(&request, version), at, flexible);
        let what = format!("Produce v{version}");
        let error = refused(&what, || {
            decode_body::<ProduceRequest>(ApiKey::Produce, version, body)
        });
        assert_bound_check(&what, &error);
    }
}

#[test]
fn produce_request_with_a_huge_partition_count_in_a_topic_is_refused_in_every_version() {
    let versions = ProduceRequest::VERSIONS;
    for version in versions.min..=versions.max {
        let flexible = is_flexible(ApiKey::Produce, version);
        // v13 names the topic by id (nil here), earlier versions by name.
        let topic = if version >= 13 {
            TopicProduceData::default()
        } else {
            TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("t")))
        };
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_topic_data(vec![topic]);
        let body = encode(&request, version);
        // The partition array ends the topic: [partitions][topic tags][request tags] when
        // flexible, [partitions] otherwise.
        let at = if flexible {
            body.len() - 3
        } else {
            body.len() - 4
        };
        let body = with_huge_count(body, at, flexible);
        let what = format!("Produce v{version} partitions");
        let error = refused(&what, || {
            decode_body::<ProduceRequest>(ApiKey::Produce, version, body)
        });
        assert_bound_check(&what, &error);
    }
}

#[test]
fn create_topics_request_with_huge_counts_is_refused_in_every_version() {
    let versions = CreateTopicsRequest::VERSIONS;
    for version in versions.min..=versions.max {
        let flexible = is_flexible(ApiKey::CreateTopics, version);
        // The topic array is the first field.
        let body = with_huge_count(
            encode(&CreateTopicsRequest::default(), version),
            0,
            flexible,
        );
        let what = format!("CreateTopics v{version}");
        let error = refused(&what, || {
            decode_body::<CreateTopicsRequest>(ApiKey::CreateTopics, version, body)
        });
        assert_bound_check(&what, &error);

        // Nested: one topic whose replica-assignment array claims 2^31-1 entries. The topic is
        // [name][num_partitions][replication_factor][assignments][configs](+tags).
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_num_partitions(1)
            .with_replication_factor(1);
        let request = CreateTopicsRequest::default().with_topics(vec![topic]);
        let body = encode(&request, version);
        let topics_len = if flexible { 1 } else { 4 };
        let name_len = if flexible { 1 + 1 } else { 2 + 1 };
        let at = topics_len + name_len + 4 + 2;
        let body = with_huge_count(body, at, flexible);
        let what = format!("CreateTopics v{version} assignments");
        let error = refused(&what, || {
            decode_body::<CreateTopicsRequest>(ApiKey::CreateTopics, version, body)
        });
        assert_bound_check(&what, &error);
    }
}

#[test]
fn nullable_array_counts_keep_their_meaning() {
    // -1 is a null array (Metadata v1+: every topic); any other negative count is an error.
    let all_topics = decode_body::<MetadataRequest>(
        ApiKey::Metadata,
        4,
        Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0]),
    )
    .expect("null topic array");
    assert_eq!(all_topics.topics, None);
    for count in [-2i32, i32::MIN] {
        let mut body = count.to_be_bytes().to_vec();
        body.push(0);
        let error = refused(&format!("Metadata v4 count {count}"), || {
            decode_body::<MetadataRequest>(ApiKey::Metadata, 4, Bytes::from(body))
        });
        assert!(error.contains("negative"), "{error}");
    }
}

#[test]
fn huge_tagged_field_count_is_refused_quickly() {
    // Metadata v9: empty topic array, three booleans, then 2^32-1 tagged fields and no bytes.
    let mut body = vec![1, 0, 0, 0];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    refused("Metadata v9 tagged fields", || {
        decode_body::<MetadataRequest>(ApiKey::Metadata, 9, Bytes::from(body))
    });
}

// ---------------------------------------------------------------------------------------------
// Whole frames, decoded the way the gateway's connection does.

fn header_bytes(api: ApiKey, version: i16) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("hostile")));
    encode(&header, api.request_header_version(version))
}

#[test]
fn hostile_produce_frame_is_refused_along_the_gateways_decode_path() {
    for version in [3, 9] {
        let flexible = is_flexible(ApiKey::Produce, version);
        let request = ProduceRequest::default().with_acks(-1);
        let body = encode(&request, version);
        let at = if flexible { 7 } else { 8 };
        let body = with_huge_count(body, at, flexible);
        let mut frame = header_bytes(ApiKey::Produce, version);
        frame.extend_from_slice(&body);
        let frame = Bytes::from(frame);

        let prefix = RequestPrefix::peek(&frame).expect("prefix");
        assert_eq!(prefix.known_key(), Some(ApiKey::Produce));
        let (_, rest) =
            decode_request_header(ApiKey::Produce, version, &frame).expect("a valid header");
        let what = format!("Produce v{version} frame");
        let error = refused(&what, || {
            decode_body::<ProduceRequest>(ApiKey::Produce, version, rest)
        });
        assert!(error.contains("malformed Produce"), "{error}");
        assert_bound_check(&what, &error);
    }
}

#[test]
fn hostile_request_headers_are_refused() {
    // A client id claiming 32767 bytes, with 3 present.
    let mut frame = vec![0, 3, 0, 4, 0, 0, 0, 1, 0x7f, 0xff];
    frame.extend_from_slice(b"abc");
    let frame = Bytes::from(frame);
    refused("client id length", || {
        decode_request_header(ApiKey::Metadata, 4, &frame)
    });

    // A flexible header (v2) whose tagged-field count is 2^32-1.
    let mut frame = vec![0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff];
    frame.extend_from_slice(&HUGE_COMPACT);
    let frame = Bytes::from(frame);
    refused("header tagged fields", || {
        decode_request_header(ApiKey::Metadata, 9, &frame)
    });
}

// ---------------------------------------------------------------------------------------------
// Record batches (magic 2), built by hand so that every count can lie.

/// CRC-32C (Castagnoli), as record batches use.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zigzag varint, as record fields use.
fn varint(value: i64, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One record: no key, value "v", `header_count` as claimed, then `headers` as is.
fn record(header_count: i64, headers: &[u8]) -> Vec<u8> {
    let mut body = vec![0]; // attributes
    varint(0, &mut body); // timestamp delta
    varint(0, &mut body); // offset delta
    varint(-1, &mut body); // no key
    varint(1, &mut body);
    body.push(b'v');
    varint(header_count, &mut body);
    body.extend_from_slice(headers);
    let mut out = Vec::new();
    varint(body.len() as i64, &mut out);
    out.extend_from_slice(&body);
    out
}

/// A v2 batch claiming `record_count` records, holding `records`, with a correct CRC.
fn batch(record_count: i32, records: &[u8]) -> Bytes {
    let mut checked = BytesMut::new(); // what the CRC covers: attributes to the end
    checked.put_i16(0); // attributes: no compression
    checked.put_i32(0); // last offset delta
    checked.put_i64(1_700_000_000_000); // first timestamp
    checked.put_i64(1_700_000_000_000); // max timestamp
    checked.put_i64(-1); // producer id
    checked.put_i16(-1); // producer epoch
    checked.put_i32(-1); // base sequence
    checked.put_i32(record_count);
    checked.put_slice(records);
    let mut out = BytesMut::new();
    out.put_i64(0); // base offset
    out.put_i32(i32::try_from(4 + 1 + 4 + checked.len()).expect("small")); // batch length
    out.put_i32(0); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(crc32c(&checked));
    out.put_slice(&checked);
    out.freeze()
}

#[test]
fn hand_built_batch_decodes_so_the_hostile_ones_fail_for_their_counts() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283, "the CRC-32C check value");
    let mut header = Vec::new();
    varint(1, &mut header);
    header.push(b'h');
    varint(1, &mut header);
    header.push(b'x');
    let mut buf = batch(1, &record(1, &header));
    let set = RecordBatchDecoder::decode(&mut buf).expect("a valid batch");
    assert_eq!(set.records.len(), 1);
    assert_eq!(set.records[0].value.as_deref(), Some(&b"v"[..]));
    assert_eq!(set.records[0].headers.len(), 1);
}

#[test]
fn record_batch_with_a_huge_record_count_is_refused() {
    for count in [i32::MAX, 1 << 24, 1000] {
        let mut buf = batch(count, &record(0, &[]));
        let what = format!("record count {count}");
        let error = refused(&what, || RecordBatchDecoder::decode(&mut buf));
        if count > 1000 {
            assert!(error.contains("Record count"), "{what}: {error}");
        }
    }
    let mut buf = batch(-1, &record(0, &[]));
    let error = refused("record count -1", || RecordBatchDecoder::decode(&mut buf));
    assert!(error.contains("negative"), "{error}");
}

#[test]
fn record_with_a_huge_header_count_is_refused() {
    for count in [i64::from(i32::MAX), 1 << 24] {
        let mut buf = batch(1, &record(count, &[]));
        let what = format!("header count {count}");
        let error = refused(&what, || RecordBatchDecoder::decode(&mut buf));
        assert!(error.contains("header count"), "{what}: {error}");
    }
    let mut buf = batch(1, &record(-1, &[]));
    let error = refused("header count -1", || RecordBatchDecoder::decode(&mut buf));
    assert!(error.contains("negative"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Sweeps: every API and version, hostile counts at every offset and hostile byte patterns.

/// The default request of an API kgate can be asked to forward or answer, encoded.
fn default_request(api: ApiKey, version: i16) -> Option<Vec<u8>> {
    fn enc<T: Encodable + Default>(version: i16) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        T::default().encode(&mut buf, version).ok().map(|()| buf)
    }
    macro_rules! table {
        ($($key:ident => $ty:ty),* $(,)?) => {
            match api {
                $(ApiKey::$key => enc::<$ty>(version),)*
                _ => None,
            }
        };
    }
    table! {
        Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest, OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest, FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest, Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest, SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest, ListGroups => ListGroupsRequest,
        SaslHandshake => SaslHandshakeRequest, ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest, DeleteTopics => DeleteTopicsRequest,
        DeleteRecords => DeleteRecordsRequest, InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest, EndTxn => EndTxnRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest, DescribeAcls => DescribeAclsRequest,
        CreateAcls => CreateAclsRequest, DeleteAcls => DeleteAclsRequest,
        DescribeConfigs => DescribeConfigsRequest, AlterConfigs => AlterConfigsRequest,
        DescribeLogDirs => DescribeLogDirsRequest, SaslAuthenticate => SaslAuthenticateRequest,
        CreatePartitions => CreatePartitionsRequest, DeleteGroups => DeleteGroupsRequest,
        ElectLeaders => ElectLeadersRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        OffsetDelete => OffsetDeleteRequest, DescribeClientQuotas => DescribeClientQuotasRequest,
        AlterClientQuotas => AlterClientQuotasRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        DescribeCluster => DescribeClusterRequest, DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
    }
}

/// Decodes `bytes` as a request (or response) of `api` and `version`; returns a description of
/// the failure if the decoder panicked or was slow, `None` if it returned (`Ok` or `Err`).
fn probe(api: ApiKey, version: i16, bytes: &[u8], response: bool) -> Option<String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if response {
            ResponseKind::decode(api, &mut buf, version).is_ok()
        } else {
            RequestKind::decode(api, &mut buf, version).is_ok()
        }
    }));
    let took = start.elapsed();
    let kind = if response { "response" } else { "request" };
    match outcome {
        Err(_) => Some(format!(
            "{api:?} v{version} {kind} panicked on {bytes:02x?}"
        )),
        Ok(_) if took >= QUICK => Some(format!("{api:?} v{version} {kind} took {took:?}")),
        Ok(_) => None,
    }
}

#[test]
fn huge_counts_at_every_offset_of_every_request_are_survived() {
    let mut failures = Vec::new();
    let mut probes = 0;
    for row in kgate_proxy::registry::SERVED {
        let versions = row.key.valid_versions();
        for version in versions.min..=versions.max {
            let Some(body) = default_request(row.key, version) else {
                continue;
            };
            for at in 0..body.len() {
                for hostile in [&HUGE_ARRAY[..], &HUGE_COMPACT[..]] {
                    let mut bytes = body.clone();
                    let end = (at + hostile.len()).min(bytes.len());
                    bytes.splice(at..end, hostile.iter().copied());
                    probes += 1;
                    failures.extend(probe(row.key, version, &bytes, false));
                }
            }
        }
    }
    assert!(probes > 1000, "only {probes} probes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// xorshift64*: deterministic bytes, so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn byte(&mut self) -> u8 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    }
}

#[test]
fn hostile_byte_patterns_are_survived_by_every_request_and_response_decoder() {
    let mut patterns: Vec<Vec<u8>> = vec![
        HUGE_ARRAY.repeat(16),
        HUGE_COMPACT.repeat(12),
        vec![0xff; 64],
        vec![0x01; 64],
        vec![0; 64],
    ];
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for len in 0..64 {
        patterns.push((0..len * 2).map(|_| noise.byte()).collect());
    }
    let mut failures = Vec::new();
    for api in ApiKey::iter() {
        let versions = api.valid_versions();
        for version in versions.min..=versions.max {
            for pattern in &patterns {
                for response in [false, true] {
                    failures.extend(probe(api, version, pattern, response));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
