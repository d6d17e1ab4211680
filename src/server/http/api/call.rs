//! A request to the admin API decoded into the call it names (path
//! segments percent-decoded, query string and JSON body parsed), before
//! any broker state is read: the one decoder of what a browser sends, and
//! the surface the `http_api` fuzz target drives.

use hyper::{Method, StatusCode};

use super::groups::Reset;
use super::request::{self, ApiError, Query};
use super::topics::{ConfigChanges, NewPartitions, NewTopic};

/// One admin API call, with its arguments decoded.
pub enum Call {
    Overview,
    Brokers,
    BrokerConfigs(String),
    Topics,
    Topic(String),
    Messages(String, Query),
    Groups,
    Group(String),
    CreateTopic(NewTopic),
    DeleteTopic(String),
    AddPartitions(String, NewPartitions),
    AlterConfigs(String, ConfigChanges),
    ResetOffsets(String, Reset),
}

/// Whether `method` asks to change something (and so carries a body and
/// passes the change guards first).
pub fn changes(method: &Method) -> bool {
    method == Method::POST || method == Method::DELETE
}

/// The call `method` on `path` (with `query` and, for a change, `body`)
/// names, or why it names none: 404 for an unknown path, 405 for a
/// method the API does not take, 400 for bad escapes, numbers or JSON.
pub fn decode(
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Call, ApiError> {
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Err(not_found(path));
    };
    let segments = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(request::percent_decode)
        .collect::<Result<Vec<String>, ApiError>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let owned = |s: &str| s.to_string();
    if method == Method::GET || method == Method::HEAD {
        return match segments[..] {
            ["cluster"] => Ok(Call::Overview),
            ["brokers"] => Ok(Call::Brokers),
            ["brokers", id, "configs"] => Ok(Call::BrokerConfigs(owned(id))),
            ["topics"] => Ok(Call::Topics),
            ["topics", name] => Ok(Call::Topic(owned(name))),
            ["topics", name, "messages"] => Ok(Call::Messages(
                owned(name),
                Query::parse(query.unwrap_or(""))?,
            )),
            ["groups"] => Ok(Call::Groups),
            ["groups", id] => Ok(Call::Group(owned(id))),
            _ => Err(not_found(path)),
        };
    }
    if !changes(method) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "use GET to read, POST or DELETE to change",
        ));
    }
    match (method, &segments[..]) {
        (&Method::POST, ["topics"]) => Ok(Call::CreateTopic(request::parse(body)?)),
        (&Method::DELETE, ["topics", name]) => Ok(Call::DeleteTopic(owned(name))),
        (&Method::POST, ["topics", name, "partitions"]) => {
            Ok(Call::AddPartitions(owned(name), request::parse(body)?))
        }
        (&Method::POST, ["topics", name, "configs"]) => {
            Ok(Call::AlterConfigs(owned(name), request::parse(body)?))
        }
        (&Method::POST, ["groups", id, "offsets"]) => {
            Ok(Call::ResetOffsets(owned(id), request::parse(body)?))
        }
        _ => Err(not_found(path)),
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no API endpoint {path} (docs/console.md lists them)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_methods_and_bodies_decode_or_are_refused() {
        let get = |path: &str| decode(&Method::GET, path, None, b"");
        assert!(matches!(get("/api/v1/topics/a%2Fb"), Ok(Call::Topic(t)) if t == "a/b"));
        assert!(matches!(get("/api/v1/groups/"), Ok(Call::Groups)));
        assert_eq!(
            get("/api/v1/nope").err().unwrap().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/api/v2/topics").err().unwrap().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/api/v1/topics/%zz").err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
        let put = decode(&Method::PUT, "/api/v1/topics", None, b"");
        assert_eq!(put.err().unwrap().status, StatusCode::METHOD_NOT_ALLOWED);
        let bad = decode(&Method::POST, "/api/v1/topics", None, b"{");
        assert_eq!(bad.err().unwrap().name, "BAD_JSON");
        let messages = decode(
            &Method::GET,
            "/api/v1/topics/t/messages",
            Some("partition=2"),
            b"",
        );
        assert!(
            matches!(messages, Ok(Call::Messages(t, q)) if t == "t" && q.get("partition") == Some("2"))
        );
    }
}
