//! Tests of socket buffer tuning, read sizes and the node-wide counts.

use super::*;
use std::net::IpAddr;

use super::admission::NODE_CONNECTIONS;
use super::reader::read_size;
use glommio::net::TcpListener;

fn buffer_sizes(stream: &TcpStream) -> (usize, usize) {
    let socket = socket2::SockRef::from(stream);
    (
        socket.send_buffer_size().unwrap(),
        socket.recv_buffer_size().unwrap(),
    )
}

#[test]
fn tuning_sets_socket_buffers_of_accepted_connections() {
    glommio::LocalExecutorBuilder::default()
        .spawn(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let accept = || async {
                let (accepted, _client) =
                    futures::join!(async { listener.accept().await.unwrap() }, async {
                        TcpStream::connect(addr).await.unwrap()
                    });
                (accepted, _client)
            };
            // 0 keeps the kernel's sizes.
            let (plain, _c1) = accept().await;
            let before = buffer_sizes(&plain);
            set_buffer_sizes(&plain, &Tuning::default()).unwrap();
            assert_eq!(buffer_sizes(&plain), before);
            // Sizes unlike the kernel's defaults here (16 KiB send,
            // 128 KiB receive); Linux reports twice what was set.
            let wanted = 48 * 1024;
            let tuning = Tuning {
                socket_send_buffer_bytes: wanted,
                socket_receive_buffer_bytes: wanted,
                ..Tuning::default()
            };
            let (tuned, _c2) = accept().await;
            set_buffer_sizes(&tuned, &tuning).unwrap();
            let (send, receive) = buffer_sizes(&tuned);
            assert!(send >= wanted && send != before.0, "SO_SNDBUF {send}");
            assert!(
                receive >= wanted && receive != before.1,
                "SO_RCVBUF {receive}"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn reads_grow_with_the_bytes_received() {
    let min = limits::CONNECTION_READ_BYTES_MIN;
    let step = limits::CONNECTION_READ_STEP_BYTES_MAX;
    // Nothing known yet: the minimum.
    assert_eq!(read_size(None, 0), min);
    // A 100 MiB prefix alone takes no more than the minimum.
    assert_eq!(read_size(Some(100 << 20), 4), min);
    // The buffer at most doubles per read, and steps are capped.
    assert_eq!(read_size(Some(100 << 20), 64 << 10), 64 << 10);
    assert_eq!(read_size(Some(100 << 20), 50 << 20), step);
    // The end of a frame: its rest, or the minimum to catch what
    // follows it.
    assert_eq!(read_size(Some(10_000), 9_000), min);
    assert_eq!(read_size(Some(100), 50), min);
    // Summing steps from a bare prefix, a 100 MiB frame never holds more
    // than twice what it received.
    let (mut buffered, size) = (4usize, 100usize << 20);
    while buffered < size + 4 {
        let next = read_size(Some(size), buffered);
        assert!(next <= buffered.max(min), "{next} after {buffered}");
        buffered += next.min(size + 4 - buffered);
    }
}

#[test]
fn node_connection_counts_refuse_past_their_limits() {
    // A documentation address of its own, so other tests' counts do
    // not mix in.
    let ip: IpAddr = "192.0.2.77".parse().unwrap();
    let other: IpAddr = "192.0.2.78".parse().unwrap();
    let a = ConnectionSlot::admit(ip, usize::MAX, 2).unwrap();
    let b = ConnectionSlot::admit(ip, usize::MAX, 2).unwrap();
    assert_eq!(
        ConnectionSlot::admit(ip, usize::MAX, 2).err(),
        Some(Refusal::MaxConnectionsPerIp(2))
    );
    let c = ConnectionSlot::admit(other, usize::MAX, 2).unwrap();
    drop(a);
    let d = ConnectionSlot::admit(ip, usize::MAX, 2).unwrap();
    let total = NODE_CONNECTIONS.lock().unwrap().total;
    assert_eq!(
        ConnectionSlot::admit(other, total, usize::MAX).err(),
        Some(Refusal::MaxConnections(total))
    );
    drop((b, c, d));
    assert!(!NODE_CONNECTIONS.lock().unwrap().per_ip.contains_key(&ip));
}
