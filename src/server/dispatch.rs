//! Request envelope: decode the header and body of a frame, call the API's
//! handler, encode the response with its header and size prefix.
//!
//! Decoding happens before a request is started, so a malformed request
//! closes the connection instead of producing a half answer. [`parse`] takes
//! the raw bytes of one frame (without its size prefix) and never panics or
//! allocates more than a bounded multiple of its input, whatever the bytes
//! (the decoder refuses counts and lengths larger than the bytes that
//! remain: vendor/kafka-protocol/PATCHES.md); it is the entry point for
//! fuzzing the request path.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::broker::Broker;
use super::frame::Frame;
use super::handlers;
use crate::protocol::apis;

pub enum Outcome {
    Reply(Frame),
    /// acks=0 produce: Kafka sends nothing back.
    NoReply,
    Close(String),
}

pub enum Parsed {
    Request {
        header: RequestHeader,
        body: Box<RequestKind>,
    },
    /// ApiVersions at a version this broker does not know: Kafka answers in
    /// the v0 format with UNSUPPORTED_VERSION and its version list, so the
    /// client can retry with one it shares.
    UnsupportedApiVersions { correlation_id: i32 },
}

/// Smallest request: api key, api version and correlation id.
const REQUEST_HEADER_BYTES_MIN: usize = 8;

/// Why a request frame is refused (the connection is then closed).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request of {0} bytes is shorter than a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("{key:?} v{version} is not supported")]
    Unsupported { key: ApiKey, version: i16 },
    /// `cause` is the decoder's error with its context chain.
    #[error("malformed {key:?} v{version} header: {cause:#}")]
    MalformedHeader {
        key: ApiKey,
        version: i16,
        cause: anyhow::Error,
    },
    #[error("malformed {key:?} v{version} request: {cause:#}")]
    MalformedBody {
        key: ApiKey,
        version: i16,
        cause: anyhow::Error,
    },
}

/// Decodes one request frame (the bytes after its size prefix). An unknown
/// API key, a version corelog does not serve or bytes that do not decode
/// are an error, for which the connection is closed, as Kafka does; only
/// ApiVersions at an unknown version gets an answer (KIP-511).
pub fn parse(mut frame: Bytes) -> Result<Parsed, RequestError> {
    if frame.len() < REQUEST_HEADER_BYTES_MIN {
        return Err(RequestError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::try_from(raw_key).map_err(|_| RequestError::UnknownApiKey(raw_key))?;
    if key == ApiKey::ApiVersions && !apis::is_served(key, version) {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Parsed::UnsupportedApiVersions { correlation_id });
    }
    if !apis::is_served(key, version) {
        return Err(RequestError::Unsupported { key, version });
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version)).map_err(
        |cause| RequestError::MalformedHeader {
            key,
            version,
            cause,
        },
    )?;
    let body = RequestKind::decode(key, &mut frame, version).map_err(|cause| {
        RequestError::MalformedBody {
            key,
            version,
            cause,
        }
    })?;
    Ok(Parsed::Request {
        header,
        body: Box::new(body),
    })
}

impl Parsed {
    /// What names the request in a log line; cheap (no formatting until
    /// displayed), so it can be taken for every request.
    pub fn label(&self) -> RequestLabel {
        match self {
            Parsed::Request { header, .. } => RequestLabel {
                key: header.request_api_key,
                version: Some(header.request_api_version),
                correlation_id: header.correlation_id,
                client_id: header.client_id.clone(),
            },
            Parsed::UnsupportedApiVersions { correlation_id } => RequestLabel {
                key: ApiKey::ApiVersions as i16,
                version: None,
                correlation_id: *correlation_id,
                client_id: None,
            },
        }
    }
}

/// A request's API, version, correlation id and client id, for logs.
pub struct RequestLabel {
    pub key: i16,
    /// None: a version this broker does not know.
    pub version: Option<i16>,
    pub correlation_id: i32,
    pub client_id: Option<kafka_protocol::protocol::StrBytes>,
}

/// An api key as Kafka names it (`Produce`), or its number when unknown.
pub struct ApiName(pub i16);

impl std::fmt::Display for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match ApiKey::try_from(self.0) {
            Ok(key) => write!(f, "{key:?}"),
            Err(_) => write!(f, "api {}", self.0),
        }
    }
}

impl std::fmt::Display for RequestLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", ApiName(self.key))?;
        match self.version {
            Some(version) => write!(f, " v{version}")?,
            None => write!(f, " at an unknown version")?,
        }
        write!(
            f,
            " request (correlation id {}, client id {:?})",
            self.correlation_id,
            self.client_id.as_deref().unwrap_or("")
        )
    }
}

/// Answers one parsed request, recording its API's request count and
/// whole-request time (`api_stats`).
pub async fn handle(broker: &Rc<Broker>, client_host: &str, parsed: Parsed) -> Outcome {
    let started = std::time::Instant::now();
    let key = parsed.label().key;
    let outcome = answer(broker, client_host, parsed).await;
    broker
        .stats
        .api
        .record(key, super::broker::micros(started.elapsed()));
    outcome
}

async fn answer(broker: &Rc<Broker>, client_host: &str, parsed: Parsed) -> Outcome {
    let (header, body) = match parsed {
        Parsed::UnsupportedApiVersions { correlation_id } => {
            let body = handlers::api_versions::unsupported_version();
            return encode(correlation_id, ApiKey::ApiVersions, 0, &body);
        }
        Parsed::Request { header, body } => (header, body),
    };
    let version = header.request_api_version;
    let id = header.correlation_id;
    let counted = match &*body {
        RequestKind::Produce(_) => &broker.stats.requests_produce,
        RequestKind::Fetch(_) => &broker.stats.requests_fetch,
        _ => &broker.stats.requests_other,
    };
    counted.bump();
    match *body {
        RequestKind::ApiVersions(r) => encode(
            id,
            ApiKey::ApiVersions,
            version,
            &handlers::api_versions::handle(
                version,
                r,
                handlers::api_versions::Finalized::of(&broker.catalog(), broker.cluster_mode()),
            ),
        ),
        RequestKind::Metadata(r) => {
            let response = handlers::metadata::handle(broker, version, r).await;
            let codes = response.topics.iter().map(|t| t.error_code);
            broker.stats.api.errors(ApiKey::Metadata as i16, codes);
            encode(id, ApiKey::Metadata, version, &response)
        }
        RequestKind::Produce(r) => match handlers::produce::handle(broker, version, r).await {
            Some(response) => {
                let codes = response
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code));
                broker.stats.api.errors(ApiKey::Produce as i16, codes);
                encode(id, ApiKey::Produce, version, &response)
            }
            None => Outcome::NoReply,
        },
        RequestKind::Fetch(r) => {
            let response = handlers::fetch::handle(broker, version, r).await;
            let codes = std::iter::once(response.error_code).chain(
                response
                    .responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
            broker.stats.api.errors(ApiKey::Fetch as i16, codes);
            match super::frame::encode_fetch(id, version, &response) {
                Ok(frame) => Outcome::Reply(frame),
                Err(reason) => Outcome::Close(reason),
            }
        }
        RequestKind::ListOffsets(r) => encode(
            id,
            ApiKey::ListOffsets,
            version,
            &handlers::list_offsets::handle(broker, version, r).await,
        ),
        RequestKind::CreateTopics(r) => encode(
            id,
            ApiKey::CreateTopics,
            version,
            &handlers::create_topics::handle(broker, version, r).await,
        ),
        RequestKind::DeleteTopics(r) => encode(
            id,
            ApiKey::DeleteTopics,
            version,
            &handlers::delete_topics::handle(broker, version, r).await,
        ),
        RequestKind::InitProducerId(r) => encode(
            id,
            ApiKey::InitProducerId,
            version,
            &handlers::init_producer_id::handle(broker, version, r).await,
        ),
        RequestKind::DescribeConfigs(r) => encode(
            id,
            ApiKey::DescribeConfigs,
            version,
            &handlers::describe_configs::handle(broker, version, r),
        ),
        RequestKind::AlterConfigs(r) => encode(
            id,
            ApiKey::AlterConfigs,
            version,
            &handlers::alter_configs::handle_full(broker, version, r).await,
        ),
        RequestKind::IncrementalAlterConfigs(r) => encode(
            id,
            ApiKey::IncrementalAlterConfigs,
            version,
            &handlers::alter_configs::handle_incremental(broker, version, r).await,
        ),
        RequestKind::CreatePartitions(r) => encode(
            id,
            ApiKey::CreatePartitions,
            version,
            &handlers::create_partitions::handle(broker, version, r).await,
        ),
        RequestKind::DeleteRecords(r) => encode(
            id,
            ApiKey::DeleteRecords,
            version,
            &handlers::delete_records::handle(broker, version, r).await,
        ),
        RequestKind::DescribeLogDirs(r) => encode(
            id,
            ApiKey::DescribeLogDirs,
            version,
            &handlers::describe_log_dirs::handle(broker, version, r).await,
        ),
        RequestKind::DescribeCluster(r) => encode(
            id,
            ApiKey::DescribeCluster,
            version,
            &handlers::describe_cluster::handle(broker, version, r),
        ),
        RequestKind::DescribeQuorum(r) => encode(
            id,
            ApiKey::DescribeQuorum,
            version,
            &handlers::describe_quorum::handle(broker, version, r).await,
        ),
        RequestKind::OffsetForLeaderEpoch(r) => encode(
            id,
            ApiKey::OffsetForLeaderEpoch,
            version,
            &handlers::offset_for_leader_epoch::handle(broker, version, r).await,
        ),
        RequestKind::ElectLeaders(r) => encode(
            id,
            ApiKey::ElectLeaders,
            version,
            &handlers::elect_leaders::handle(broker, version, r).await,
        ),
        RequestKind::FindCoordinator(r) => encode(
            id,
            ApiKey::FindCoordinator,
            version,
            &handlers::find_coordinator::handle(broker, version, r).await,
        ),
        RequestKind::JoinGroup(r) => encode(
            id,
            ApiKey::JoinGroup,
            version,
            &handlers::join_group::handle(
                broker,
                version,
                client_id(&header),
                client_host.to_string(),
                r,
            )
            .await,
        ),
        RequestKind::SyncGroup(r) => encode(
            id,
            ApiKey::SyncGroup,
            version,
            &handlers::sync_group::handle(broker, version, r).await,
        ),
        RequestKind::Heartbeat(r) => encode(
            id,
            ApiKey::Heartbeat,
            version,
            &handlers::heartbeat::handle(broker, version, r).await,
        ),
        RequestKind::LeaveGroup(r) => encode(
            id,
            ApiKey::LeaveGroup,
            version,
            &handlers::leave_group::handle(broker, version, r).await,
        ),
        RequestKind::OffsetCommit(r) => encode(
            id,
            ApiKey::OffsetCommit,
            version,
            &handlers::offset_commit::handle(broker, version, r).await,
        ),
        RequestKind::OffsetFetch(r) => encode(
            id,
            ApiKey::OffsetFetch,
            version,
            &handlers::offset_fetch::handle(broker, version, r).await,
        ),
        RequestKind::ListGroups(r) => encode(
            id,
            ApiKey::ListGroups,
            version,
            &handlers::list_groups::handle(broker, version, r).await,
        ),
        RequestKind::DescribeGroups(r) => encode(
            id,
            ApiKey::DescribeGroups,
            version,
            &handlers::describe_groups::handle(broker, version, r).await,
        ),
        RequestKind::DeleteGroups(r) => encode(
            id,
            ApiKey::DeleteGroups,
            version,
            &handlers::delete_groups::handle(broker, version, r).await,
        ),
        RequestKind::OffsetDelete(r) => encode(
            id,
            ApiKey::OffsetDelete,
            version,
            &handlers::offset_delete::handle(broker, version, r).await,
        ),
        RequestKind::ConsumerGroupHeartbeat(r) => encode(
            id,
            ApiKey::ConsumerGroupHeartbeat,
            version,
            &handlers::consumer_group_heartbeat::handle(
                broker,
                version,
                client_id(&header),
                client_host.to_string(),
                r,
            )
            .await,
        ),
        RequestKind::ConsumerGroupDescribe(r) => encode(
            id,
            ApiKey::ConsumerGroupDescribe,
            version,
            &handlers::consumer_group_describe::handle(broker, version, r).await,
        ),
        other => Outcome::Close(format!(
            "no handler for {:?}",
            std::mem::discriminant(&other)
        )),
    }
}

/// The request header's client id ("" when null), for group members.
fn client_id(header: &RequestHeader) -> String {
    header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// Size prefix, response header, body. An encoding failure is a bug in a
/// handler (a field set that the version lacks); the connection is closed
/// rather than sending a broken frame.
fn encode<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    body: &R,
) -> Outcome {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = key.response_header_version(version);
    // Size the buffer once: fetch responses carry megabytes of records.
    let mut buf = BytesMut::with_capacity(32 + body.compute_size(version).unwrap_or(0));
    buf.put_i32(0);
    let encoded = header
        .encode(&mut buf, header_version)
        .and_then(|_| body.encode(&mut buf, version));
    match encoded {
        Ok(()) => {
            let size = (buf.len() - 4) as i32;
            buf[..4].copy_from_slice(&size.to_be_bytes());
            Outcome::Reply(Frame::whole(buf))
        }
        Err(e) => Outcome::Close(format!("cannot encode {key:?} v{version} response: {e}")),
    }
}

/// Hostile bytes through the whole decoder: huge counts and lengths in
/// every position of requests of every served API and version, truncated
/// frames, and the record and compression decoders the broker uses. Each
/// case must give an error or a value, never a panic or an allocation
/// abort (which would end this test process).
#[cfg(test)]
mod decode_bounds {
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
                let request =
                    MetadataRequest::default()
                        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                        )
                        .with_name(Some(topic("a")))]));
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
                        .with_partitions(vec![
                            list_offsets_request::ListOffsetsPartition::default(),
                        ]),
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
}
