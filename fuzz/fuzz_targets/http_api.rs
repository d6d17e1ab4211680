//! The console's admin API decoder (`server::http::api::call::decode`):
//! a method, a path (percent-decoded segments), a query string and a JSON
//! body from arbitrary bytes. It must answer a call or an error with a
//! 4xx status, never panic; a decoded call's names are what the path
//! spelled (no `/` survives inside a segment unless it was escaped).

#![no_main]

use corelog::server::http::api::call::{decode, Call};
use hyper::Method;
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::DELETE,
    Method::PUT,
];

fuzz_target!(|data: &[u8]| {
    // [method][path \0 query \0 body]
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = &METHODS[usize::from(m) % METHODS.len()];
    let mut parts = rest.splitn(3, |&b| b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();
    let path = format!("/api/v1/{path}");
    match decode(method, &path, query.as_deref(), body) {
        Ok(call) => {
            let named = match &call {
                Call::BrokerConfigs(n)
                | Call::Topic(n)
                | Call::Messages(n, _)
                | Call::Group(n)
                | Call::DeleteTopic(n)
                | Call::AddPartitions(n, _)
                | Call::AlterConfigs(n, _)
                | Call::ResetOffsets(n, _) => Some(n),
                _ => None,
            };
            if let Some(name) = named {
                assert!(!name.is_empty(), "an empty name decoded from {path:?}");
                assert!(
                    !name.contains('/') || path.contains('%'),
                    "{name:?} from {path:?}"
                );
            }
        }
        Err(e) => assert!(
            e.status.is_client_error(),
            "{} for {path:?}: {}",
            e.status,
            e.message
        ),
    }
});
