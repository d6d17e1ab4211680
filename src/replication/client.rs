//! A broker's own Kafka client connection to another broker (a follower
//! fetching from its leader): one request at a time, each bounded by a
//! deadline, over a connection of the network seam (`net::Network`: TCP on
//! the fetching shard, or the in-memory network in tests).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::limits;
use crate::net::Network;

/// How long one request (send and answer) may take; the fetch's own long
/// poll is well inside it.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
const CONNECT_DEADLINE: Duration = Duration::from_secs(3);

/// Why a call to another broker failed. Each leaves the connection
/// unusable: the caller drops it and connects again.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connect {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}: no answer within {REQUEST_DEADLINE:?}")]
    Deadline { addr: SocketAddr },
    #[error("cannot encode api {api} v{version}: {cause}")]
    Encode {
        api: i16,
        version: i16,
        cause: String,
    },
    #[error("{addr}: bad response size {size}")]
    BadSize { addr: SocketAddr, size: i32 },
    #[error("{addr}: connection closed inside a response ({got} of {size} bytes)")]
    Truncated {
        addr: SocketAddr,
        got: usize,
        size: i32,
    },
    #[error("{addr}: malformed response{what}: {cause}")]
    Malformed {
        addr: SocketAddr,
        /// " header" or "".
        what: &'static str,
        cause: String,
    },
    #[error("{addr}: answer to request {got} while waiting for {want}")]
    Correlation {
        addr: SocketAddr,
        got: i32,
        want: i32,
    },
}

pub struct BrokerConnection<S> {
    stream: S,
    pub addr: SocketAddr,
    correlation_id: i32,
    client_id: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> BrokerConnection<S> {
    pub async fn connect<N: Network<Stream = S>>(
        network: &N,
        addr: SocketAddr,
        client_id: String,
    ) -> Result<BrokerConnection<S>, CallError> {
        let stream = network
            .connect(addr, CONNECT_DEADLINE)
            .await
            .map_err(|source| CallError::Connect { addr, source })?;
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
    ) -> Result<R::Response, CallError> {
        let addr = self.addr;
        let work = self.exchange(version, request);
        let deadline = async {
            glommio::timer::sleep(REQUEST_DEADLINE).await;
            Err(CallError::Deadline { addr })
        };
        futures_lite::future::or(work, deadline).await
    }

    async fn exchange<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, CallError> {
        let addr = self.addr;
        let io = |source| CallError::Io { addr, source };
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
            .map_err(|e| CallError::Encode {
                api: R::KEY,
                version,
                cause: e.to_string(),
            })?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.map_err(io)?;
        // TLS may hold the request's last record until flushed.
        self.stream.flush().await.map_err(io)?;
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).await.map_err(io)?;
        let size = i32::from_be_bytes(prefix);
        if size < 4 || size as usize > limits::FRAME_BYTES_MAX {
            return Err(CallError::BadSize { addr, size });
        }
        // Memory follows the bytes that arrive, not the prefix's promise;
        // the decoder then refuses counts the bytes cannot hold
        // (vendor/kafka-protocol/PATCHES.md).
        let mut body = Vec::new();
        (&mut self.stream)
            .take(size as u64)
            .read_to_end(&mut body)
            .await
            .map_err(io)?;
        if body.len() != size as usize {
            return Err(CallError::Truncated {
                addr,
                got: body.len(),
                size,
            });
        }
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, R::Response::header_version(version)).map_err(
                |e| CallError::Malformed {
                    addr,
                    what: " header",
                    cause: format!("{e:#}"),
                },
            )?;
        if response_header.correlation_id != self.correlation_id {
            return Err(CallError::Correlation {
                addr,
                got: response_header.correlation_id,
                want: self.correlation_id,
            });
        }
        R::Response::decode(&mut body, version).map_err(|e| CallError::Malformed {
            addr,
            what: "",
            cause: format!("{e:#}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{MemNetwork, MemStream, Tcp};
    use kafka_protocol::messages::FetchRequest;
    use std::io::{Read, Write};

    const LEADER: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);

    /// Reads one request frame from `server` and writes `answer(its
    /// correlation id)` back, then closes (drops) its end.
    async fn answer_once(mut server: MemStream, answer: impl Fn(i32) -> Vec<u8>) {
        let mut prefix = [0u8; 4];
        server.read_exact(&mut prefix).await.unwrap();
        let mut request = vec![0u8; i32::from_be_bytes(prefix) as usize];
        server.read_exact(&mut request).await.unwrap();
        let correlation_id = i32::from_be_bytes([request[4], request[5], request[6], request[7]]);
        let _ = server.write_all(&answer(correlation_id)).await;
    }

    /// One Fetch call over the in-memory network to a leader that answers
    /// with `answer`.
    fn call_fetch(answer: fn(i32) -> Vec<u8>) -> Result<(), CallError> {
        glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap()
            .run(async move {
                let net = MemNetwork::default();
                let mut listener = net.listen(LEADER);
                let leader = glommio::spawn_local(async move {
                    answer_once(listener.accept().await.unwrap(), answer).await
                });
                let mut conn = BrokerConnection::connect(&net, LEADER, "test".into()).await?;
                let result = conn.call(12, &FetchRequest::default()).await.map(drop);
                leader.await;
                result
            })
    }

    #[test]
    fn a_leader_answering_a_huge_count_is_an_error_not_an_abort() {
        let err = call_fetch(|correlation_id| {
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
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("malformed response") && err.contains("exceeds"),
            "{err}"
        );
    }

    #[test]
    fn a_response_prefix_is_not_taken_on_trust() {
        // 100 MiB announced, 8 bytes sent, then the leader closes.
        let err = call_fetch(|correlation_id| {
            let mut frame = (100i32 << 20).to_be_bytes().to_vec();
            frame.extend_from_slice(&correlation_id.to_be_bytes());
            frame.extend_from_slice(&[0; 4]);
            frame
        })
        .unwrap_err();
        assert!(matches!(err, CallError::Truncated { got: 8, .. }), "{err}");
    }

    #[test]
    fn an_answer_to_another_request_is_refused() {
        let err = call_fetch(|correlation_id| {
            let mut frame = 8i32.to_be_bytes().to_vec();
            frame.extend_from_slice(&(correlation_id + 1).to_be_bytes());
            frame.extend_from_slice(&[0; 4]);
            frame
        })
        .unwrap_err();
        assert!(matches!(err, CallError::Correlation { .. }), "{err}");
    }

    /// A link cut while the follower waits for its answer fails the call
    /// at once (not after the deadline), and nothing listening refuses.
    #[test]
    fn a_cut_link_fails_the_call_and_a_gone_leader_refuses() {
        glommio::LocalExecutorBuilder::default()
            .make()
            .unwrap()
            .run(async {
                let net = MemNetwork::default();
                let mut listener = net.listen(LEADER);
                let mut conn = BrokerConnection::connect(&net, LEADER, "test".into())
                    .await
                    .unwrap();
                let cutter = glommio::spawn_local({
                    let net = net.clone();
                    async move {
                        // The leader takes the request and never answers;
                        // then the link fails.
                        let mut server = listener.accept().await.unwrap();
                        let mut prefix = [0u8; 4];
                        server.read_exact(&mut prefix).await.unwrap();
                        net.cut(LEADER);
                        server
                    }
                });
                let err = conn.call(12, &FetchRequest::default()).await.unwrap_err();
                assert!(matches!(err, CallError::Io { .. }), "{err}");
                drop(cutter.await);
                net.close(LEADER);
                let err = BrokerConnection::connect(&net, LEADER, "test".into())
                    .await
                    .err()
                    .unwrap();
                assert!(matches!(err, CallError::Connect { .. }), "{err}");
            });
    }

    /// The real network: a peer that closes inside a response over TCP.
    #[test]
    fn over_tcp_a_closed_connection_inside_a_response_is_an_error() {
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
            let mut frame = (100i32 << 20).to_be_bytes().to_vec();
            frame.extend_from_slice(&request[4..8]);
            let _ = socket.write_all(&frame);
        });
        let err = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut conn = BrokerConnection::connect(&Tcp, addr, "test".into()).await?;
                conn.call(12, &FetchRequest::default()).await.map(drop)
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, CallError::Truncated { got: 4, .. }), "{err}");
        peer.join().unwrap();
    }
}
