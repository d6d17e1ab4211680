//! Responses corelog decodes from other brokers: the replication client
//! (Fetch, OffsetForLeaderEpoch) and the command-line tools (every API they
//! call). The input is `[api key i16 BE][version i16 BE][response header and
//! body]`; a key corelog does not call, or a version the codec does not
//! know, is mapped onto one that it does, so no input is wasted. What
//! decodes must encode and decode to the same response; the records of a
//! Fetch response then go where the follower and the console consumer send
//! them (the batch iterator and kafka-protocol's record decoder).

#![no_main]

use bytes::Bytes;
use corelog::protocol::batch::BatchIter;
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::records::RecordBatchDecoder;
use libfuzzer_sys::fuzz_target;

/// Every API whose response `replication/client.rs` or `cli/` decodes.
const DECODED: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::FindCoordinator,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeLogDirs,
    ApiKey::DescribeQuorum,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let raw_key = i16::from_be_bytes([data[0], data[1]]);
    let raw_version = i16::from_be_bytes([data[2], data[3]]);
    let key = ApiKey::try_from(raw_key)
        .ok()
        .filter(|k| DECODED.contains(k))
        .unwrap_or(DECODED[raw_key.unsigned_abs() as usize % DECODED.len()]);
    let range = key.valid_versions();
    let version = if (range.min..=range.max).contains(&raw_version) {
        raw_version
    } else {
        range.min + raw_version.rem_euclid(range.max - range.min + 1)
    };
    let mut body = Bytes::copy_from_slice(&data[4..]);
    let Ok(header) = ResponseHeader::decode(&mut body, key.response_header_version(version)) else {
        return;
    };
    let Ok(response) = ResponseKind::decode(key, &mut body, version) else {
        return;
    };
    corelog_fuzz::response_round_trip(key, version, &header, &response);
    if let ResponseKind::Fetch(fetch) = &response {
        for topic in &fetch.responses {
            for partition in &topic.partitions {
                let Some(records) = &partition.records else {
                    continue;
                };
                // The follower (replica.rs) walks the batches with CRCs checked.
                let mut it = BatchIter::new(records, true);
                for (at, header) in it.by_ref() {
                    assert!(at + header.total_bytes() <= records.len());
                }
                // The console consumer decodes them with kafka-protocol.
                let mut rest = records.clone();
                let _ = RecordBatchDecoder::decode(&mut rest);
            }
        }
    }
});
