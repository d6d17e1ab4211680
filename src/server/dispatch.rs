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
use super::handlers;
use crate::protocol::apis;

pub enum Outcome {
    Reply(BytesMut),
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

/// Decodes one request frame (the bytes after its size prefix). An unknown
/// API key, a version corelog does not serve or bytes that do not decode
/// are an error, for which the connection is closed, as Kafka does; only
/// ApiVersions at an unknown version gets an answer (KIP-511).
pub fn parse(mut frame: Bytes) -> Result<Parsed, String> {
    if frame.len() < REQUEST_HEADER_BYTES_MIN {
        return Err(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        ));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::try_from(raw_key).map_err(|_| format!("unknown api key {raw_key}"))?;
    if key == ApiKey::ApiVersions && !apis::is_served(key, version) {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Parsed::UnsupportedApiVersions { correlation_id });
    }
    if !apis::is_served(key, version) {
        return Err(format!("{key:?} v{version} is not supported"));
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| format!("malformed {key:?} v{version} header: {e}"))?;
    let body = RequestKind::decode(key, &mut frame, version)
        .map_err(|e| format!("malformed {key:?} v{version} request: {e}"))?;
    Ok(Parsed::Request {
        header,
        body: Box::new(body),
    })
}

impl Parsed {
    /// The request for a log line: API, version, correlation and client id.
    pub fn describe(&self) -> String {
        match self {
            Parsed::Request { header, .. } => {
                let key = ApiKey::try_from(header.request_api_key)
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_else(|_| format!("api {}", header.request_api_key));
                format!(
                    "{key} v{} request (correlation id {}, client id {:?})",
                    header.request_api_version,
                    header.correlation_id,
                    client_id(header)
                )
            }
            Parsed::UnsupportedApiVersions { correlation_id } => {
                format!("ApiVersions request at an unknown version (correlation id {correlation_id})")
            }
        }
    }
}

pub async fn handle(broker: &Rc<Broker>, client_host: &str, parsed: Parsed) -> Outcome {
    let (header, body) = match parsed {
        Parsed::UnsupportedApiVersions { correlation_id } => {
            let body = handlers::api_versions::unsupported_version();
            return encode(correlation_id, ApiKey::ApiVersions, 0, &body);
        }
        Parsed::Request { header, body } => (header, body),
    };
    let version = header.request_api_version;
    let id = header.correlation_id;
    match *body {
        RequestKind::ApiVersions(r) => encode(
            id,
            ApiKey::ApiVersions,
            version,
            &handlers::api_versions::handle(version, r),
        ),
        RequestKind::Metadata(r) => encode(
            id,
            ApiKey::Metadata,
            version,
            &handlers::metadata::handle(broker, version, r).await,
        ),
        RequestKind::Produce(r) => match handlers::produce::handle(broker, version, r).await {
            Some(response) => encode(id, ApiKey::Produce, version, &response),
            None => Outcome::NoReply,
        },
        RequestKind::Fetch(r) => encode(
            id,
            ApiKey::Fetch,
            version,
            &handlers::fetch::handle(broker, version, r).await,
        ),
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
            Outcome::Reply(buf)
        }
        Err(e) => Outcome::Close(format!("cannot encode {key:?} v{version} response: {e}")),
    }
}
