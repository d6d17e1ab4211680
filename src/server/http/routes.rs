//! What each path answers: `/health`, `/ready`, `/metrics` and the web
//! console's files (`/`, `/console/...`) take GET and HEAD and no body;
//! another method gets 405, another path 404, a body over
//! `limits::HTTP_BODY_BYTES_MAX` (or of unknown length) 413 and the
//! connection is closed. `/api/...` is the console's JSON admin API
//! (`api`), with its own methods and bounds.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING,
};
use hyper::{Method, Request, Response, StatusCode};

use super::{api, console, ready, scrape, HttpState};
use crate::limits;
use crate::metrics::render::CONTENT_TYPE as METRICS_CONTENT_TYPE;

pub type Answer = Response<Full<Bytes>>;

/// What a request the checks of [`route`] let through asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Ready,
    Metrics,
    Console(&'static console::Asset),
    Api,
}

/// The endpoint a request asks for, or the answer refusing it (unknown
/// path, method, body): everything decided from the request alone, before
/// any broker state is read (the HTTP fuzz target drives it).
pub fn route<B>(request: &Request<B>) -> Result<Endpoint, Answer> {
    let endpoint = match request.uri().path() {
        "/health" => Endpoint::Health,
        "/ready" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        // The admin API checks its own methods and bodies (`api`).
        path if path.starts_with("/api/") => return Ok(Endpoint::Api),
        path => match console::asset(path) {
            Some(asset) => Endpoint::Console(asset),
            None => {
                return Err(text(
                    StatusCode::NOT_FOUND,
                    "not found: this listener serves the console (/), /api/v1, /health, \
                     /ready and /metrics\n",
                ))
            }
        },
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut answer = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET or HEAD\n",
        );
        answer
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Err(answer);
    }
    if !body_within_limit(request) {
        let mut answer = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large: these endpoints take none\n",
        );
        // The body is not read: the connection cannot carry another request.
        answer
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return Err(answer);
    }
    Ok(endpoint)
}

pub async fn respond(state: &HttpState, request: Request<Incoming>) -> Answer {
    let endpoint = match route(&request) {
        Ok(endpoint) => endpoint,
        Err(refusal) => return refusal,
    };
    match endpoint {
        Endpoint::Health => text(StatusCode::OK, "ok\n"),
        Endpoint::Console(asset) => console::respond(state, asset),
        Endpoint::Api => api::respond(state, request).await,
        Endpoint::Ready => {
            let waiting = ready::waiting_for(state);
            let status = if waiting.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            with_type(status, ready::body(&waiting), "application/json")
        }
        Endpoint::Metrics => match state.broker.get() {
            Some(broker) => {
                let text = scrape::scrape(broker, state.started).await;
                with_type(StatusCode::OK, text, METRICS_CONTENT_TYPE)
            }
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "shard 0 is starting; metrics follow shortly\n",
            ),
        },
    }
}

/// Whether the request's body (if any) is of a known length within the
/// limit.
fn body_within_limit<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    if headers.contains_key(TRANSFER_ENCODING) {
        return false;
    }
    match headers.get(CONTENT_LENGTH) {
        None => true,
        Some(length) => length
            .to_str()
            .ok()
            .and_then(|l| l.trim().parse::<u64>().ok())
            .is_some_and(|l| l <= limits::HTTP_BODY_BYTES_MAX),
    }
}

fn text(status: StatusCode, body: &'static str) -> Answer {
    with_type(status, body.to_string(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: String, content_type: &'static str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    answer
}
