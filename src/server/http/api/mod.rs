//! The console's JSON admin API, `/api/v1/...` (docs/console.md): what the
//! web console shows and changes, answered by the broker's own Kafka
//! handlers. Each call builds the Kafka request a client would send and
//! runs it through the same handler a client's request reaches on shard 0,
//! so routing to other shards, validation and error codes are Kafka's; a
//! Kafka error comes back as its name (`UNKNOWN_TOPIC_OR_PARTITION`) with
//! an HTTP status that fits it.
//!
//! Guards, in order: the console must be on (`http.console.enable`); the
//! Host header must name this machine (an IP address, `localhost` or the
//! advertised host), so a hostile page that rebinds its DNS name to this
//! address cannot reach the API; a call that changes something (POST,
//! DELETE) is refused in read-only mode (`http.console.read.only`,
//! `serve --read-only`), must carry `X-Corelog-Console: 1` (a header a
//! cross-site page cannot send without a CORS preflight, which this
//! listener never grants) and, when the browser names an Origin, that
//! origin must be this listener. Bodies are small JSON objects of at most
//! `limits::HTTP_API_BODY_BYTES_MAX` bytes; every list answered is bounded
//! by `limits::HTTP_API_LIST_MAX` and says `"truncated"` when cut.

pub mod call;
mod cluster;
mod groups;
pub mod kafka;
mod messages;
pub mod peers;
mod request;
mod topics;

use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::HttpState;
use crate::server::broker::Broker;
use call::Call;
pub use request::ApiError;

pub type Answer = Response<Full<Bytes>>;

/// Who the console's calls run as, for the authorizer: `User:ANONYMOUS`
/// from no particular address (only ACLs for host `*` apply). With
/// `authorizer.class.name` set, the console may do exactly what an
/// anonymous client may, never more (docs/security/acls.md).
pub fn console_session() -> crate::security::Session {
    crate::security::Session::new(
        "HTTP",
        crate::security::SecurityProtocol::Plaintext,
        std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    )
}

/// Answers one request whose path starts with `/api/`.
pub async fn respond(state: &HttpState, request: Request<Incoming>) -> Answer {
    let Some(broker) = state.broker.get().cloned() else {
        return error(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "STARTING",
            "shard 0 is starting; the API answers shortly",
        ));
    };
    if !broker.config.broker.http_console_enable {
        return error(ApiError::new(
            StatusCode::NOT_FOUND,
            "CONSOLE_DISABLED",
            "the console and its API are off (http.console.enable=false)",
        ));
    }
    let carries_body = request::carries_body(&request);
    let reads = request.method() == Method::GET || request.method() == Method::HEAD;
    let mut answer = match answer(&broker, request).await {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => error(e),
    };
    // A body that was not read whole (a read's, a refused call's) leaves
    // the connection unable to carry another request.
    if carries_body && (reads || !answer.status().is_success()) {
        answer
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    answer
}

async fn answer(broker: &Rc<Broker>, request: Request<Incoming>) -> Result<Value, ApiError> {
    request::check_host(broker, &request)?;
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let body = if call::changes(&method) {
        request::check_may_change(broker, &request)?;
        request::read_body(request).await?
    } else {
        Bytes::new()
    };
    match call::decode(&method, &path, query.as_deref(), &body)? {
        Call::Overview => cluster::overview(broker).await,
        Call::Brokers => cluster::brokers(broker).await,
        Call::BrokerConfigs(id) => cluster::configs(broker, &id).await,
        Call::Topics => topics::list(broker).await,
        Call::Topic(name) => topics::detail(broker, &name).await,
        Call::Messages(name, query) => messages::browse(broker, &name, &query).await,
        Call::Groups => groups::list(broker).await,
        Call::Group(id) => groups::detail(broker, &id).await,
        Call::CreateTopic(new) => topics::create(broker, new).await,
        Call::DeleteTopic(name) => topics::delete(broker, &name).await,
        Call::AddPartitions(name, more) => topics::add_partitions(broker, &name, more).await,
        Call::AlterConfigs(name, changes) => topics::alter_configs(broker, &name, changes).await,
        Call::ResetOffsets(id, reset) => groups::reset_offsets(broker, &id, reset).await,
    }
}

fn json(status: StatusCode, value: &Value) -> Answer {
    let mut body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    body.push('\n');
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Live data: never answered from a cache.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

fn error(e: ApiError) -> Answer {
    json(
        e.status,
        &serde_json::json!({"error": e.name, "message": e.message}),
    )
}
