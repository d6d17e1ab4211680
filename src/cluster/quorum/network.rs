//! The quorum's network and clock: the tick loop, the controller listener
//! (Raft messages from peers, requests from brokers, one reply per request
//! in order) and the links that carry this node's Raft messages to each
//! peer. The state they drive is the `Quorum` of `quorum.rs`.

use super::*;

/// Whether `host:port` actively refuses a TCP connection (nothing listens).
/// A timeout or any other failure is not taken as proof of death.
pub(super) async fn refuses_connections(host: &str, port: u16) -> bool {
    let Ok(addr) = transport::resolve(host, port) else {
        return false;
    };
    match TcpStream::connect_timeout(addr, Duration::from_millis(300)).await {
        Ok(_) => false,
        Err(glommio::GlommioError::IoError(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Err(_) => false,
    }
}

pub(super) async fn tick_loop(quorum: Rc<Quorum>) {
    let mut last_check = Instant::now();
    while !crate::shard::shutdown::requested() {
        glommio::timer::sleep(quorum.settings.tick).await;
        quorum.ticks.set(quorum.ticks.get() + 1);
        quorum.drive().await;
        if last_check.elapsed() >= quorum.settings.tick * 5 {
            last_check = Instant::now();
            quorum.check_sessions().await;
        }
    }
}

pub(super) async fn accept_loop(quorum: Rc<Quorum>, listener: TcpListener) {
    let open = Rc::new(Cell::new(0usize));
    while !crate::shard::shutdown::requested() {
        match listener.accept().await {
            Ok(stream) if open.get() >= limits::CONTROLLER_CONNECTIONS_MAX => {
                log::warn!(
                    "controller: {} connections open; closing a new one",
                    open.get()
                );
                drop(stream);
            }
            Ok(stream) => {
                open.set(open.get() + 1);
                let (quorum, open) = (quorum.clone(), open.clone());
                glommio::spawn_local(async move {
                    serve_connection(quorum, stream).await;
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Err(e) => {
                log::warn!("controller accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(quorum: Rc<Quorum>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // A peer link carries heartbeats far more often than this; a connection
    // that sends nothing for so long (or trickles one frame) is closed.
    let idle = Duration::from_millis(limits::CONTROLLER_IDLE_MS_MAX);
    if stream.set_read_timeout(Some(idle)).is_err() {
        return;
    }
    loop {
        let (kind, body) = match transport::read_frame(&mut stream).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                log::debug!("controller connection closed: {e}");
                return;
            }
        };
        match kind {
            Kind::Raft => match transport::decode_raft_message(&body) {
                Ok(message) if !quorum.is_peer_message(&message) => {
                    log::warn!(
                        "controller: raft message from {} to {} is not for this quorum",
                        message.from,
                        message.to
                    );
                    return;
                }
                Ok(message) => {
                    quorum.step(message);
                    let q = quorum.clone();
                    glommio::spawn_local(async move { q.drive().await }).detach();
                }
                Err(e) => {
                    log::warn!("controller: malformed raft message: {e}");
                    return;
                }
            },
            Kind::Request => {
                let frame = match transport::decode_json::<ControllerRequest>(&body) {
                    Ok(request) => quorum.handle(request).await,
                    Err(e) => calls::encode_malformed(e.to_string()),
                };
                if stream.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Kind::Reply => return,
        }
    }
}

/// Keeps one connection to a peer controller and writes its queued frames;
/// frames queued while it is unreachable are dropped (Raft resends).
pub(super) async fn peer_link(addr: SocketAddr, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut stream: Option<TcpStream> = None;
    let mut retry_at = Instant::now();
    while let Some(frame) = queue.next().await {
        if stream.is_none() {
            if Instant::now() < retry_at {
                continue;
            }
            match transport::connect(addr, Duration::from_millis(500)).await {
                Ok(s) => stream = Some(s),
                Err(_) => {
                    retry_at = Instant::now() + Duration::from_millis(200);
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        if s.write_all(&frame).await.is_err() {
            stream = None;
        }
    }
}
