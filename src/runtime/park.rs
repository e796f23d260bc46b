//! One way to wait: park the current green thread, or the OS thread when the
//! caller is not a green thread.
//!
//! Every blocking primitive in greenhouse (join, sleep, locks, channels,
//! socket readiness) is a loop around [`park_until`]:
//!
//! ```text
//! loop {
//!     if condition() { break }
//!     register current() as a waiter
//!     if condition() { break }          // re-check after registering
//!     park_until(deadline, reason)      // may return spuriously
//! }
//! ```
//!
//! `park_until` has `std::thread::park`'s token semantics: an unpark that
//! arrives before the park makes it return at once, and it may return
//! spuriously, so callers re-check their condition.
//!
//! `park_until` is also the *cancellation point*: when the green thread has
//! been killed, or a `timeout` scope around it has expired, it unwinds (a
//! private panic payload, never printed) instead of returning. Callers must
//! therefore keep their waiter registrations in values whose `Drop` removes
//! them, or tolerate stale registrations.
//!
//! Two situations make a green thread wait by blocking its OS thread instead
//! of switching: code running in a greenlet or generator nested inside the
//! green thread (its stack is not the green thread's own), and code running
//! while the thread unwinds (switching then would let another green thread
//! panic while this one is panicking, which aborts).

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::task::Wake;
use std::time::Instant;

use super::task::{Suspend, Task, WaitReason, PARKED, RUNNING};

thread_local! {
    /// The green thread running on this OS thread, if any.
    static CURRENT: Cell<*const Task> = const { Cell::new(std::ptr::null()) };
    /// `stack::depth()` at which that green thread's own code runs.
    static CURRENT_DEPTH: Cell<usize> = const { Cell::new(0) };
    /// `timeout` scopes of code that is not a green thread.
    static OS_TIMEOUTS: RefCell<Timeouts> = const { RefCell::new(Timeouts::new()) };
}

/// Installed by the worker around each resume of a task.
pub(crate) struct EnterTask {
    prev: *const Task,
    prev_depth: usize,
}

impl EnterTask {
    /// `task` must outlive the returned guard (the worker holds an Arc).
    pub(crate) fn new(task: &Task) -> EnterTask {
        let prev = CURRENT.with(|c| c.replace(task as *const Task));
        // The task's code runs one coroutine deeper than the worker loop.
        let prev_depth = CURRENT_DEPTH.with(|d| d.replace(crate::stack::depth() + 1));
        EnterTask { prev, prev_depth }
    }
}

impl Drop for EnterTask {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
        CURRENT_DEPTH.with(|d| d.set(self.prev_depth));
    }
}

/// The green thread whose code is running on this OS thread, whether or not
/// we are on its own stack.
pub(crate) fn current_task() -> Option<&'static Task> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: CURRENT is non-null only while EnterTask is alive, i.e. while
    // the worker holds an Arc<Task> and resumes the task; code that observes
    // it runs inside that resume. The 'static lifetime is never allowed to
    // escape a call from the running task (callers clone the Arc or copy data).
    unsafe { p.as_ref() }
}

/// The green thread running on this OS thread if we are on its own stack
/// (not a nested greenlet or generator) — the case where parking may switch.
pub(crate) fn current_task_on_own_stack() -> Option<&'static Task> {
    let t = current_task()?;
    if CURRENT_DEPTH.with(|d| d.get()) == crate::stack::depth() {
        Some(t)
    } else {
        None
    }
}

/// The current task as an Arc (for handing out handles).
pub(crate) fn current_task_arc() -> Option<Arc<Task>> {
    let t = current_task()?;
    // SAFETY: `t` points into an Arc<Task> kept alive by the worker while the
    // task runs; bumping the count and rebuilding an Arc from the same
    // pointer yields a new owned reference.
    unsafe {
        let p = t as *const Task;
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// Wakes one parked green thread or OS thread. `Send + Sync + Clone`; can be
/// used from any thread. Implements [`std::task::Wake`], so a `Future` can be
/// polled from a green thread with it.
#[derive(Clone)]
pub(crate) enum Unparker {
    Green(Arc<Task>),
    Os(std::thread::Thread),
}

impl Unparker {
    /// The unparker of whoever is calling: the current green thread, else the
    /// current OS thread.
    pub(crate) fn current() -> Unparker {
        match current_task_arc() {
            Some(t) => Unparker::Green(t),
            None => {
                super::worker::note_foreign_thread();
                Unparker::Os(std::thread::current())
            }
        }
    }

    pub(crate) fn unpark(&self) {
        match self {
            Unparker::Green(t) => t.unpark(),
            Unparker::Os(t) => t.unpark(),
        }
    }

    /// True if both wake the same green thread or OS thread.
    #[allow(dead_code)] // for waiter lists that de-duplicate (sync primitives)
    pub(crate) fn same_as(&self, other: &Unparker) -> bool {
        match (self, other) {
            (Unparker::Green(a), Unparker::Green(b)) => Arc::ptr_eq(a, b),
            (Unparker::Os(a), Unparker::Os(b)) => a.id() == b.id(),
            _ => false,
        }
    }
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.unpark();
    }
}

/// The payload a killed green thread unwinds with. Caught at the green
/// thread's entry; never printed.
pub(crate) struct KillUnwind;

/// The payload a `timeout` scope unwinds its body with; `id` names the scope.
pub(crate) struct TimeoutUnwind {
    pub(crate) id: u64,
}

/// One active `timeout` scope.
#[derive(Clone, Copy)]
pub(crate) struct TimeoutScope {
    pub(crate) id: u64,
    pub(crate) deadline: Instant,
    /// The scope has started unwinding its body; don't fire it again.
    pub(crate) fired: bool,
}

/// The `timeout` scopes active in one green thread or OS thread.
pub(crate) struct Timeouts {
    pub(crate) scopes: Vec<TimeoutScope>,
}

impl Timeouts {
    pub(crate) const fn new() -> Timeouts {
        Timeouts { scopes: Vec::new() }
    }

    fn earliest(&self) -> Option<Instant> {
        self.scopes
            .iter()
            .filter(|s| !s.fired)
            .map(|s| s.deadline)
            .min()
    }

    /// The expired scope that expired first, marked fired.
    fn take_expired(&mut self, now: Instant) -> Option<u64> {
        let s = self
            .scopes
            .iter_mut()
            .filter(|s| !s.fired && s.deadline <= now)
            .min_by_key(|s| s.deadline)?;
        s.fired = true;
        Some(s.id)
    }
}

/// Runs `f` on the timeout scopes of the caller (green thread or OS thread).
pub(crate) fn with_timeouts<R>(f: impl FnOnce(&mut Timeouts) -> R) -> R {
    match current_task() {
        // SAFETY: we are the running task, on its owner thread; the worker
        // does not touch `body` while the task runs, and `f` does not
        // re-enter `with_timeouts` (it only edits the scope list).
        Some(t) => f(unsafe { &mut t.body_mut().timeouts }),
        None => OS_TIMEOUTS.with(|t| f(&mut t.borrow_mut())),
    }
}

fn min_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Unwinds if the caller has been killed or one of its timeout scopes has
/// expired. Never unwinds while already unwinding.
pub(crate) fn check_cancel() {
    if std::thread::panicking() {
        return;
    }
    if let Some(t) = current_task() {
        if t.killed.load(Acquire) {
            std::panic::resume_unwind(Box::new(KillUnwind));
        }
    }
    // Only read the clock when a timeout scope is active: this runs on every
    // switch.
    let expired = with_timeouts(|t| {
        if t.scopes.is_empty() {
            None
        } else {
            t.take_expired(Instant::now())
        }
    });
    if let Some(id) = expired {
        std::panic::resume_unwind(Box::new(TimeoutUnwind { id }));
    }
}

/// Parks the caller until unparked, `deadline` passes, or (spuriously) at any
/// time; unwinds instead of returning when the caller is cancelled.
pub(crate) fn park_until(deadline: Option<Instant>, reason: WaitReason) {
    check_cancel();
    let deadline = min_deadline(
        deadline,
        with_timeouts(|t| {
            if t.scopes.is_empty() {
                None
            } else {
                t.earliest()
            }
        }),
    );
    match current_task_on_own_stack() {
        Some(task) if !std::thread::panicking() => park_green(task, deadline, reason),
        Some(_) | None => park_os(deadline, reason),
    }
    check_cancel();
}

fn park_green(task: &Task, deadline: Option<Instant>, reason: WaitReason) {
    if task.notified.swap(false, SeqCst) {
        return;
    }
    if let Some(d) = deadline {
        if d <= Instant::now() {
            return;
        }
    }
    task.reason.store(reason as u8, Relaxed);
    task.timed.store(deadline.is_some(), Relaxed);
    // SAFETY: the running task on its own stack; the yielder was recorded by
    // the task's entry closure and lives on this coroutine's stack for its
    // whole life.
    let yielder = unsafe { &*task.body_mut().yielder };
    yielder.suspend(Suspend::Park(deadline));
    // Resumed: whoever scheduled us consumed the PARKED state; the token is
    // ours to clear.
    task.notified.store(false, SeqCst);
    task.reason.store(WaitReason::None as u8, Relaxed);
}

/// Waits by blocking the OS thread: for code outside green threads, and for
/// a green thread that may not switch right now (see module docs).
fn park_os(deadline: Option<Instant>, reason: WaitReason) {
    match current_task() {
        None => {
            super::worker::note_foreign_thread();
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if d > now {
                        std::thread::park_timeout(d - now);
                    }
                }
                None => std::thread::park(),
            }
        }
        Some(task) => {
            // Unparking a green thread goes through its token; tell
            // `Task::unpark` to also wake this OS thread.
            task.reason.store(reason as u8, Relaxed);
            task.os_blocked.store(true, SeqCst);
            while !task.notified.swap(false, SeqCst) {
                match deadline {
                    Some(d) => {
                        let now = Instant::now();
                        if d <= now {
                            break;
                        }
                        std::thread::park_timeout(d - now);
                    }
                    None => std::thread::park(),
                }
                if task.killed.load(Acquire) && !std::thread::panicking() {
                    break;
                }
            }
            task.os_blocked.store(false, SeqCst);
            task.reason.store(WaitReason::None as u8, Relaxed);
        }
    }
}

/// Gives the worker to the other ready green threads once; outside a green
/// thread, yields the OS thread. A cancellation point.
pub(crate) fn yield_now() {
    check_cancel();
    match current_task_on_own_stack() {
        Some(task) if !std::thread::panicking() => {
            // SAFETY: as in park_green.
            let yielder = unsafe { &*task.body_mut().yielder };
            yielder.suspend(Suspend::Yield);
        }
        _ => std::thread::yield_now(),
    }
    check_cancel();
}

/// Called by the worker after a task suspended with `Suspend::Park`: publish
/// PARKED, then take it back if an unpark raced with the suspension.
/// Returns true if the task must be rescheduled now.
pub(crate) fn after_suspend_park(task: &Task) -> bool {
    task.state.store(PARKED, SeqCst);
    if task.notified.load(SeqCst)
        && task
            .state
            .compare_exchange(PARKED, RUNNING, SeqCst, SeqCst)
            .is_ok()
    {
        return true;
    }
    false
}
