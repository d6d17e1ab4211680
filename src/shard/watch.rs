//! The supervisor's view of the shards: which phase of its life each shard
//! is in (for the one log line that names a stuck shard), whether it has
//! started and finished, and the nudge that keeps a shard's reactor from
//! sleeping unbounded.
//!
//! One [`Watch`] per process, shared (`Arc`) by the supervising main thread
//! and every shard; each shard writes only its own [`ShardWatch`].
//!
//! # Why shards are nudged
//!
//! glommio 0.9's executor loop can park its reactor while tasks are runnable.
//! `run_task_queues` checks `need_preempt()` (an unconsumed completion on the
//! latency ring) before it runs anything and then returns `false`, which the
//! loop reads as "nothing to run": it polls the rings once (consuming that
//! completion, which wakes no task) and parks in `io_uring_enter` with the
//! runnable tasks still queued. The reactor only arms a timeout for the
//! nearest registered timer, and a task whose timer has fired is runnable,
//! not registered: when every timer-owning task of the shard is among the
//! stranded ones (a shard descheduled for a few milliseconds fires them all at
//! once, which CPU contention makes common), nothing is armed and the shard
//! sleeps until some outside event. A latency-ring completion appears there
//! whenever the preempt timer expires or another thread writes the reactor's
//! eventfd between the loop's I/O poll and its first `need_preempt()` check,
//! so under load this happened in about 1 start of 70 (seen as a shard parked
//! in `io_cqring_wait` for minutes until a debugger attached). The same
//! stranding while serving only delays the shard until its next timer or
//! socket event; at start-up there may be none. (glommio upstream fixed this
//! after 0.9 by telling "preempted before running" from "nothing to run".)
//!
//! A task of the shard's own cannot guard against this (it may be stranded
//! too), so the supervisor thread wakes a shard task from outside every
//! [`limits::SHARD_PARK_MS_MAX`]: a foreign wake goes through the reactor's
//! eventfd, which wakes a sleeping reactor, and the loop then runs whatever
//! is queued. Before the shard has run its first task there is no task to
//! wake (the very first turn can strand the shard's main future: seen once in
//! 272 restarts), and a shard that does not answer two nudges may be parked
//! past the reach of a foreign wake; both get a signal
//! ([`ShardWatch::INTERRUPT`], an empty handler) on the shard's thread, which
//! ends its `io_uring_enter` wait with EINTR. A parked reactor therefore
//! sleeps at most about that long, and a shard makes progress on its own,
//! whatever the outside does. A healthy shard answers every nudge and never
//! sees the signal.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::limits;

/// The whole process: one entry per shard.
pub struct Watch {
    shards: Vec<Arc<ShardWatch>>,
}

/// One shard, as its supervisor sees it.
pub struct ShardWatch {
    index: usize,
    /// What the shard is doing and since when.
    phase: Mutex<(&'static str, Instant)>,
    /// Set once the shard serves (or gave up starting).
    started: AtomicBool,
    /// Set when the shard's life (`run_shard`) returned, with or without error.
    returned: AtomicBool,
    /// Set when the shard's thread ends, however it ends.
    finished: AtomicBool,
    /// The waker of the shard's keep-awake task.
    waker: Mutex<Option<Waker>>,
    /// Nudges sent since the keep-awake task last ran.
    nudges_pending: AtomicUsize,
    /// The shard's thread, for [`ShardWatch::INTERRUPT`].
    thread: OnceLock<nix::sys::pthread::Pthread>,
}

impl Watch {
    pub fn new(shards: usize) -> Watch {
        Watch {
            shards: (0..shards)
                .map(|index| {
                    Arc::new(ShardWatch {
                        index,
                        phase: Mutex::new(("starting its executor", Instant::now())),
                        started: AtomicBool::new(false),
                        returned: AtomicBool::new(false),
                        finished: AtomicBool::new(false),
                        waker: Mutex::new(None),
                        nudges_pending: AtomicUsize::new(0),
                        thread: OnceLock::new(),
                    })
                })
                .collect(),
        }
    }

    pub fn shard(&self, index: usize) -> Arc<ShardWatch> {
        self.shards[index].clone()
    }

    pub fn shards(&self) -> &[Arc<ShardWatch>] {
        &self.shards
    }

    /// Shards that serve (or gave up starting).
    pub fn started(&self) -> usize {
        self.shards.iter().filter(|s| s.is_started()).count()
    }

    pub fn all_finished(&self) -> bool {
        self.shards.iter().all(|s| s.is_finished())
    }

    /// Wakes every shard's reactor (see the module doc).
    pub fn nudge_all(&self) {
        for shard in &self.shards {
            shard.nudge();
        }
    }

    /// "shard 1 (opening partitions for 312 ms), ..." for the shards `which` selects.
    pub fn describe(&self, which: impl Fn(&ShardWatch) -> bool) -> String {
        self.shards
            .iter()
            .filter(|s| which(s))
            .map(|s| {
                let (phase, for_how_long) = s.phase();
                format!(
                    "shard {} ({phase} for {} ms)",
                    s.index,
                    for_how_long.as_millis()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl ShardWatch {
    /// The signal that interrupts a parked shard (its handler does nothing;
    /// `server::run` installs it without SA_RESTART).
    pub const INTERRUPT: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGURG;

    /// Unanswered nudges after which the shard is also interrupted.
    const NUDGES_BEFORE_INTERRUPT: usize = 2;

    pub fn index(&self) -> usize {
        self.index
    }

    /// Records that the shard entered `phase` (a short lowercase phrase).
    pub fn enter(&self, phase: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = (phase, Instant::now());
        log::debug!("shard {}: {phase}", self.index);
    }

    /// The current phase and how long the shard has been in it.
    pub fn phase(&self) -> (&'static str, Duration) {
        let (phase, since) = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
        (phase, since.elapsed())
    }

    pub fn set_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn set_returned(&self) {
        self.returned.store(true, Ordering::SeqCst);
    }

    pub fn has_returned(&self) -> bool {
        self.returned.load(Ordering::SeqCst)
    }

    pub fn set_finished(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Wakes the shard's keep-awake task from the supervisor's thread.
    ///
    /// Each foreign wake holds a reference to the task until the shard
    /// processes it, and glommio counts those references in an `i16`: a
    /// shard stuck in a system call must not collect them without bound, so
    /// nudges stop after [`limits::SHARD_NUDGES_PENDING_MAX`] unanswered
    /// ones (a reactor that is merely parked answers the first).
    pub fn nudge(&self) {
        if self.is_finished() {
            return;
        }
        let pending = self.nudges_pending.load(Ordering::Acquire);
        let registered = {
            let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(waker) = waker.as_ref() {
                if pending < limits::SHARD_NUDGES_PENDING_MAX {
                    self.nudges_pending.fetch_add(1, Ordering::AcqRel);
                    waker.wake_by_ref();
                }
            }
            waker.is_some()
        };
        if !registered || pending >= Self::NUDGES_BEFORE_INTERRUPT {
            self.interrupt();
        }
    }

    /// Records the shard's thread (called on it, before its executor exists).
    pub fn set_thread(&self, thread: nix::sys::pthread::Pthread) {
        let _ = self.thread.set(thread);
    }

    /// Signals the shard's thread: a parked reactor wakes with EINTR.
    fn interrupt(&self) {
        if let Some(thread) = self.thread.get() {
            // The thread is not joined before it is finished, and a finished
            // shard is not interrupted, so the handle is still valid; ESRCH
            // for a thread that has just ended is harmless.
            let _ = nix::sys::pthread::pthread_kill(*thread, Self::INTERRUPT);
        }
    }

    /// The shard's side of the nudge: a task that only keeps its waker where
    /// the supervisor finds it. Runs until the shard's executor ends; on the
    /// way out the waker is dropped so no nudge reaches a finished executor.
    pub async fn keep_awake(self: Arc<Self>) {
        struct Forget<'a>(&'a ShardWatch);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                *self.0.waker.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
        let _forget = Forget(&self);
        futures::future::poll_fn(|cx| {
            let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
            self.nudges_pending.store(0, Ordering::Release);
            Poll::<()>::Pending
        })
        .await
    }
}
