//! The supervisor's view of the shards: which phase of its life each shard
//! is in (for the one log line that names a stuck shard), whether it has
//! started and finished, and the nudge that keeps a shard's reactor from
//! sleeping unbounded.
//!
//! One [`Watch`] per process, shared (`Arc`) by the supervising main thread
//! and every shard; each shard writes only its own [`ShardWatch`].
//!
//! # The stall watchdog
//!
//! glommio 0.9 could park a reactor with runnable tasks still queued (a
//! turn that noticed a preemption before running anything reported "nothing
//! to run"); when those tasks owned every timer the shard slept until an
//! outside event, seen as a broker that never finished starting, about one
//! start in 70 under CPU contention. The cause is fixed in the executor
//! itself (`vendor/glommio/PATCHES.md`, regression test in
//! `tests/startup.rs`): shards make progress on their own.
//!
//! The supervisor still watches, so that any other stall is visible and
//! bounded instead of silent: every shard runs a heartbeat task that records
//! the time every [`limits::SHARD_HEARTBEAT_MS`]. A shard whose heartbeat is
//! older than [`limits::SHARD_STALL_MS`] (or whose executor never ran its
//! first task) is logged once per stall, with its phase, and woken: first
//! by a foreign wake of its keep-awake task (through the reactor's eventfd),
//! then, if it does not answer two of them, by a signal
//! ([`ShardWatch::INTERRUPT`], an empty handler) on its thread, which ends
//! an `io_uring_enter` wait with EINTR. A shard busy in a long synchronous
//! stretch shows up the same way, which is what an operator wants to know.
//! A healthy shard never sees either.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Milliseconds after the watch's epoch at the shard's last heartbeat
    /// (0: none yet).
    heartbeat_ms: AtomicU64,
    /// Set while a stall of this shard is being reported (logged once).
    stalled: AtomicBool,
    /// The process's reference instant for heartbeats.
    epoch: Instant,
    /// The shard's thread, for [`ShardWatch::INTERRUPT`].
    thread: OnceLock<nix::sys::pthread::Pthread>,
}

impl Watch {
    pub fn new(shards: usize) -> Watch {
        let epoch = Instant::now();
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
                        heartbeat_ms: AtomicU64::new(0),
                        stalled: AtomicBool::new(false),
                        epoch,
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

    /// The watchdog's round (see the module doc): reports and wakes every
    /// shard whose heartbeat is older than [`limits::SHARD_STALL_MS`], and
    /// reports the end of a stall.
    pub fn check_stalls(&self) {
        let stall = Duration::from_millis(limits::SHARD_STALL_MS);
        for shard in &self.shards {
            if shard.is_finished() {
                continue;
            }
            let silent = shard.silent_for();
            if silent < stall {
                if shard.stalled.swap(false, Ordering::AcqRel) {
                    log::warn!("shard {} runs again", shard.index);
                }
                continue;
            }
            if !shard.stalled.swap(true, Ordering::AcqRel) {
                let (phase, _) = shard.phase();
                log::warn!(
                    "shard {} has not run for {} ms ({phase}); waking it",
                    shard.index,
                    silent.as_millis()
                );
            }
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

    /// How long since the shard's last heartbeat (since the watch began,
    /// if its executor has not run one yet).
    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.heartbeat_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// The shard's heartbeat: records the time every
    /// [`limits::SHARD_HEARTBEAT_MS`] until the shard's executor ends.
    pub async fn heartbeat(self: Arc<Self>) {
        loop {
            let now = self.epoch.elapsed().as_millis().max(1) as u64;
            self.heartbeat_ms.store(now, Ordering::Release);
            glommio::timer::sleep(Duration::from_millis(limits::SHARD_HEARTBEAT_MS)).await;
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
