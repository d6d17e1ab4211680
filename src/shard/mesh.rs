//! Typed calls between shards over glommio's bounded channel mesh.
//!
//! One per shard. A call is a value of a type that implements
//! [`ShardCall`]: it names its reply type and says how the target shard
//! serves it. The envelope that crosses the mesh carries the call together
//! with the one-shot sender of its reply, erased behind a trait object, so a
//! reply can only ever reach the caller that waits for that type: a
//! mismatched reply does not compile, and no caller matches on replies it
//! cannot get.
//!
//! Every shard runs one drain task per peer that only receives: each call is
//! handed to a freshly spawned task, which waits for the shard's host (the
//! state calls are served on), serves the call and completes its reply
//! sender, which wakes the caller's task on its own shard. The drain tasks
//! never await a send, and replies never travel through the mesh at all, so
//! two shards calling each other cannot deadlock on full channels (GLOMMIO.md
//! trap 4, DataDog/glommio#555); a full channel only slows the caller down,
//! which is the backpressure we want. The mesh's channel depth bounds the
//! calls queued between any two shards.
//!
//! The mesh counts, per shard, the calls it sent and received and how long
//! received calls waited between their send and the start of their serving
//! task on this shard ([`MeshCounters`]): the queueing a cross-core hop adds
//! on top of the work itself. One `Instant` per call, no allocation.

use std::cell::Cell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::TaskQueueHandle;

use super::ShardId;

/// A request one shard makes of another, served on the target shard's
/// `Host` (its per-shard state). The type names its reply, so a call and its
/// answer cannot be mismatched.
pub trait ShardCall<Host: 'static>: Send + Sized + 'static {
    type Reply: Send + 'static;

    /// Serves the call on the shard that received it.
    fn serve(self, host: Rc<Host>) -> LocalBoxFuture<'static, Self::Reply>;

    /// The reply a caller gets when the target shard cannot be reached (it is
    /// stopping). The one place each kind of call decides what that means.
    fn unreachable(error: MeshError) -> Self::Reply;
}

/// What crosses the mesh: one call, sealed with the sender of its reply,
/// and when it was sent (for the receiver's [`MeshCounters::delay_us`]).
pub struct Envelope<Host: 'static> {
    delivery: Box<dyn Delivery<Host>>,
    sent_at: Instant,
}

/// One shard's cross-shard traffic. One per shard, shared by the shard's
/// [`Mesh`] (sends) and its drain tasks (receives); plain cells, never
/// crossing threads.
#[derive(Default)]
pub struct MeshCounters {
    /// Calls this shard sent to other shards.
    sent: Cell<u64>,
    /// Calls other shards sent to this one, counted when their serving task
    /// starts.
    received: Cell<u64>,
    /// Over received calls: microseconds from the caller's send to the start
    /// of the serving task here (channel queueing plus this shard's
    /// scheduling delay).
    delay_us: Cell<u64>,
    /// The longest such delay, in microseconds.
    delay_max_us: Cell<u64>,
}

impl MeshCounters {
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

    pub fn received(&self) -> u64 {
        self.received.get()
    }

    pub fn delay_us(&self) -> u64 {
        self.delay_us.get()
    }

    pub fn delay_max_us(&self) -> u64 {
        self.delay_max_us.get()
    }

    fn note_received(&self, delay: Duration) {
        let us = delay.as_micros().min(u128::from(u64::MAX)) as u64;
        self.received.set(self.received.get() + 1);
        self.delay_us.set(self.delay_us.get().saturating_add(us));
        self.delay_max_us.set(self.delay_max_us.get().max(us));
    }
}

/// A call with its reply sender, its types erased so that every kind of call
/// travels through the same channels.
trait Delivery<Host>: Send {
    fn serve(self: Box<Self>, host: Rc<Host>) -> LocalBoxFuture<'static, ()>;
}

struct Sealed<C: ShardCall<Host>, Host: 'static> {
    call: C,
    reply: oneshot::Sender<C::Reply>,
    /// The host is only named, never held: the envelope stays `Send`.
    host: PhantomData<fn(Rc<Host>)>,
}

impl<C: ShardCall<Host>, Host: 'static> Delivery<Host> for Sealed<C, Host> {
    fn serve(self: Box<Self>, host: Rc<Host>) -> LocalBoxFuture<'static, ()> {
        let Sealed { call, reply, .. } = *self;
        Box::pin(async move {
            let answer = call.serve(host).await;
            // A caller that went away no longer waits for it.
            let _ = reply.send(answer);
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// The peer is gone (shutting down) or the channel closed.
    #[error("the target shard is not reachable")]
    Disconnected,
}

/// Gives the shard's host once it exists, or `None` when the shard stops
/// before it does: peers may call while this shard is still starting.
pub type HostReady<Host> = Rc<dyn Fn() -> LocalBoxFuture<'static, Option<Rc<Host>>>>;

pub type Builder<Host> = MeshBuilder<Envelope<Host>, Full>;

pub struct Mesh<Host: 'static> {
    senders: Senders<Envelope<Host>>,
    counters: Rc<MeshCounters>,
}

impl<Host: 'static> Mesh<Host> {
    /// Joins the mesh (every shard must call this with the same builder) and
    /// starts the drain tasks in `queue`; calls from peers are served on the
    /// host that `host` gives.
    pub async fn join(
        builder: Builder<Host>,
        queue: TaskQueueHandle,
        host: HostReady<Host>,
    ) -> Rc<Mesh<Host>> {
        let (senders, receivers) = builder.join().await.expect("mesh joins");
        let counters = Rc::new(MeshCounters::default());
        start_drains(receivers, queue, host, counters.clone());
        Rc::new(Mesh { senders, counters })
    }

    /// This shard's cross-shard traffic so far.
    pub fn counters(&self) -> &MeshCounters {
        &self.counters
    }

    pub fn shard(&self) -> ShardId {
        ShardId(self.senders.peer_id())
    }

    pub fn shard_count(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Sends `call` to shard `to` (never this shard: local work is a direct
    /// call) and waits for its reply.
    pub async fn call<C: ShardCall<Host>>(
        &self,
        to: ShardId,
        call: C,
    ) -> Result<C::Reply, MeshError> {
        assert_ne!(
            to,
            self.shard(),
            "a shard calls itself directly, not over the mesh"
        );
        let (reply, answer) = oneshot::channel();
        let sealed = Sealed {
            call,
            reply,
            host: PhantomData,
        };
        let envelope = Envelope {
            delivery: Box::new(sealed),
            sent_at: Instant::now(),
        };
        self.counters.sent.set(self.counters.sent.get() + 1);
        self.senders
            .send_to(to.0, envelope)
            .await
            .map_err(|_| MeshError::Disconnected)?;
        answer.await.map_err(|_| MeshError::Disconnected)
    }
}

/// One task per peer that only receives and spawns: it never awaits anything
/// but its receiver.
fn start_drains<Host: 'static>(
    mut receivers: Receivers<Envelope<Host>>,
    queue: TaskQueueHandle,
    host: HostReady<Host>,
    counters: Rc<MeshCounters>,
) {
    for (_, receiver) in receivers.streams() {
        let host = host.clone();
        let counters = counters.clone();
        glommio::spawn_local_into(
            async move {
                while let Some(Envelope { delivery, sent_at }) = receiver.recv().await {
                    let ready = host();
                    let counters = counters.clone();
                    glommio::spawn_local(async move {
                        counters.note_received(sent_at.elapsed());
                        // No host (the shard stops before it served): the
                        // reply sender drops and the caller sees
                        // `MeshError::Disconnected`.
                        if let Some(host) = ready.await {
                            delivery.serve(host).await;
                        }
                    })
                    .detach();
                }
            },
            queue,
        )
        .expect("task queue exists")
        .detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement, Shares};
    use std::time::Duration;

    /// A shard's state in these tests: its name.
    struct Named(String);

    /// Doubles a number on the target shard.
    struct Double(u64);

    impl ShardCall<Named> for Double {
        type Reply = u64;
        fn serve(self, _: Rc<Named>) -> LocalBoxFuture<'static, u64> {
            Box::pin(async move { self.0 * 2 })
        }
        fn unreachable(_: MeshError) -> u64 {
            u64::MAX
        }
    }

    /// Asks the target shard for its host's name: the reply is of another
    /// type than `Double`'s and travels the same channels.
    struct Name;

    impl ShardCall<Named> for Name {
        type Reply = Result<String, MeshError>;
        fn serve(self, host: Rc<Named>) -> LocalBoxFuture<'static, Self::Reply> {
            Box::pin(async move { Ok(host.0.clone()) })
        }
        fn unreachable(e: MeshError) -> Self::Reply {
            Err(e)
        }
    }

    /// Runs `body` on two shards joined in one mesh of depth `depth`, each
    /// shard's host named after its index; fails after 30 s.
    fn on_two_shards<F, Fut>(depth: usize, body: F) -> Vec<bool>
    where
        F: Fn(Rc<Mesh<Named>>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = bool> + 'static,
    {
        let builder: Builder<Named> = MeshBuilder::full(2, depth);
        let (done, results) = std::sync::mpsc::channel();
        // The executors' handles are dropped, not joined: a shard that hangs
        // must fail the test at the deadline below, not block it.
        for _ in 0..2 {
            let (builder, body, done) = (builder.clone(), body.clone(), done.clone());
            LocalExecutorBuilder::new(Placement::Unbound)
                .spawn(move || async move {
                    let queue = glommio::executor().create_task_queue(
                        Shares::Static(1000),
                        glommio::Latency::NotImportant,
                        "mesh",
                    );
                    let me: Rc<std::cell::OnceCell<Rc<Named>>> = Rc::default();
                    let slot = me.clone();
                    let host: HostReady<Named> = Rc::new(move || {
                        let slot = slot.clone();
                        Box::pin(async move {
                            loop {
                                if let Some(host) = slot.get() {
                                    return Some(host.clone());
                                }
                                glommio::timer::sleep(Duration::from_millis(1)).await;
                            }
                        })
                    });
                    let mesh = Mesh::join(builder, queue, host).await;
                    let _ = me.set(Rc::new(Named(format!("shard {}", mesh.shard()))));
                    let ok = body(mesh).await;
                    // Keep serving the peer until it is done too.
                    glommio::timer::sleep(Duration::from_millis(200)).await;
                    let _ = done.send(ok);
                })
                .unwrap();
        }
        (0..2)
            .map(|_| {
                results
                    .recv_timeout(Duration::from_secs(30))
                    .expect("both shards finish within 30 s")
            })
            .collect()
    }

    /// A call served on the other shard comes back with its own reply type.
    #[test]
    fn a_call_returns_the_typed_reply_of_the_shard_that_served_it() {
        let results = on_two_shards(4, |mesh| async move {
            let peer = ShardId(1 - mesh.shard().0);
            let name = mesh.call(peer, Name).await.unwrap();
            let doubled = mesh.call(peer, Double(21)).await.unwrap();
            name.is_ok_and(|n| n == format!("shard {peer}"))
                && doubled == 42
                && mesh.counters().sent() == 2
        });
        assert_eq!(results, vec![true, true]);
    }

    /// Both shards flood each other with calls at once: with small channels
    /// this deadlocks unless the drain tasks never block on a send.
    #[test]
    fn concurrent_calls_both_ways_do_not_deadlock() {
        let results = on_two_shards(4, |mesh| async move {
            let peer = ShardId(1 - mesh.shard().0);
            let calls = (0..2000u64).map(|i| {
                let mesh = mesh.clone();
                glommio::spawn_local(
                    async move { mesh.call(peer, Double(i)).await.unwrap() == i * 2 },
                )
            });
            futures::future::join_all(calls)
                .await
                .into_iter()
                .all(|ok| ok)
        });
        assert_eq!(results, vec![true, true]);
    }
}
