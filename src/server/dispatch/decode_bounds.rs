//! Hostile bytes through the whole decoder: huge counts and lengths in
//! every position of requests of every served API and version, truncated
//! frames, and the record and compression decoders the broker uses. Each
//! case must give an error or a value, never a panic or an allocation
//! abort (which would end this test process).

use super::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The body of `key`'s request with default fields, if it encodes at
/// `version`.
fn default_body(key: ApiKey, version: i16) -> Option<BytesMut> {
    macro_rules! encode {
        ($($key:ident => $ty:ty),* $(,)?) => {
            match key {
                $(ApiKey::$key => {
                    let mut buf = BytesMut::new();
                    <$ty>::default().encode(&mut buf, version).ok().map(|_| buf)
                })*
                _ => None,
            }
        };
    }
    encode!(
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        ListGroups => ListGroupsRequest,
        DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest,
        OffsetDelete => OffsetDeleteRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        InitProducerId => InitProducerIdRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        CreatePartitions => CreatePartitionsRequest,
        DeleteRecords => DeleteRecordsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeQuorum => DescribeQuorumRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        ElectLeaders => ElectLeadersRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        CreateAcls => CreateAclsRequest,
        DescribeAcls => DescribeAclsRequest,
        DeleteAcls => DeleteAclsRequest,
        SaslHandshake => SaslHandshakeRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
    )
}

/// Requests with nested arrays filled in, so that inner counts get
/// their turn too.
fn rich_bodies(key: ApiKey, version: i16) -> Vec<BytesMut> {
    let mut out = Vec::new();
    let mut push = |result: anyhow::Result<()>, buf: BytesMut| {
        if result.is_ok() {
            out.push(buf);
        }
    };
    let mut buf = BytesMut::new();
    match key {
        ApiKey::AlterUserScramCredentials => {
            let request = AlterUserScramCredentialsRequest::default()
                .with_upsertions(vec![
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_static_str("a"))
                        .with_salt(Bytes::from_static(&[1; 16]))
                        .with_salted_password(Bytes::from_static(&[2; 32]));
                    2
                ])
                .with_deletions(vec![
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_static_str("b"));
                    2
                ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::DescribeUserScramCredentials => {
            let request = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default()
                    .with_name(StrBytes::from_static_str("a"));
                2
            ]));
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::Produce => {
            let partitions = (0..2)
                .map(|i| {
                    produce_request::PartitionProduceData::default()
                        .with_index(i)
                        .with_records(Some(Bytes::from_static(&[7; 16])))
                })
                .collect::<Vec<_>>();
            let request = ProduceRequest::default().with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(topic("a"))
                    .with_partition_data(partitions.clone()),
                produce_request::TopicProduceData::default()
                    .with_name(topic("b"))
                    .with_partition_data(partitions),
            ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::Fetch => {
            let partitions = (0..2)
                .map(|i| fetch_request::FetchPartition::default().with_partition(i))
                .collect::<Vec<_>>();
            let request = FetchRequest::default()
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(topic("a"))
                    .with_partitions(partitions)])
                .with_forgotten_topics_data(if version >= 7 {
                    vec![fetch_request::ForgottenTopic::default()
                        .with_topic(topic("b"))
                        .with_partitions(vec![1, 2])]
                } else {
                    vec![]
                });
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::Metadata => {
            let request = MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic("a"))),
            ]));
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::CreateTopics => {
            let request = CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(topic("a"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![
                        create_topics_request::CreatableReplicaAssignment::default()
                            .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
                    ])
                    .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_value(Some(StrBytes::from_static_str("1")))]),
            ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::OffsetCommit => {
            let request = OffsetCommitRequest::default().with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic("a"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_committed_metadata(Some(StrBytes::from_static_str("m"))),
                    ]),
            ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::ListOffsets => {
            let request = ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic("a"))
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()]),
            ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::JoinGroup => {
            let request = JoinGroupRequest::default().with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(&[0, 3, 0, 0, 0, 1])),
            ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::IncrementalAlterConfigs => {
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_name(StrBytes::from_static_str("a"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("retention.ms")),
                    ]),
            ]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::CreateAcls => {
            let creation = create_acls_request::AclCreation::default()
                .with_resource_name(StrBytes::from_static_str("a"))
                .with_principal(StrBytes::from_static_str("User:a"))
                .with_host(StrBytes::from_static_str("*"));
            let request =
                CreateAclsRequest::default().with_creations(vec![creation.clone(), creation]);
            push(request.encode(&mut buf, version), buf);
        }
        ApiKey::DeleteAcls => {
            let filter = delete_acls_request::DeleteAclsFilter::default()
                .with_resource_name_filter(Some(StrBytes::from_static_str("a")));
            let request = DeleteAclsRequest::default().with_filters(vec![filter.clone(), filter]);
            push(request.encode(&mut buf, version), buf);
        }
        _ => {}
    }
    out
}

fn frame(key: ApiKey, version: i16, body: &[u8]) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    buf.extend_from_slice(body);
    buf
}

/// Every way the tests overwrite bytes: an i32 count of 2^31-1, an i32
/// of -1, varints of u32::MAX and of 2^31.
const HOSTILE: &[&[u8]] = &[
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
];

#[test]
fn huge_counts_in_every_position_of_every_served_request() {
    let mut frames = 0;
    let mut refused = 0;
    for api in apis::SERVED_APIS {
        for version in api.min_version..=api.max_version {
            let mut bodies = rich_bodies(api.key, version);
            bodies.extend(default_body(api.key, version));
            assert!(!bodies.is_empty(), "{:?} v{version}", api.key);
            for body in bodies {
                let valid = frame(api.key, version, &body);
                assert!(
                    parse(valid.clone().freeze()).is_ok(),
                    "{:?} v{version}: the unmodified request must decode",
                    api.key
                );
                // Past the api key and version, so each case reaches
                // the decoder of the same request.
                for at in 4..valid.len() {
                    for bytes in HOSTILE {
                        let mut bad = valid.clone();
                        let end = (at + bytes.len()).min(bad.len());
                        bad[at..end].copy_from_slice(&bytes[..end - at]);
                        frames += 1;
                        refused += parse(bad.freeze()).is_err() as usize;
                    }
                    // And cut short there.
                    let _ = parse(valid.clone().freeze().slice(..at));
                }
            }
        }
    }
    assert!(frames > 10_000, "{frames} frames");
    assert!(refused > frames / 2, "{refused} of {frames} refused");
}

#[test]
fn the_fourteen_byte_metadata_request_is_an_error() {
    // Metadata v1, correlation id 1, null client id, topics count 2^31-1.
    let bytes: &[u8] = &[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    let err = parse(Bytes::from_static(bytes)).err().unwrap().to_string();
    assert!(err.contains("exceeds"), "{err}");
    // A flexible Fetch whose topics compact array claims u32::MAX - 1.
    let mut fetch = frame(ApiKey::Fetch, 12, &[]);
    fetch.extend_from_slice(&[0; 4 + 4 + 4 + 4 + 1 + 4 + 4]);
    fetch.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let err = parse(fetch.freeze()).err().unwrap().to_string();
    assert!(err.contains("exceeds"), "{err}");
}

#[test]
fn short_frames_are_errors() {
    for len in 0..8 {
        assert!(parse(Bytes::from(vec![0u8; len])).is_err(), "{len} bytes");
    }
}

/// A v2 batch around `records` claiming `count` records, CRC valid.
fn batch(records: &[u8], count: i32, attributes: i16) -> Bytes {
    let mut body = Vec::new();
    body.extend_from_slice(&attributes.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    body.extend_from_slice(&0i64.to_be_bytes()); // first timestamp
    body.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
    body.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    body.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    body.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    body.extend_from_slice(&count.to_be_bytes());
    body.extend_from_slice(records);
    let mut out = Vec::new();
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&((4 + 1 + 4 + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// One record (no key, empty value) whose header count is `headers`
/// (a zigzag varint), and nothing after it.
fn record_with_header_count(headers: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 1, 0]; // attributes, ts, offset, key -1, value 0
    body.extend_from_slice(headers);
    let mut out = vec![(body.len() as u8) << 1];
    out.extend_from_slice(&body);
    out
}

#[test]
fn record_and_header_counts_are_bounded_by_the_bytes() {
    let one = record_with_header_count(&[0]);
    assert_eq!(
        RecordBatchDecoder::decode(&mut batch(&one, 1, 0))
            .unwrap()
            .records
            .len(),
        1
    );
    let err = RecordBatchDecoder::decode(&mut batch(&one, i32::MAX, 0)).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
    // Header count 2^31-1 as a zigzag varint.
    let huge = record_with_header_count(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
    let err = RecordBatchDecoder::decode(&mut batch(&huge, 1, 0)).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
}

#[test]
fn snappy_headers_cannot_announce_more_than_snappy_can_expand() {
    use kafka_protocol::compression::{Decompressor, Snappy};
    let take = |b: &mut Bytes| -> anyhow::Result<Bytes> { Ok(std::mem::take(b)) };
    // Raw snappy: a preamble of u32::MAX bytes, then one literal byte.
    let mut raw: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41];
    let err = Snappy::decompress(&mut raw, take).unwrap_err();
    assert!(err.to_string().contains("announces"), "{err:#}");
    // Xerial framing: magic, versions, then a 7-byte block announcing 4 GiB.
    let mut framed = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    framed.extend_from_slice(&7u32.to_be_bytes());
    framed.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41]);
    let err = Snappy::decompress(&mut &framed[..], take).unwrap_err();
    assert!(format!("{err:#}").contains("announces"), "{err:#}");
    // A real stream still inflates.
    let mut compressed = BytesMut::new();
    <Snappy as kafka_protocol::compression::Compressor<BytesMut>>::compress(
        &mut compressed,
        |b: &mut BytesMut| {
            b.extend_from_slice(&[b'x'; 100_000]);
            Ok(())
        },
    )
    .unwrap();
    let out = Snappy::decompress(&mut compressed.freeze(), take).unwrap();
    assert_eq!(out.len(), 100_000);
}
