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

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::api_stats::{ApiStats, Handled};
use super::broker::{micros, Broker};
use super::error_codes::ErrorCodes;
use super::frame::Frame;
use super::handlers;
use crate::protocol::apis;
use crate::security::Session;

pub enum Outcome {
    Reply(Frame),
    /// acks=0 produce: Kafka sends nothing back.
    NoReply,
    Close(String),
    /// Send the answer, then close the connection (a failed SASL
    /// authentication, as Kafka does).
    ReplyThenClose(Frame, String),
}

impl Outcome {
    /// The answer to write, if there is one.
    pub fn reply(&self) -> Option<&Frame> {
        match self {
            Outcome::Reply(frame) | Outcome::ReplyThenClose(frame, _) => Some(frame),
            Outcome::NoReply | Outcome::Close(_) => None,
        }
    }

    /// The answer, with the connection closed after it when `close` says why.
    pub fn closing_after(self, close: Option<String>) -> Outcome {
        match (self, close) {
            (Outcome::Reply(frame), Some(reason)) => Outcome::ReplyThenClose(frame, reason),
            (outcome, _) => outcome,
        }
    }
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
    /// The request's API key and version (-1: a version this broker does
    /// not know), without the copies [`Parsed::label`] makes.
    pub fn key_version(&self) -> (i16, i16) {
        match self {
            Parsed::Request { header, .. } => (header.request_api_key, header.request_api_version),
            Parsed::UnsupportedApiVersions { .. } => (ApiKey::ApiVersions as i16, -1),
        }
    }

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

/// Answers one parsed request whose frame was read at `read_at`,
/// recording its API's figures (`api_stats`): its version, its time queued
/// (read to here), its whole time, the part of it spent in the handler's
/// own polls (local work; the rest is waiting: group commits and fsyncs,
/// replication acks, long polls, other shards' work) and its answer's size.
pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    parsed: Parsed,
    read_at: Instant,
) -> Outcome {
    let api = &broker.stats.api;
    if !api.enabled() {
        return answer(broker, session, parsed).await;
    }
    let (key, version) = parsed.key_version();
    // Two clock reads per poll and no more (they are most of what
    // recording costs): the first poll's start is the handler's start, the
    // last poll's end its end.
    let mut local = Duration::ZERO;
    let mut started = None;
    let mut ended = read_at;
    let mut answering = std::pin::pin!(answer(broker, session, parsed));
    let outcome = std::future::poll_fn(|cx| {
        let polled = Instant::now();
        started.get_or_insert(polled);
        let poll = answering.as_mut().poll(cx);
        ended = Instant::now();
        local += ended.saturating_duration_since(polled);
        poll
    })
    .await;
    let started = started.unwrap_or(read_at);
    api.handled(
        key,
        Handled {
            version,
            queue_us: micros(started.saturating_duration_since(read_at)),
            total_us: micros(ended.saturating_duration_since(started)),
            local_us: micros(local),
            response_bytes: outcome.reply().map(Frame::len),
        },
    );
    outcome
}

async fn answer(broker: &Rc<Broker>, session: &Session, parsed: Parsed) -> Outcome {
    let (header, body) = match parsed {
        Parsed::UnsupportedApiVersions { correlation_id } => {
            let body = handlers::api_versions::unsupported_version();
            return encode(
                &broker.stats.api,
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &body,
            );
        }
        Parsed::Request { header, body } => (header, body),
    };
    if let Some(refused) = handlers::sasl_authenticate::gate(session, &header) {
        return Outcome::Close(format!(
            "{} {}",
            ApiName(header.request_api_key),
            refused.reason()
        ));
    }
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
            &broker.stats.api,
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
            let response = handlers::metadata::handle(broker, session, version, r).await;
            encode(&broker.stats.api, id, ApiKey::Metadata, version, &response)
        }
        RequestKind::Produce(r) => match handlers::produce::handle(broker, session, version, r)
            .await
        {
            Some(response) => encode(&broker.stats.api, id, ApiKey::Produce, version, &response),
            None => Outcome::NoReply,
        },
        RequestKind::Fetch(r) => {
            let response = handlers::fetch::handle(broker, session, version, r).await;
            broker.stats.api.errors_in(ApiKey::Fetch as i16, &response);
            match super::frame::encode_fetch(id, version, &response) {
                Ok(frame) => Outcome::Reply(frame),
                Err(reason) => Outcome::Close(reason),
            }
        }
        RequestKind::ListOffsets(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::ListOffsets,
            version,
            &handlers::list_offsets::handle(broker, session, version, r).await,
        ),
        RequestKind::CreateTopics(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::CreateTopics,
            version,
            &handlers::create_topics::handle(broker, session, version, r).await,
        ),
        RequestKind::DeleteTopics(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DeleteTopics,
            version,
            &handlers::delete_topics::handle(broker, session, version, r).await,
        ),
        RequestKind::InitProducerId(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::InitProducerId,
            version,
            &handlers::init_producer_id::handle(broker, session, version, r).await,
        ),
        RequestKind::DescribeConfigs(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeConfigs,
            version,
            &handlers::describe_configs::handle(broker, session, version, r),
        ),
        RequestKind::AlterConfigs(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::AlterConfigs,
            version,
            &handlers::alter_configs::handle_full(broker, session, version, r).await,
        ),
        RequestKind::IncrementalAlterConfigs(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::IncrementalAlterConfigs,
            version,
            &handlers::alter_configs::handle_incremental(broker, session, version, r).await,
        ),
        RequestKind::CreatePartitions(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::CreatePartitions,
            version,
            &handlers::create_partitions::handle(broker, session, version, r).await,
        ),
        RequestKind::DeleteRecords(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DeleteRecords,
            version,
            &handlers::delete_records::handle(broker, session, version, r).await,
        ),
        RequestKind::DescribeLogDirs(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeLogDirs,
            version,
            &handlers::describe_log_dirs::handle(broker, session, version, r).await,
        ),
        RequestKind::DescribeCluster(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeCluster,
            version,
            &handlers::describe_cluster::handle(broker, session, version, r),
        ),
        RequestKind::DescribeQuorum(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeQuorum,
            version,
            &handlers::describe_quorum::handle(broker, session, version, r).await,
        ),
        RequestKind::OffsetForLeaderEpoch(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::OffsetForLeaderEpoch,
            version,
            &handlers::offset_for_leader_epoch::handle(broker, session, version, r).await,
        ),
        RequestKind::ElectLeaders(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::ElectLeaders,
            version,
            &handlers::elect_leaders::handle(broker, session, version, r).await,
        ),
        RequestKind::FindCoordinator(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::FindCoordinator,
            version,
            &handlers::find_coordinator::handle(broker, session, version, r).await,
        ),
        RequestKind::JoinGroup(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::JoinGroup,
            version,
            &handlers::join_group::handle(broker, session, version, client_id(&header), r).await,
        ),
        RequestKind::SyncGroup(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::SyncGroup,
            version,
            &handlers::sync_group::handle(broker, session, version, r).await,
        ),
        RequestKind::Heartbeat(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::Heartbeat,
            version,
            &handlers::heartbeat::handle(broker, session, version, r).await,
        ),
        RequestKind::LeaveGroup(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::LeaveGroup,
            version,
            &handlers::leave_group::handle(broker, session, version, r).await,
        ),
        RequestKind::OffsetCommit(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::OffsetCommit,
            version,
            &handlers::offset_commit::handle(broker, session, version, r).await,
        ),
        RequestKind::OffsetFetch(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::OffsetFetch,
            version,
            &handlers::offset_fetch::handle(broker, session, version, r).await,
        ),
        RequestKind::ListGroups(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::ListGroups,
            version,
            &handlers::list_groups::handle(broker, session, version, r).await,
        ),
        RequestKind::DescribeGroups(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeGroups,
            version,
            &handlers::describe_groups::handle(broker, session, version, r).await,
        ),
        RequestKind::DeleteGroups(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DeleteGroups,
            version,
            &handlers::delete_groups::handle(broker, session, version, r).await,
        ),
        RequestKind::OffsetDelete(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::OffsetDelete,
            version,
            &handlers::offset_delete::handle(broker, session, version, r).await,
        ),
        RequestKind::ConsumerGroupHeartbeat(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::ConsumerGroupHeartbeat,
            version,
            &handlers::consumer_group_heartbeat::handle(
                broker,
                session,
                version,
                client_id(&header),
                r,
            )
            .await,
        ),
        RequestKind::ConsumerGroupDescribe(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::ConsumerGroupDescribe,
            version,
            &handlers::consumer_group_describe::handle(broker, session, version, r).await,
        ),
        RequestKind::CreateAcls(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::CreateAcls,
            version,
            &handlers::create_acls::handle(broker, session, version, r).await,
        ),
        RequestKind::DescribeAcls(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeAcls,
            version,
            &handlers::describe_acls::handle(broker, session, version, r),
        ),
        RequestKind::DeleteAcls(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DeleteAcls,
            version,
            &handlers::delete_acls::handle(broker, session, version, r).await,
        ),
        RequestKind::SaslHandshake(r) => {
            let (response, close) = handlers::sasl_handshake::handle(broker, session, version, r);
            encode(
                &broker.stats.api,
                id,
                ApiKey::SaslHandshake,
                version,
                &response,
            )
            .closing_after(close)
        }
        RequestKind::SaslAuthenticate(r) => {
            let answer = handlers::sasl_authenticate::handle(broker, session, version, r);
            if let Some(delay) = answer.delay {
                glommio::timer::sleep(delay).await;
            }
            encode(
                &broker.stats.api,
                id,
                ApiKey::SaslAuthenticate,
                version,
                &answer.response,
            )
            .closing_after(answer.close)
        }
        RequestKind::AlterUserScramCredentials(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::AlterUserScramCredentials,
            version,
            &handlers::alter_user_scram_credentials::handle(broker, session, version, r).await,
        ),
        RequestKind::DescribeUserScramCredentials(r) => encode(
            &broker.stats.api,
            id,
            ApiKey::DescribeUserScramCredentials,
            version,
            &handlers::describe_user_scram_credentials::handle(broker, session, version, r),
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

/// Size prefix, response header, body, and the body's error codes counted
/// in `api`. An encoding failure is a bug in a handler (a field set that
/// the version lacks); the connection is closed rather than sending a
/// broken frame.
fn encode<R: Encodable + HeaderVersion + ErrorCodes>(
    api: &ApiStats,
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    body: &R,
) -> Outcome {
    api.errors_in(key as i16, body);
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
mod decode_bounds;
