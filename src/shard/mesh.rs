//! Request/reply calls between shards over glommio's bounded channel mesh.
//!
//! One per shard. Every shard runs one drain task per peer that only
//! receives: a request is handed to a freshly spawned task (which may await
//! anything, including sending its reply), a reply completes the local caller.
//! The drain tasks never await a send, so two shards calling each other
//! cannot deadlock on full channels (GLOMMIO.md, trap 4); a full channel
//! only slows the caller down, which is the backpressure we want.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures::channel::oneshot;
use glommio::channels::channel_mesh::{MeshBuilder, Receivers, Senders};
use glommio::TaskQueueHandle;

use super::ShardId;

pub enum Envelope<Req, Rep> {
    Request { id: u64, request: Req },
    Reply { id: u64, reply: Rep },
}

#[derive(Debug)]
pub enum MeshError {
    /// The peer is gone (shutting down) or the channel closed.
    Disconnected,
}

impl std::fmt::Display for MeshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the target shard is not reachable")
    }
}

pub type Handler<Req, Rep> = Rc<dyn Fn(ShardId, Req) -> Pin<Box<dyn Future<Output = Rep>>>>;

pub struct Mesh<Req: Send + 'static, Rep: Send + 'static> {
    senders: Senders<Envelope<Req, Rep>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Rep>>>,
    next_id: Cell<u64>,
}

impl<Req: Send + 'static, Rep: Send + 'static> Mesh<Req, Rep> {
    /// Joins the mesh (every shard must call this with the same builder) and
    /// starts the drain tasks in `queue`; `handler` serves requests from peers.
    pub async fn join(
        builder: MeshBuilder<Envelope<Req, Rep>, glommio::channels::channel_mesh::Full>,
        queue: TaskQueueHandle,
        handler: Handler<Req, Rep>,
    ) -> Rc<Mesh<Req, Rep>> {
        let (senders, receivers) = builder.join().await.expect("mesh joins");
        let mesh = Rc::new(Mesh {
            senders,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        });
        mesh.clone().start_drains(receivers, queue, handler);
        mesh
    }

    pub fn shard(&self) -> ShardId {
        ShardId(self.senders.peer_id())
    }

    pub fn shard_count(&self) -> usize {
        self.senders.nr_consumers()
    }

    fn start_drains(
        self: Rc<Self>,
        mut receivers: Receivers<Envelope<Req, Rep>>,
        queue: TaskQueueHandle,
        handler: Handler<Req, Rep>,
    ) {
        for (peer, receiver) in receivers.streams() {
            let mesh = self.clone();
            let handler = handler.clone();
            glommio::spawn_local_into(
                async move {
                    while let Some(envelope) = receiver.recv().await {
                        match envelope {
                            Envelope::Request { id, request } => {
                                let mesh = mesh.clone();
                                let served = handler(ShardId(peer), request);
                                glommio::spawn_local(async move {
                                    let reply = served.await;
                                    // A peer that went away no longer waits for it.
                                    let _ = mesh
                                        .senders
                                        .send_to(peer, Envelope::Reply { id, reply })
                                        .await;
                                })
                                .detach();
                            }
                            Envelope::Reply { id, reply } => {
                                if let Some(waiter) = mesh.pending.borrow_mut().remove(&id) {
                                    let _ = waiter.send(reply);
                                }
                            }
                        }
                    }
                },
                queue,
            )
            .expect("task queue exists")
            .detach();
        }
    }

    /// Sends `request` to shard `to` (never this shard: local work is a
    /// direct call) and waits for its reply.
    pub async fn call(&self, to: ShardId, request: Req) -> Result<Rep, MeshError> {
        assert_ne!(
            to,
            self.shard(),
            "a shard calls itself directly, not over the mesh"
        );
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (done, reply) = oneshot::channel();
        self.pending.borrow_mut().insert(id, done);
        if self
            .senders
            .send_to(to.0, Envelope::Request { id, request })
            .await
            .is_err()
        {
            self.pending.borrow_mut().remove(&id);
            return Err(MeshError::Disconnected);
        }
        reply.await.map_err(|_| MeshError::Disconnected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement, Shares};

    /// Both shards flood each other with calls at once: with small channels
    /// this deadlocks unless the drain tasks never block on a send.
    #[test]
    fn concurrent_calls_both_ways_do_not_deadlock() {
        let builder = MeshBuilder::full(2, 4);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let builder = builder.clone();
                LocalExecutorBuilder::new(Placement::Unbound)
                    .spawn(move || async move {
                        let queue = glommio::executor().create_task_queue(
                            Shares::Static(1000),
                            glommio::Latency::NotImportant,
                            "mesh",
                        );
                        let handler: Handler<u64, u64> =
                            Rc::new(|_, x| Box::pin(async move { x * 2 }));
                        let mesh = Mesh::join(builder, queue, handler).await;
                        let peer = ShardId(1 - mesh.shard().0);
                        let calls = (0..2000u64).map(|i| {
                            let mesh = mesh.clone();
                            glommio::spawn_local(async move {
                                mesh.call(peer, i).await.unwrap() == i * 2
                            })
                        });
                        let results = futures::future::join_all(calls).await;
                        // Keep serving the peer until it is done too.
                        glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
                        results.into_iter().all(|ok| ok)
                    })
                    .unwrap()
            })
            .collect();
        for handle in handles {
            assert!(handle.join().unwrap());
        }
    }
}
