//! A green thread as the scheduler sees it: its coroutine, its state word and
//! the people waiting for it to finish.
//!
//! # Invariants
//! - `state` moves NEW → RUNNING ⇄ {PARKED → SCHEDULED → RUNNING} → DONE.
//!   Only the owning worker moves a task out of RUNNING; any thread may move it
//!   PARKED → SCHEDULED (that thread then enqueues it, exactly once).
//! - `body` is touched by one thread at a time: whoever holds the task out of a
//!   queue before it starts, then only its owner worker (the worker that first
//!   ran it) — and never by the worker while the task itself runs (the worker
//!   takes the coroutine out of `body` before resuming it).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};

use corosensei::{Coroutine, Yielder};

use super::park::Unparker;
use super::worker::Shared;
use crate::stack::{Stack, StackInfo};

pub(crate) const NEW: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const PARKED: u8 = 2;
pub(crate) const SCHEDULED: u8 = 3;
pub(crate) const DONE: u8 = 4;

/// What a green thread tells its worker when it gives the OS thread back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Suspend {
    /// `yield_now`: run me again after the others that are ready.
    Yield,
    /// Park until unparked; wake me at this deadline at the latest.
    Park(Option<std::time::Instant>),
}

pub(crate) type GreenCoroutine = Coroutine<(), Suspend, (), Stack>;

/// What a green thread is waiting on, for deadlock reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WaitReason {
    /// Not waiting.
    None = 0,
    /// `park()` called directly by user code.
    Park,
    /// `sleep`.
    Sleep,
    /// Joining another green thread.
    Join,
    /// A lock (Mutex, RwLock, Semaphore, ...).
    Lock,
    /// A condition variable, event or barrier.
    Condvar,
    /// A channel or queue.
    Channel,
    /// Socket or file-descriptor readiness.
    Io,
    /// A job on the blocking pool.
    Blocking,
}

impl WaitReason {
    pub(crate) fn from_u8(v: u8) -> WaitReason {
        use WaitReason::*;
        [
            None, Park, Sleep, Join, Lock, Condvar, Channel, Io, Blocking,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(None)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            WaitReason::None => "running or runnable",
            WaitReason::Park => "park()",
            WaitReason::Sleep => "sleep",
            WaitReason::Join => "join of another green thread",
            WaitReason::Lock => "a lock (Mutex, RwLock, Semaphore)",
            WaitReason::Condvar => "a condition (Condvar, Event, Barrier, AsyncResult)",
            WaitReason::Channel => "a channel or queue",
            WaitReason::Io => "socket or file-descriptor readiness",
            WaitReason::Blocking => "a job on the blocking pool",
        }
    }
}

/// Who to wake when a task finishes. The first waiter (almost always the
/// only one: the joiner) is stored inline, so joining allocates nothing.
#[derive(Default)]
pub(crate) struct Waiters {
    first: Option<Unparker>,
    rest: Vec<Unparker>,
}

impl Waiters {
    fn push(&mut self, u: Unparker) {
        if self.first.is_none() {
            self.first = Some(u);
        } else {
            self.rest.push(u);
        }
    }
    fn wake_all(self) {
        if let Some(u) = self.first {
            u.unpark();
        }
        for u in self.rest {
            u.unpark();
        }
    }
}

/// State only the task's own thread touches (see the module invariants).
pub(crate) struct Body {
    pub(crate) co: Option<GreenCoroutine>,
    /// The coroutine's yielder, recorded when it first runs.
    pub(crate) yielder: *const Yielder<(), Suspend>,
    /// `green_local!` values.
    pub(crate) locals: super::local::LocalMap,
    /// Active `timeout` scopes, innermost last.
    pub(crate) timeouts: super::park::Timeouts,
    /// This green thread's greenlets (its own implicit main greenlet, the
    /// current one); swapped into the OS thread while it runs.
    pub(crate) greenlets: crate::greenlet::ThreadState,
}

pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stack_info: StackInfo,
    pub(crate) state: AtomicU8,
    /// The park token: set by unpark, consumed by park (std::thread::park's).
    pub(crate) notified: AtomicBool,
    pub(crate) killed: AtomicBool,
    /// The task is waiting by blocking its OS thread (see park.rs) instead of
    /// suspending; unpark must wake the OS thread.
    pub(crate) os_blocked: AtomicBool,
    /// Worker that first ran this task (usize::MAX before that).
    pub(crate) owner: AtomicUsize,
    /// Incremented on every park; a timer only wakes the park it was set for.
    pub(crate) park_gen: AtomicU64,
    /// The current park has a deadline (counts as wakeable for deadlock checks).
    pub(crate) timed: AtomicBool,
    pub(crate) reason: AtomicU8,
    pub(crate) done: AtomicBool,
    /// Unparked when the task finishes.
    pub(crate) waiters: Mutex<Waiters>,
    pub(crate) body: UnsafeCell<Body>,
}

// SAFETY: every field but `body` is Send + Sync. `body` (the coroutine, its
// green-locals and timeouts, which may hold !Send values once the task has
// started) is only ever accessed from one thread at a time: the thread that
// holds the task out of a queue before it starts (the coroutine then holds
// only the `Send` closure), afterwards only its owner worker thread (module
// invariants; asserted in debug builds by `body_mut`).
unsafe impl Send for Task {}
// SAFETY: as for Send: shared access from other threads only touches the
// atomic and Mutex fields, never `body`.
unsafe impl Sync for Task {}

impl Task {
    /// The display name used in reports: the given name or `green-<id>`.
    pub(crate) fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("green-{}", self.id),
        }
    }

    /// # Safety
    /// The caller is the one thread allowed to touch `body` now (module
    /// invariants) and holds no other reference into it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn body_mut(&self) -> &mut Body {
        &mut *self.body.get()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Acquire)
    }

    /// Wakes the task if it is parked; otherwise leaves a token so its next
    /// park returns at once. Callable from any thread.
    pub(crate) fn unpark(self: &Arc<Self>) {
        self.notified.store(true, SeqCst);
        if self
            .state
            .compare_exchange(PARKED, SCHEDULED, SeqCst, SeqCst)
            .is_ok()
        {
            self.shared.note_unparked(self);
            super::worker::schedule(self.clone());
        } else if self.os_blocked.load(SeqCst) {
            self.shared.unpark_os_thread(self.owner.load(Acquire));
        }
    }

    /// Asks the task to unwind at its current or next blocking point.
    pub(crate) fn kill(self: &Arc<Self>) {
        if self.is_done() {
            return;
        }
        self.killed.store(true, SeqCst);
        self.unpark();
    }

    /// Registers `u` to be unparked when the task finishes. Returns false
    /// (and registers nothing) if it already has.
    pub(crate) fn add_waiter(&self, u: Unparker) -> bool {
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_done() {
            return false;
        }
        w.push(u);
        true
    }

    /// Marks the task finished and wakes everyone waiting for it.
    pub(crate) fn finish(&self) {
        let waiters = {
            let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            self.done.store(true, Release);
            self.state.store(DONE, Release);
            std::mem::take(&mut *w)
        };
        waiters.wake_all();
    }
}
