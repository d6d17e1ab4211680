//! The controller listener's wire format and the connections over it.
//!
//! Only corelog nodes speak on the CONTROLLER listener (as in KRaft, where
//! it is internal), so the format is corelog's own: frames of
//! `[len u32][kind u8][body]`. Raft messages go one way over a connection
//! each controller keeps to each peer; requests (broker heartbeats,
//! forwarded proposals, quorum status) get one reply per request, in order.
//!
//! A frame's memory grows with the bytes that arrive, never on the strength
//! of its length prefix, and Raft messages are decoded with prost (bounded
//! nesting, every length checked against the bytes left): anyone can connect
//! to the controller listener. [`decode_frame`] and [`decode_raft_message`]
//! are the pure decoders (the fuzz targets' entry points).

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use raft::prelude::Message;
use serde::{de::DeserializeOwned, Serialize};

use crate::limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A raft-rs `eraftpb::Message`, protobuf-encoded.
    Raft = 1,
    /// A JSON `calls::ControllerRequest`.
    Request = 2,
    /// The JSON reply to the request before it: `Result<Reply, Refusal>`,
    /// `Reply` being the type the request's call names (`calls.rs`).
    Reply = 3,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Raft),
            2 => Some(Kind::Request),
            3 => Some(Kind::Reply),
            _ => None,
        }
    }
}

pub fn encode(kind: Kind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
    out
}

pub fn encode_json(kind: Kind, value: &impl Serialize) -> Vec<u8> {
    encode(
        kind,
        &serde_json::to_vec(value).expect("controller messages serialize"),
    )
}

pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

fn invalid_data(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// The body length a frame's 4-byte prefix announces, checked.
fn frame_len(header: [u8; 4]) -> std::io::Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 || len > limits::CONTROLLER_FRAME_BYTES_MAX {
        return Err(invalid_data(format!("controller frame of {len} bytes")));
    }
    Ok(len)
}

fn split_kind(mut body: Vec<u8>) -> std::io::Result<(Kind, Vec<u8>)> {
    let kind = Kind::from_byte(body[0])
        .ok_or_else(|| invalid_data(format!("unknown controller frame kind {}", body[0])))?;
    body.remove(0);
    Ok((kind, body))
}

/// Decodes the first frame of `bytes`: the frame and the bytes it took, or
/// `Ok(None)` when `bytes` holds only part of it.
pub fn decode_frame(bytes: &[u8]) -> std::io::Result<Option<(Kind, Vec<u8>, usize)>> {
    let Some(header) = bytes.get(..4) else {
        return Ok(None);
    };
    let len = frame_len(header.try_into().expect("4 bytes"))?;
    let Some(body) = bytes.get(4..4 + len) else {
        return Ok(None);
    };
    let (kind, body) = split_kind(body.to_vec())?;
    Ok(Some((kind, body, 4 + len)))
}

/// A Raft message from a frame's body. prost refuses nesting deeper than
/// its recursion limit and any length past the bytes left, before it
/// allocates for it.
pub fn decode_raft_message(body: &[u8]) -> std::io::Result<Message> {
    let message = <Message as prost::Message>::decode(body)
        .map_err(|e| invalid_data(format!("malformed raft message: {e}")))?;
    // raft-rs reads enum fields through getters that panic on a number
    // they do not know; prost keeps any number.
    if raft::prelude::MessageType::from_i32(message.msg_type).is_none() {
        return Err(invalid_data(format!(
            "raft message of unknown type {}",
            message.msg_type
        )));
    }
    for entry in &message.entries {
        super::store::check_entry(entry)
            .map_err(|e| invalid_data(format!("raft message from {}: {e}", message.from)))?;
    }
    Ok(message)
}

/// A Raft message's bytes.
pub fn encode_raft_message(message: &Message) -> Vec<u8> {
    prost::Message::encode_to_vec(message)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<(Kind, Vec<u8>)>> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = frame_len(header)?;
    // Grow with what arrives: a peer that announces 64 MiB and sends 4
    // bytes costs 64 KiB, not 64 MiB.
    let mut body = Vec::with_capacity(len.min(limits::CONTROLLER_READ_CHUNK_BYTES));
    while body.len() < len {
        let want = (len - body.len()).min(limits::CONTROLLER_READ_CHUNK_BYTES);
        let start = body.len();
        body.resize(start + want, 0);
        stream.read_exact(&mut body[start..]).await?;
    }
    split_kind(body).map(Some)
}

pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(addr, timeout).await?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

/// One request and its reply over a fresh connection to `addr`.
pub async fn call<Req: Serialize, Rep: DeserializeOwned>(
    addr: SocketAddr,
    request: &Req,
    timeout: Duration,
) -> std::io::Result<Rep> {
    let mut stream = connect(addr, timeout).await?;
    stream.set_read_timeout(Some(timeout))?;
    stream
        .write_all(&encode_json(Kind::Request, request))
        .await?;
    match read_frame(&mut stream).await? {
        Some((Kind::Reply, body)) => decode_json(&body),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the controller closed the connection without a reply",
        )),
    }
}

/// Resolves `host:port` (a voter or listener address) once.
pub fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host}:{port} does not resolve"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_bounded_and_partial_frames_wait() {
        let frame = encode(Kind::Request, b"{}");
        assert_eq!(
            decode_frame(&frame).unwrap(),
            Some((Kind::Request, b"{}".to_vec(), frame.len()))
        );
        assert_eq!(decode_frame(&frame[..frame.len() - 1]).unwrap(), None);
        // A length past the bound, zero, or an unknown kind is refused.
        let huge = ((limits::CONTROLLER_FRAME_BYTES_MAX + 1) as u32).to_be_bytes();
        assert!(decode_frame(&huge).is_err());
        assert!(decode_frame(&[0, 0, 0, 0]).is_err());
        assert!(decode_frame(&[0, 0, 0, 1, 9]).is_err());
    }

    #[test]
    fn raft_messages_refuse_lying_lengths_and_deep_nesting() {
        let message = Message {
            from: 2,
            to: 1,
            commit: 7,
            ..Default::default()
        };
        let bytes = encode_raft_message(&message);
        assert_eq!(decode_raft_message(&bytes).unwrap().commit, 7);
        // Field 7 (entries) announcing 2^31 bytes with 3 present.
        let lying = [0x3a, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 2, 3];
        assert!(decode_raft_message(&lying).is_err());
        // Unknown groups nested 100,000 deep (RUSTSEC-2024-0437 crashed
        // protobuf 2's parser with this): an error, not a stack overflow.
        let mut deep = vec![0x0b_u8; 100_000]; // start group, field 1
        deep.extend(std::iter::repeat_n(0x0c_u8, 100_000)); // end group
        assert!(decode_raft_message(&deep).is_err());
    }

    /// fuzz target `controller`: raft-rs reads `msg_type` and each entry's
    /// `entry_type` through getters that panic on numbers they do not know;
    /// such a message from a peer is refused at decoding.
    #[test]
    fn raft_messages_with_unknown_enum_numbers_are_refused() {
        let unknown_type = Message {
            msg_type: 99,
            ..Default::default()
        };
        assert!(decode_raft_message(&encode_raft_message(&unknown_type)).is_err());
        let unknown_entry = Message {
            entries: vec![raft::prelude::Entry {
                entry_type: 8,
                index: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = decode_raft_message(&encode_raft_message(&unknown_entry)).unwrap_err();
        assert!(err.to_string().contains("unknown type 8"), "{err}");
    }
}
