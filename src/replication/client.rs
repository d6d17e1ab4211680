//! A broker's own Kafka client connection to another broker (a follower
//! fetching from its leader): one request at a time, each bounded by a
//! deadline, over a glommio socket on the fetching shard.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::limits;

/// How long one request (send and answer) may take; the fetch's own long
/// poll is well inside it.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
const CONNECT_DEADLINE: Duration = Duration::from_secs(3);

pub struct BrokerConnection {
    stream: TcpStream,
    pub addr: SocketAddr,
    correlation_id: i32,
    client_id: String,
}

impl BrokerConnection {
    pub async fn connect(addr: SocketAddr, client_id: String) -> Result<BrokerConnection, String> {
        let stream = TcpStream::connect_timeout(addr, CONNECT_DEADLINE)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("{addr}: {e}"))?;
        Ok(BrokerConnection {
            stream,
            addr,
            correlation_id: 0,
            client_id,
        })
    }

    /// Sends `request` at `version` and reads its answer. Any failure leaves
    /// the connection unusable: the caller drops it and connects again.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, String> {
        let addr = self.addr;
        let work = self.exchange(version, request);
        let deadline = async {
            glommio::timer::sleep(REQUEST_DEADLINE).await;
            Err(format!("{addr}: no answer within {REQUEST_DEADLINE:?}"))
        };
        futures_lite::future::or(work, deadline).await
    }

    async fn exchange<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, String> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .and_then(|_| request.encode(&mut buf, version))
            .map_err(|e| format!("cannot encode api {} v{version}: {e}", R::KEY))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream
            .write_all(&buf)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let size = i32::from_be_bytes(prefix);
        if size < 4 || size as usize > limits::FRAME_BYTES_MAX {
            return Err(format!("{}: bad response size {size}", self.addr));
        }
        // Memory follows the bytes that arrive, not the prefix's promise;
        // the decoder then refuses counts the bytes cannot hold
        // (vendor/kafka-protocol/PATCHES.md).
        let mut body = Vec::new();
        (&mut self.stream)
            .take(size as u64)
            .read_to_end(&mut body)
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        if body.len() != size as usize {
            return Err(format!(
                "{}: connection closed inside a response ({} of {size} bytes)",
                self.addr,
                body.len()
            ));
        }
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, R::Response::header_version(version))
                .map_err(|e| format!("{}: malformed response header: {e:#}", self.addr))?;
        if response_header.correlation_id != self.correlation_id {
            return Err(format!(
                "{}: answer to request {} while waiting for {}",
                self.addr, response_header.correlation_id, self.correlation_id
            ));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| format!("{}: malformed response: {e:#}", self.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::FetchRequest;
    use std::io::{Read, Write};

    /// A peer that answers the first request on its first connection with
    /// `answer(correlation id)` and then closes.
    fn fake_peer(answer: fn(i32) -> Vec<u8>) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut prefix = [0u8; 4];
            socket.read_exact(&mut prefix).unwrap();
            let mut request = vec![0u8; i32::from_be_bytes(prefix) as usize];
            socket.read_exact(&mut request).unwrap();
            let correlation_id =
                i32::from_be_bytes([request[4], request[5], request[6], request[7]]);
            let _ = socket.write_all(&answer(correlation_id));
        });
        (addr, peer)
    }

    fn call_fetch(addr: SocketAddr) -> Result<(), String> {
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut conn = BrokerConnection::connect(addr, "test".into()).await?;
                conn.call(12, &FetchRequest::default()).await.map(drop)
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_leader_answering_a_huge_count_is_an_error_not_an_abort() {
        let (addr, peer) = fake_peer(|correlation_id| {
            // Fetch v12 response: header v1 (correlation id, no tags), then
            // throttle, error, session id and a responses compact array
            // that claims u32::MAX - 1 topics.
            let mut body = correlation_id.to_be_bytes().to_vec();
            body.push(0);
            body.extend_from_slice(&[0; 4 + 2 + 4]);
            body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
            let mut frame = (body.len() as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            frame
        });
        let err = call_fetch(addr).unwrap_err();
        assert!(
            err.contains("malformed response") && err.contains("exceeds"),
            "{err}"
        );
        peer.join().unwrap();
    }

    #[test]
    fn a_response_prefix_is_not_taken_on_trust() {
        // 100 MiB announced, 8 bytes sent, then the peer closes.
        let (addr, peer) = fake_peer(|correlation_id| {
            let mut frame = (100i32 << 20).to_be_bytes().to_vec();
            frame.extend_from_slice(&correlation_id.to_be_bytes());
            frame.extend_from_slice(&[0; 4]);
            frame
        });
        let err = call_fetch(addr).unwrap_err();
        assert!(err.contains("closed inside a response"), "{err}");
        peer.join().unwrap();
    }
}
