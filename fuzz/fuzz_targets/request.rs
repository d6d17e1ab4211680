//! The whole request path from frame bytes, up to the handlers: the input
//! is one frame as it follows its 4-byte size prefix on the socket. It goes
//! through the connection's frame splitter and `dispatch::parse` (header
//! plus body of every API and version served), and what parses must encode
//! again and decode to the same request. libFuzzer's `-malloc_limit_mb`
//! turns an allocation the frame does not justify into a finding.

#![no_main]

use bytes::{BufMut, BytesMut};
use corelog::limits::FRAME_BYTES_MAX;
use corelog::protocol::frame::split_frame;
use corelog::server::dispatch::{parse, Parsed};
use kafka_protocol::messages::RequestKind;
use kafka_protocol::protocol::Encodable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The connection hands `parse` only what the splitter cut, with the
    // same bound, so a frame the splitter refuses never reaches it.
    let mut stream = BytesMut::with_capacity(4 + data.len());
    stream.put_u32(data.len() as u32);
    stream.extend_from_slice(data);
    let Ok(Some(frame)) = split_frame(&mut stream, FRAME_BYTES_MAX) else {
        return;
    };
    let Ok(Parsed::Request { header, body }) = parse(frame) else {
        return;
    };
    corelog_fuzz::request_round_trip(&header, &body);
    // ApiVersions is answered from the catalog's feature level only: its
    // answer must encode.
    if let RequestKind::ApiVersions(request) = *body {
        use corelog::server::handlers::api_versions::{handle, Finalized};
        let version = header.request_api_version;
        let finalized = Finalized::of(&corelog::metadata::Catalog::new("fuzz"), true);
        let response = handle(version, request, finalized);
        let mut out = BytesMut::new();
        response
            .encode(&mut out, version)
            .expect("the ApiVersions answer encodes at the asked version");
    }
});
