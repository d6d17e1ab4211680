//! Round trips and damaged input of the `__consumer_offsets` codecs.

use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordEncodeOptions, TimestampType};

use super::*;

#[test]
fn offsets_and_groups_round_trip_through_a_batch() {
    let offset = OffsetValue {
        offset: 42,
        leader_epoch: 0,
        metadata: "m".into(),
        commit_timestamp_ms: 7,
        expire_timestamp_ms: None,
    };
    let group = GroupValue {
        protocol_type: "consumer".into(),
        generation: 3,
        protocol: Some("range".into()),
        leader: Some("a".into()),
        state_timestamp_ms: 9,
        members: vec![MemberValue {
            member_id: "a".into(),
            group_instance_id: Some("i".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 300,
            session_timeout_ms: 100,
            subscription: Bytes::from_static(b"sub"),
            assignment: Bytes::from_static(b"asg"),
        }],
    };
    let entries = vec![
        (offset_key("g", "t", 2), Some(offset_value(&offset))),
        (group_key("g"), Some(group_value(&group))),
        (offset_key("g", "t", 3), None),
    ];
    let bytes = batch(&entries, 1);
    let decoded = decode_batches(bytes).records;
    assert_eq!(decoded.len(), 3);
    assert_eq!(
        decode(&decoded[0].1, decoded[0].2.as_ref()).unwrap(),
        Some(Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
            value: Some(offset)
        })
    );
    assert_eq!(
        decode(&decoded[1].1, decoded[1].2.as_ref()).unwrap(),
        Some(Entry::Group {
            group: "g".into(),
            value: Some(group)
        })
    );
    assert!(matches!(
        decode(&decoded[2].1, None).unwrap(),
        Some(Entry::Offset { value: None, .. })
    ));
}

#[test]
fn hostile_batches_are_reported_not_decoded() {
    let good = batch(
        &[(
            offset_key("g", "t", 0),
            Some(offset_value(&OffsetValue {
                offset: 42,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
                expire_timestamp_ms: None,
            })),
        )],
        1,
    )
    .to_vec();
    // recordsCount 2^31-1 with one record present: CRC-valid, refused
    // by the parser instead of allocating for the count.
    let mut poisoned = good.clone();
    poisoned[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    poisoned[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&poisoned[21..]);
    poisoned[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut all = good.clone();
    all.extend_from_slice(&poisoned);
    // A keyless record (a client's garbage, not the coordinator's).
    let keyless = {
        use kafka_protocol::records::RecordBatchEncoder;
        let mut r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from_static(b"junk")),
            headers: IndexMap::new(),
        };
        r.offset = 0;
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &[r],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        let mut b = buf.to_vec();
        b[..8].copy_from_slice(&2i64.to_be_bytes());
        b
    };
    all.extend_from_slice(&keyless);
    let decoded = decode_batches(Bytes::from(all));
    assert_eq!(decoded.records.len(), 1);
    assert_eq!(decoded.bad_batches.len(), 1);
    assert!(
        decoded.bad_batches[0].1.contains("recordsCount"),
        "{:?}",
        decoded.bad_batches
    );
    assert_eq!(decoded.keyless, vec![2]);
    assert_eq!(decoded.next_offset, Some(3));
}

#[test]
fn consumer_group_records_round_trip() {
    let topic = Uuid::from_u128(0xfeed);
    let partitions = Partitions::from([(topic, BTreeSet::from([0, 2]))]);
    let records = [
        ConsumerRecord::Epoch(Some(7)),
        ConsumerRecord::PartitionMetadata(Some(vec![TopicMetadata {
            id: topic,
            name: "t".into(),
            partitions: 3,
        }])),
        ConsumerRecord::Member {
            member: "m".into(),
            value: Some(MemberSubscription {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                topic_names: vec!["t".into()],
                topic_regex: Some("t.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("range".into()),
            }),
        },
        ConsumerRecord::TargetEpoch(Some(7)),
        ConsumerRecord::Target {
            member: "m".into(),
            value: Some(partitions.clone()),
        },
        ConsumerRecord::Current {
            member: "m".into(),
            value: Some(CurrentAssignment {
                member_epoch: 7,
                previous_member_epoch: 6,
                state: 1,
                assigned: partitions.clone(),
                pending_revocation: Partitions::from([(topic, BTreeSet::from([1]))]),
            }),
        },
        ConsumerRecord::Current {
            member: "m".into(),
            value: None,
        },
    ];
    let entries: Vec<_> = records.iter().map(|r| consumer_entry("g", r)).collect();
    let decoded = decode_batches(batch(&entries, 1)).records;
    assert_eq!(decoded.len(), records.len());
    for ((_, key, value), record) in decoded.iter().zip(records) {
        let entry = decode(key, value.as_ref()).unwrap();
        assert_eq!(
            entry,
            Some(Entry::Consumer {
                group: "g".into(),
                record
            })
        );
    }
    // The key is the record type as version, then the group (Kafka's layout).
    assert_eq!(&entries[0].0[..], b"\x00\x03\x00\x01g");
}

#[test]
fn an_offset_with_its_own_retention_round_trips_as_a_version_1_value() {
    let offset = OffsetValue {
        offset: 9,
        leader_epoch: -1,
        metadata: "meta".into(),
        commit_timestamp_ms: 1_000,
        expire_timestamp_ms: Some(61_000),
    };
    let value = offset_value(&offset);
    assert_eq!(&value[..2], &1i16.to_be_bytes());
    let bytes = batch(&[(offset_key("g", "t", 0), Some(value))], 1);
    let decoded = decode_batches(bytes).records;
    assert_eq!(
        decode(&decoded[0].1, decoded[0].2.as_ref()).unwrap(),
        Some(Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(offset)
        })
    );
}
