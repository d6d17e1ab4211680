//! The web console's files (docs/console.md): hand-written HTML, CSS and
//! JavaScript compiled into the binary, so the console works offline and
//! needs no build step. The page at `/` loads only these files; its
//! script reads the JSON admin API (`super::api`) and `/metrics`.
//!
//! Every file is served with a strict Content-Security-Policy (scripts
//! and styles only from this listener, no inline script, no framing) and
//! `Cache-Control: no-cache`, so a browser revalidates after an upgrade
//! instead of running an old script against a new API.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::HttpState;

/// A file of the console.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    pub path: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        body: include_bytes!("assets/index.html"),
        content_type: "text/html; charset=utf-8",
    },
    Asset {
        path: "/console/console.css",
        body: include_bytes!("assets/console.css"),
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        path: "/console/util.js",
        body: include_bytes!("assets/util.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/console/chart.js",
        body: include_bytes!("assets/chart.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/console/pages.js",
        body: include_bytes!("assets/pages.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/console/groups.js",
        body: include_bytes!("assets/groups.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/console/app.js",
        body: include_bytes!("assets/app.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/favicon.ico",
        body: include_bytes!("assets/favicon.svg"),
        content_type: "image/svg+xml",
    },
];

/// The policy every console file is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console file at `path`, if it is one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// The file, or 404 when the console is off (`http.console.enable`).
pub fn respond(state: &HttpState, asset: &Asset) -> Response<Full<Bytes>> {
    let enabled = state
        .broker
        .get()
        .is_none_or(|b| b.config.broker.http_console_enable);
    let mut answer = if enabled {
        Response::new(Full::new(Bytes::from_static(asset.body)))
    } else {
        let mut off = Response::new(Full::new(Bytes::from_static(
            b"the console is off (http.console.enable=false)\n",
        )));
        *off.status_mut() = StatusCode::NOT_FOUND;
        off
    };
    let content_type = if enabled {
        asset.content_type
    } else {
        "text/plain; charset=utf-8"
    };
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    answer
}
