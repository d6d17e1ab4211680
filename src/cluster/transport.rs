//! The controller listener's wire format and the connections over it.
//!
//! Only corelog nodes speak on the CONTROLLER listener (as in KRaft, where
//! it is internal), so the format is corelog's own: frames of
//! `[len u32][kind u8][body]`. Raft messages go one way over a connection
//! each controller keeps to each peer; requests (broker heartbeats,
//! forwarded proposals, quorum status) get one reply per request, in order.

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use serde::{de::DeserializeOwned, Serialize};

use crate::limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A raft-rs `eraftpb::Message`, protobuf-encoded.
    Raft = 1,
    /// A JSON `ControllerRequest`.
    Request = 2,
    /// A JSON `ControllerReply` to the request before it.
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

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<(Kind, Vec<u8>)>> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 || len > limits::CONTROLLER_FRAME_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("controller frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    let kind = Kind::from_byte(body[0]).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unknown controller frame kind {}", body[0]),
        )
    })?;
    body.remove(0);
    Ok(Some((kind, body)))
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
