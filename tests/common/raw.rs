//! Raw Kafka requests over a plain `TcpStream`: a 4-byte size prefix, the
//! request header and body encoded with `kafka-protocol`, and the response
//! decoded at the version that was asked for.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub const CLIENT_ID: &str = "corelog-tests";

/// Kafka error codes the tests assert on.
pub mod code {
    pub const NONE: i16 = 0;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_REQUEST: i16 = 42;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// A client connection speaking raw Kafka frames.
pub struct Conn {
    stream: TcpStream,
    correlation_id: i32,
}

impl Conn {
    /// Connects with 10 s read and write timeouts.
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        let conn = Conn {
            stream,
            correlation_id: 0,
        };
        conn.set_timeout(Duration::from_secs(10));
        conn
    }

    pub fn set_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        self.stream
            .set_write_timeout(Some(timeout))
            .expect("write timeout");
    }

    /// Writes bytes as they are (a frame the test built by hand).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends `request` at `version`; returns its correlation id.
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> i32 {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(str_bytes(CLIENT_ID)));
        let mut body = BytesMut::new();
        encode_request_header_into_buffer(&mut body, &header).expect("encode request header");
        request
            .encode(&mut body, version)
            .unwrap_or_else(|e| panic!("encode api {} v{version}: {e}", R::KEY));
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.send_bytes(&frame)
            .unwrap_or_else(|e| panic!("send api {} v{version}: {e}", R::KEY));
        self.correlation_id
    }

    /// Reads one size-prefixed frame.
    pub fn recv_frame(&mut self) -> io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if !(0..=256 << 20).contains(&size) {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("response size prefix {size}"),
            ));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Reads the response to `correlation_id` of an `R` sent at `version`,
    /// decodes it at that version and checks nothing is left over.
    pub fn recv<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let mut frame = self
            .recv_frame()
            .unwrap_or_else(|e| panic!("read response to api {} v{version}: {e}", R::KEY));
        let api = ApiKey::try_from(R::KEY).expect("known api key");
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
            .unwrap_or_else(|e| panic!("decode response header of {api:?} v{version}: {e}"));
        assert_eq!(
            header.correlation_id, correlation_id,
            "{api:?} v{version}: response correlation id"
        );
        let response = R::Response::decode(&mut frame, version)
            .unwrap_or_else(|e| panic!("decode {api:?} v{version} response: {e}"));
        assert_eq!(
            frame.remaining(),
            0,
            "{api:?} v{version}: {} bytes left after decoding the response",
            frame.remaining()
        );
        response
    }

    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        let correlation_id = self.send(version, request);
        self.recv::<R>(version, correlation_id)
    }

    /// True if the peer closes the connection (EOF or reset) within
    /// `timeout`; false if it stays open silently. Panics if the peer sends
    /// a response instead.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => panic!(
                "expected the broker to close the connection, got {n} bytes: {:02x?}",
                &buf[..n]
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(_) => true,
        }
    }

    pub fn api_versions(&mut self) -> ApiVersions {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(str_bytes("corelog-tests"))
            .with_client_software_version(str_bytes("0.1"));
        let response: ApiVersionsResponse = self.call(3, &request);
        assert_eq!(response.error_code, code::NONE, "ApiVersions v3 error");
        ApiVersions(
            response
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        )
    }

    pub fn metadata(&mut self, version: i16, topics: &[&str]) -> MetadataResponse {
        let request = MetadataRequest::default().with_topics(Some(
            topics
                .iter()
                .map(|t| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(topic_name(t)))
                })
                .collect(),
        ));
        self.call(version, &request)
    }

    /// Produces one batch to one partition with acks=all; returns the
    /// partition's (error code, base offset).
    pub fn produce(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> (i16, i64) {
        self.produce_acks(version, topic, partition, batch, -1)
    }

    /// [`produce`](Self::produce) with the given acks (1 or -1).
    pub fn produce_acks(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> (i16, i64) {
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let response: ProduceResponse = self.call(version, &request);
        let topic_response = response
            .responses
            .first()
            .expect("one topic in produce response");
        let partition_response = topic_response
            .partition_responses
            .first()
            .expect("one partition in produce response");
        assert_eq!(partition_response.index, partition);
        (
            partition_response.error_code,
            partition_response.base_offset,
        )
    }

    /// ListOffsets for one partition at `timestamp` (-1 latest, -2 earliest);
    /// returns (error code, offset).
    pub fn list_offset(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> (i16, i64) {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let response: ListOffsetsResponse = self.call(version, &request);
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.partition_index, partition);
        if version == 0 {
            // v0 answers a list of offsets (at most max_num_offsets, 1 by
            // default).
            assert!(p.old_style_offsets.len() <= 1, "{:?}", p.old_style_offsets);
            return (
                p.error_code,
                p.old_style_offsets.first().copied().unwrap_or(-1),
            );
        }
        (p.error_code, p.offset)
    }

    /// Fetch by topic name (v4-v12) from one partition.
    pub fn fetch(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> FetchResponse {
        let request = fetch_request(topic, partition, offset, max_wait_ms);
        self.call(version, &request)
    }

    /// Fetches from `offset` until the log end, decoding every record.
    pub fn fetch_all(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Vec<Record> {
        let mut records = Vec::new();
        let mut next = offset;
        for _ in 0..10_000 {
            let response = self.fetch(version, topic, partition, next, 0);
            let data = &response.responses[0].partitions[0];
            assert_eq!(
                data.error_code,
                code::NONE,
                "fetch {topic}-{partition}@{next}"
            );
            let fetched = decode_records(data.records.clone().unwrap_or_default());
            let got_any = fetched.iter().any(|r| r.offset >= next);
            for record in fetched {
                if record.offset >= next {
                    next = record.offset + 1;
                    records.push(record);
                }
            }
            if !got_any {
                assert!(
                    next >= data.high_watermark,
                    "fetch at {next} returned nothing below the high watermark {}",
                    data.high_watermark
                );
                return records;
            }
        }
        panic!("fetch_all did not reach the end of {topic}-{partition}");
    }
}

/// A sessionless Fetch (session id 0, epoch -1) of one partition by name.
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(8 << 20)])])
}

/// The (min, max) version the broker advertises for each API key.
#[derive(Clone, Debug)]
pub struct ApiVersions(pub HashMap<i16, (i16, i16)>);

impl ApiVersions {
    pub fn range(&self, api: ApiKey) -> (i16, i16) {
        *self
            .0
            .get(&(api as i16))
            .unwrap_or_else(|| panic!("broker does not advertise {api:?}"))
    }

    /// `preferred` clamped into the advertised range of `api`.
    pub fn pick(&self, api: ApiKey, preferred: i16) -> i16 {
        let (min, max) = self.range(api);
        preferred.clamp(min, max)
    }
}

/// A record for `RecordBatchEncoder` with creation-time `timestamp`.
pub fn record(key: Option<&[u8]>, value: &[u8], timestamp: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: IndexMap::new(),
    }
}

/// Encodes `records` as one v2 batch (offsets renumbered from 0).
pub fn encode_batch(records: &[Record], compression: Compression) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: i as i64,
            // kafka-protocol starts a new batch whenever offset - sequence
            // changes, so sequences must advance with offsets to get one batch.
            sequence: r.sequence.wrapping_add(i as i32),
            ..r.clone()
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode record batch");
    buf.freeze()
}

/// A batch of `count` records with values `<prefix>-<i>` padded to
/// `value_bytes`, timestamps `timestamp + i`.
pub fn simple_batch(prefix: &str, count: usize, value_bytes: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            record(
                None,
                &padded_value(prefix, i, value_bytes),
                timestamp + i as i64,
            )
        })
        .collect();
    encode_batch(&records, Compression::None)
}

pub fn padded_value(prefix: &str, i: usize, value_bytes: usize) -> Vec<u8> {
    let mut value = format!("{prefix}-{i}").into_bytes();
    let mut fill = 0u8;
    while value.len() < value_bytes {
        value.push(b'a' + fill % 26);
        fill = fill.wrapping_add(7);
    }
    value
}

/// Decodes every batch in a fetch response's records (a trailing partial
/// batch, which Kafka allows, is ignored).
pub fn decode_records(mut bytes: Bytes) -> Vec<Record> {
    let mut records = Vec::new();
    while bytes.len() >= 12 {
        let length = i32::from_be_bytes(bytes[8..12].try_into().unwrap());
        let size = 12 + length.max(0) as usize;
        if length <= 0 || size > bytes.len() {
            break;
        }
        let mut batch = bytes.split_to(size);
        let set = RecordBatchDecoder::decode(&mut batch).expect("decode fetched batch");
        records.extend(set.records);
    }
    records
}

/// The v2 batches in fetched bytes as (attributes, base offset) pairs.
pub fn batch_attributes(bytes: &[u8]) -> Vec<(i16, i64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= 61 {
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let length = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        if length <= 0 || pos + 12 + length as usize > bytes.len() {
            break;
        }
        let attributes = i16::from_be_bytes(bytes[pos + 21..pos + 23].try_into().unwrap());
        out.push((attributes, base));
        pos += 12 + length as usize;
    }
    out
}

/// One message of an old-format message set (magic 0 or 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyMessage {
    pub offset: i64,
    pub magic: i8,
    pub attributes: i8,
    /// None on magic 0.
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Appends one message-set entry as an old client writes it: offset, size,
/// CRC-32 (IEEE) of magic..end, magic, attributes, [timestamp], key, value.
pub fn put_legacy_message(out: &mut Vec<u8>, m: &LegacyMessage) {
    let mut body = vec![m.magic as u8, m.attributes as u8];
    if m.magic == 1 {
        body.extend_from_slice(&m.timestamp.unwrap_or(-1).to_be_bytes());
    }
    for field in [&m.key, &m.value] {
        match field {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    out.extend_from_slice(&m.offset.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

/// A message set of `count` messages of `magic` with values as
/// [`simple_batch`] writes them (`<prefix>-<i>` padded), no keys.
pub fn legacy_message_set(
    magic: i8,
    prefix: &str,
    count: usize,
    value_bytes: usize,
    timestamp: i64,
) -> Bytes {
    let mut out = Vec::new();
    for i in 0..count {
        put_legacy_message(
            &mut out,
            &LegacyMessage {
                offset: i as i64,
                magic,
                attributes: 0,
                timestamp: (magic == 1).then_some(timestamp + i as i64),
                key: None,
                value: Some(padded_value(prefix, i, value_bytes)),
            },
        );
    }
    Bytes::from(out)
}

/// Decodes the whole messages of a fetched message set (a trailing partial
/// message, which old brokers sent, is ignored), checking each CRC.
pub fn decode_legacy(bytes: &[u8]) -> Vec<LegacyMessage> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 12 {
        let offset = i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let size = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if bytes.len() - at - 12 < size {
            break;
        }
        let m = &bytes[at + 12..at + 12 + size];
        let crc = u32::from_be_bytes(m[0..4].try_into().unwrap());
        assert_eq!(crc32fast::hash(&m[4..]), crc, "message at {offset}: CRC");
        let magic = m[4] as i8;
        let attributes = m[5] as i8;
        let mut p = 6;
        let timestamp = (magic == 1).then(|| {
            p += 8;
            i64::from_be_bytes(m[6..14].try_into().unwrap())
        });
        let mut field = || {
            let len = i32::from_be_bytes(m[p..p + 4].try_into().unwrap());
            p += 4;
            (len >= 0).then(|| {
                let b = m[p..p + len as usize].to_vec();
                p += len as usize;
                b
            })
        };
        let key = field();
        let value = field();
        out.push(LegacyMessage {
            offset,
            magic,
            attributes,
            timestamp,
            key,
            value,
        });
        at += 12 + size;
    }
    out
}
