//! Green threads, shaped like `std::thread`.
//!
//! [`spawn`], [`Builder`], [`JoinHandle`], [`sleep`], [`yield_now`],
//! [`current`], [`park`] mirror their std namesakes, so moving code from OS
//! threads to green threads is a change of `use` lines. What only gevent has
//! keeps gevent's shape: [`JoinHandle::kill`], [`join_all`], [`wait`],
//! [`as_completed`], [`spawn_later`], [`green_local!`](crate::green_local).
//!
//! Every blocking call here parks the calling green thread (its worker runs
//! other green threads meanwhile) and, called from a plain OS thread, blocks
//! that thread like std does.
//!
//! # Example
//!
//! ```
//! use greenhouse::thread;
//! use std::time::{Duration, Instant};
//!
//! greenhouse::run(|| {
//!     let start = Instant::now();
//!     let handles: Vec<_> = (0..100)
//!         .map(|i| thread::spawn(move || { thread::sleep(Duration::from_millis(50)); i }))
//!         .collect();
//!     let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//!     assert_eq!(sum, 4950);
//!     // 100 sleeps of 50 ms overlap: far less than 5 s.
//!     assert!(start.elapsed() < Duration::from_secs(3));
//! });
//! ```

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, Yielder};

use crate::runtime::park::{
    self, current_task, current_waiter_id, park_until, KillUnwind, TimeoutUnwind, Unparker,
};
use crate::runtime::task::{GreenBody, GreenCoroutine, Suspend, TaskRef, WaitReason};
use crate::runtime::worker::{next_task_id, Shared};
use crate::runtime::Handle;
use crate::stack::Stack;

/// Spawns a new green thread in the current runtime, returning a
/// [`JoinHandle`] for it.
///
/// The green thread starts on whichever worker picks it up first and stays on
/// that worker from then on.
///
/// # Panics
/// Outside a green thread (there is no runtime to spawn into: use
/// [`crate::run`], [`crate::runtime::Handle::spawn`] or [`Builder::spawn`],
/// which returns an error instead), or if the kernel refuses a new stack (see
/// [`crate::stack`]).
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let h = greenhouse::thread::spawn(|| 40 + 2);
///     assert_eq!(h.join().unwrap(), 42);
/// });
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .expect("failed to spawn green thread")
}

/// Spawns `f` after `delay` (gevent's `spawn_later`). The green thread exists
/// from now on — it can be joined or killed during the delay — and starts
/// running `f` when the delay has passed.
///
/// # Panics
/// As [`spawn`].
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// greenhouse::run(|| {
///     let start = Instant::now();
///     let h = greenhouse::thread::spawn_later(Duration::from_millis(30), || "late");
///     assert_eq!(h.join().unwrap(), "late");
///     assert!(start.elapsed() >= Duration::from_millis(30));
/// });
/// ```
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn(move || {
        sleep(delay);
        f()
    })
}

/// Settings for a new green thread: name and stack size (std's
/// `thread::Builder`).
///
/// # Example
///
/// ```
/// use greenhouse::thread::Builder;
/// greenhouse::run(|| {
///     let h = Builder::new().name("worker-1".into()).stack_size(64 * 1024)
///         .spawn(|| greenhouse::thread::current().name().unwrap().to_string())
///         .unwrap();
///     assert_eq!(h.join().unwrap(), "worker-1");
/// });
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// Default settings: no name, the runtime's stack size.
    ///
    /// # Example
    ///
    /// ```
    /// let b = greenhouse::thread::Builder::new();
    /// # let _ = b;
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the green thread; the name appears in panic messages, stack
    /// overflow, stuck-worker and deadlock reports.
    ///
    /// # Example
    ///
    /// ```
    /// let b = greenhouse::thread::Builder::new().name("fetcher".into());
    /// # let _ = b;
    /// ```
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Stack size in bytes (rounded up to whole pages, at least
    /// [`crate::stack::MIN_STACK_SIZE`]).
    ///
    /// # Example
    ///
    /// ```
    /// let b = greenhouse::thread::Builder::new().stack_size(1 << 20);
    /// # let _ = b;
    /// ```
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Spawns into the current runtime.
    ///
    /// # Errors
    /// `Other` outside a green thread (no runtime to spawn into);
    /// `OutOfMemory` when the kernel refuses a stack (the message names the
    /// limit and how to raise it).
    ///
    /// # Example
    ///
    /// ```
    /// // Outside a runtime there is nothing to spawn into:
    /// let err = greenhouse::thread::Builder::new().spawn(|| ()).unwrap_err();
    /// assert!(err.to_string().contains("outside"));
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(task) = current_task() else {
            return Err(io::Error::other(
                "greenhouse: spawn called outside a green thread; start a runtime with \
                 greenhouse::run, or spawn through a runtime::Handle",
            ));
        };
        spawn_in(&task.shared, self.name, self.stack_size, f)
    }

    /// Spawns into the runtime of `handle`, from any thread.
    ///
    /// # Errors
    /// `Other` if that runtime has shut down; `OutOfMemory` as for
    /// [`spawn`](Builder::spawn).
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::new().unwrap();
    /// let h = greenhouse::thread::Builder::new().spawn_on(&rt.handle(), || 1).unwrap();
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn spawn_on<F, T>(self, handle: &Handle, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if current_task().is_none() {
            crate::runtime::worker::note_foreign_thread();
        }
        spawn_in(&handle.shared, self.name, self.stack_size, f)
    }
}

/// Where a green thread's result lands: written by the green thread before
/// it finishes, taken by its `JoinHandle` after.
type ResultSlot<T> = UnsafeCell<Option<Result<T, JoinError>>>;

/// The typed part of a green thread: its closure until it starts, then its
/// result (see `runtime::task`).
struct Body<F, T> {
    closure: UnsafeCell<Option<F>>,
    result: ResultSlot<T>,
}

impl<F, T> GreenBody for Body<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unsafe fn start(&self, stack: Stack) -> GreenCoroutine {
        let f = (*self.closure.get())
            .take()
            .expect("a green thread starts once");
        let result: *const ResultSlot<T> = &self.result;
        Coroutine::with_stack(stack, move |y: &Yielder<(), Suspend>, ()| {
            let me = current_task().expect("a green thread runs inside its worker");
            // SAFETY: we are the running task on its owner thread; the worker
            // does not touch `local` while the task runs.
            unsafe { me.local_mut().yielder = y as *const _ };
            let r = catch_unwind(AssertUnwindSafe(f));
            // green_local! values are dropped here, inside the green thread,
            // so their destructors may block.
            // SAFETY: as above.
            if let Some(locals) = unsafe { me.local_mut().locals.take() } {
                let _ = catch_unwind(AssertUnwindSafe(move || drop(locals)));
            }
            // Likewise its greenlets: suspended ones unwind here.
            if !crate::greenlet::thread_state_is_empty() {
                let greenlets = crate::greenlet::swap_thread_state(Default::default());
                let _ = catch_unwind(AssertUnwindSafe(move || drop(greenlets)));
            }
            // SAFETY: the slot lives in the task, which the worker keeps
            // alive while it runs; nobody reads it before the task finishes.
            unsafe { *(*result).get() = Some(r.map_err(JoinError::from_payload)) };
        })
    }

    unsafe fn discard(&self) {
        drop((*self.closure.get()).take());
    }
}

pub(crate) fn spawn_in<F, T>(
    shared: &Arc<Shared>,
    name: Option<String>,
    stack_size: Option<usize>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if shared.stop.load(SeqCst) {
        return Err(io::Error::other("greenhouse: the runtime has shut down"));
    }
    let stack = crate::stack::take(stack_size.unwrap_or(shared.config.stack_size))?;
    let body = Body {
        closure: UnsafeCell::new(Some(f)),
        result: UnsafeCell::new(None),
    };
    let (task, queued, body) = TaskRef::new(
        next_task_id(),
        name.map(String::into_boxed_str),
        shared.clone(),
        stack,
        body,
    );
    // SAFETY: `body` points into the task, alive here.
    let result: *const ResultSlot<T> = unsafe { &(*body).result };
    shared.submit(queued);
    Ok(JoinHandle {
        thread: Thread {
            inner: ThreadInner::Green(task),
        },
        result,
    })
}

/// An owned permission to join a green thread (wait for it to finish and take
/// its result), and to kill it.
///
/// Dropping a `JoinHandle` detaches the green thread: it keeps running.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let h = greenhouse::thread::spawn(|| vec![1, 2, 3]);
///     assert!(h.id().as_u64() > 0);
///     assert_eq!(h.join().unwrap(), vec![1, 2, 3]);
/// });
/// ```
pub struct JoinHandle<T> {
    thread: Thread,
    /// The green thread's result slot, inside the task `thread` keeps alive.
    result: *const ResultSlot<T>,
}

// SAFETY: the handle owns a reference to the task (Send + Sync) and a pointer
// to the result slot inside it, which only `take_result` (consuming the
// handle) dereferences; T is Send for every green thread (spawn requires it),
// so moving the handle moves at most a T between threads, and sharing it
// (&JoinHandle) gives no access to the T at all.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: see Send.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn task(&self) -> &TaskRef {
        match &self.thread.inner {
            ThreadInner::Green(t) => t,
            ThreadInner::Os { .. } => unreachable!("a JoinHandle always names a green thread"),
        }
    }

    /// Waits for the green thread to finish and returns its result: its value,
    /// or how it ended (a panic with its payload, or a kill).
    ///
    /// # Errors
    /// A [`JoinError`] when the green thread panicked, was killed, or was
    /// ended by an uncaught [`crate::time::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| -> u8 { panic!("boom") });
    ///     let err = h.join().unwrap_err();
    ///     assert!(err.is_panic());
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        wait_done(self.task(), None, WaitReason::Join);
        self.take_result()
    }

    /// Waits at most `timeout` for the green thread to finish. Returns its
    /// result as [`join`](JoinHandle::join) does, or gives the handle back
    /// (`Err(self)`) if it is still running.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| greenhouse::thread::sleep(Duration::from_secs(5)));
    ///     let h = h.join_timeout(Duration::from_millis(10)).unwrap_err();
    ///     h.kill();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        let deadline = Instant::now().checked_add(timeout);
        if wait_done(self.task(), deadline, WaitReason::Join) {
            Ok(self.take_result())
        } else {
            Err(self)
        }
    }

    /// Takes the result of the finished green thread.
    fn take_result(self) -> Result<T, JoinError> {
        debug_assert!(self.task().is_done());
        // SAFETY: `result` points into the task this handle keeps alive. The
        // task is done (observed with Acquire by the caller), so its green
        // thread wrote the slot before and never touches it again; this
        // handle, consumed here, is its only reader.
        unsafe { (*(*self.result).get()).take() }
            // Finished without a result: killed before it started.
            .unwrap_or(Err(JoinError {
                repr: JoinErrorRepr::Killed,
            }))
    }

    /// Whether the green thread has finished (returned, panicked or been
    /// killed). Does not block.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| ());
    ///     while !h.is_finished() { greenhouse::thread::yield_now(); }
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task().is_done()
    }

    /// Kills the green thread: it unwinds from its current or next blocking
    /// point (its destructors run) and [`join`](JoinHandle::join) reports
    /// [`JoinError::is_killed`]. A green thread that has not started never
    /// runs; killing a finished one does nothing. Returns at once; join to
    /// wait until it is gone. Works from green threads and OS threads.
    ///
    /// A green thread in a CPU loop that never reaches a blocking point (or
    /// [`yield_now`]) cannot be killed until it does.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| greenhouse::thread::sleep(Duration::from_secs(60)));
    ///     h.kill();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn kill(&self) {
        self.task().kill();
    }

    /// The green thread's unique id.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| greenhouse::thread::current().id());
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> ThreadId {
        self.thread.id()
    }

    /// The green thread's name, if it was given one.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::Builder::new().name("n".into()).spawn(|| ()).unwrap();
    ///     assert_eq!(h.name(), Some("n"));
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.thread.name()
    }

    /// A handle to the green thread (std's `JoinHandle::thread`).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| greenhouse::thread::park());
    ///     h.thread().unpark();
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.thread
    }
}

/// Waits until `task` is done or `deadline` passes; true if done.
fn wait_done(task: &TaskRef, deadline: Option<Instant>, reason: WaitReason) -> bool {
    loop {
        if task.is_done() {
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        if !task.set_joiner(current_waiter_id(), Unparker::current) {
            return true;
        }
        park_until(deadline, reason);
    }
}

/// How a green thread ended when it did not return a value.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let e = greenhouse::thread::spawn(|| std::panic::panic_any(7u32)).join().unwrap_err();
///     assert!(e.is_panic() && !e.is_killed());
///     assert_eq!(*e.into_panic().downcast::<u32>().unwrap(), 7);
/// });
/// ```
pub struct JoinError {
    repr: JoinErrorRepr,
}

enum JoinErrorRepr {
    Panic(Box<dyn Any + Send + 'static>),
    Killed,
    TimedOut,
}

impl JoinError {
    fn from_payload(p: Box<dyn Any + Send + 'static>) -> JoinError {
        let repr = if p.is::<KillUnwind>() {
            JoinErrorRepr::Killed
        } else if p.is::<TimeoutUnwind>() {
            JoinErrorRepr::TimedOut
        } else {
            JoinErrorRepr::Panic(p)
        };
        JoinError { repr }
    }

    /// The green thread panicked.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     assert!(greenhouse::thread::spawn(|| panic!("x")).join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, JoinErrorRepr::Panic(_))
    }

    /// The green thread was killed ([`JoinHandle::kill`], or its runtime shut
    /// down while it ran).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| greenhouse::thread::park());
    ///     h.kill();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn is_killed(&self) -> bool {
        matches!(self.repr, JoinErrorRepr::Killed)
    }

    /// The green thread was ended by a [`crate::time::Timeout`] guard that no
    /// [`crate::time::timeout`] call caught.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| {
    ///         let _t = greenhouse::time::Timeout::start(Duration::from_millis(5));
    ///         greenhouse::thread::sleep(Duration::from_secs(10));
    ///     });
    ///     assert!(h.join().unwrap_err().is_timeout());
    /// });
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.repr, JoinErrorRepr::TimedOut)
    }

    /// The panic payload.
    ///
    /// # Panics
    /// If the error is not a panic (see [`try_into_panic`](JoinError::try_into_panic)).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let e = greenhouse::thread::spawn(|| panic!("boom")).join().unwrap_err();
    ///     assert_eq!(*e.into_panic().downcast::<&str>().unwrap(), "boom");
    /// });
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic on an error that is not a panic")
    }

    /// The panic payload, or the error back if it is not a panic.
    ///
    /// # Errors
    /// Returns `self` when the green thread did not panic.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::thread::spawn(|| greenhouse::thread::park());
    ///     h.kill();
    ///     assert!(h.join().unwrap_err().try_into_panic().is_err());
    /// });
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            JoinErrorRepr::Panic(p) => Ok(p),
            repr => Err(JoinError { repr }),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            JoinErrorRepr::Panic(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned());
                f.debug_tuple("Panic").field(&msg).finish()
            }
            JoinErrorRepr::Killed => f.write_str("Killed"),
            JoinErrorRepr::TimedOut => f.write_str("TimedOut"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            JoinErrorRepr::Panic(_) => f.write_str("green thread panicked"),
            JoinErrorRepr::Killed => f.write_str("green thread was killed"),
            JoinErrorRepr::TimedOut => f.write_str("green thread was ended by a timeout"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Joins every handle, returning the results in input order (gevent's
/// `joinall`, asyncio's `gather`).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// greenhouse::run(|| {
///     let hs = [30u64, 10, 20].map(|ms| greenhouse::thread::spawn(move || {
///         greenhouse::thread::sleep(Duration::from_millis(ms));
///         ms
///     }));
///     let out: Vec<u64> = greenhouse::thread::join_all(hs).into_iter().map(Result::unwrap).collect();
///     assert_eq!(out, [30, 10, 20]);
/// });
/// ```
pub fn join_all<T, I>(handles: I) -> Vec<Result<T, JoinError>>
where
    I: IntoIterator<Item = JoinHandle<T>>,
{
    handles.into_iter().map(JoinHandle::join).collect()
}

/// When [`wait`] returns.
///
/// # Example
///
/// ```
/// use greenhouse::thread::{self, WaitFor};
/// greenhouse::run(|| {
///     let hs = vec![thread::spawn(|| 1), thread::spawn(|| 2)];
///     // All: nothing is left pending (no timeout).
///     let (done, pending) = thread::wait(hs, WaitFor::All, None);
///     assert_eq!((done.len(), pending.len()), (2, 0));
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// As soon as one green thread has finished (asyncio's `FIRST_COMPLETED`).
    First,
    /// When all have finished (asyncio's `ALL_COMPLETED`).
    All,
}

/// Waits for the first or all of `handles` to finish, or for `timeout`;
/// returns `(done, pending)`, each in input order (asyncio's `wait`).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use greenhouse::thread::{self, WaitFor};
/// greenhouse::run(|| {
///     let hs: Vec<_> = [10u64, 500, 800].into_iter()
///         .map(|ms| thread::spawn(move || thread::sleep(Duration::from_millis(ms))))
///         .collect();
///     let (done, pending) = thread::wait(hs, WaitFor::First, None);
///     assert_eq!((done.len(), pending.len()), (1, 2));
///     let (done, pending) = thread::wait(pending, WaitFor::All, Some(Duration::from_millis(1)));
///     assert_eq!((done.len(), pending.len()), (0, 2));
///     for h in &pending { h.kill(); }
/// });
/// ```
pub fn wait<T>(
    handles: Vec<JoinHandle<T>>,
    mode: WaitFor,
    timeout: Option<Duration>,
) -> (Vec<JoinHandle<T>>, Vec<JoinHandle<T>>) {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let finished = handles.iter().filter(|h| h.is_finished()).count();
        let satisfied = match mode {
            WaitFor::First => finished > 0 || handles.is_empty(),
            WaitFor::All => finished == handles.len(),
        };
        if satisfied || deadline.is_some_and(|d| Instant::now() >= d) {
            return handles.into_iter().partition(|h| h.is_finished());
        }
        let me = current_waiter_id();
        let mut any_done = false;
        for h in handles.iter().filter(|h| !h.is_finished()) {
            any_done |= !h.task().set_joiner(me, Unparker::current);
        }
        if !any_done {
            park_until(deadline, WaitReason::Join);
        }
    }
}

/// Iterates over the results of `handles` in the order the green threads
/// finish (asyncio's `as_completed`, `concurrent.futures.as_completed`).
///
/// # Example
///
/// ```
/// use greenhouse::{channel, thread};
/// greenhouse::run(|| {
///     // Three green threads, each finishing when its gate opens.
///     let (gates, hs): (Vec<_>, Vec<_>) = (0..3)
///         .map(|i| {
///             let (open, gate) = channel::bounded::<()>(1);
///             (open, thread::spawn(move || { gate.recv().unwrap(); i }))
///         })
///         .unzip();
///     let mut done = thread::as_completed(hs);
///     for i in [2, 0, 1] {
///         gates[i].send(()).unwrap();
///         assert_eq!(done.next().unwrap().unwrap(), i);
///     }
///     assert!(done.next().is_none());
/// });
/// ```
pub fn as_completed<T>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> AsCompleted<T> {
    AsCompleted {
        pending: handles.into_iter().collect(),
    }
}

/// The iterator returned by [`as_completed`].
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let it = greenhouse::thread::as_completed(vec![greenhouse::thread::spawn(|| 1)]);
///     assert_eq!(it.map(Result::unwrap).sum::<i32>(), 1);
/// });
/// ```
#[derive(Debug)]
pub struct AsCompleted<T> {
    pending: Vec<JoinHandle<T>>,
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<T, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pending.is_empty() {
                return None;
            }
            if let Some(i) = self.pending.iter().position(|h| h.is_finished()) {
                return Some(self.pending.remove(i).join());
            }
            let me = current_waiter_id();
            let mut any_done = false;
            for h in &self.pending {
                any_done |= !h.task().set_joiner(me, Unparker::current);
            }
            if !any_done {
                park_until(None, WaitReason::Join);
            }
        }
    }
}

/// Puts the current green thread to sleep for at least `dur`; its worker runs
/// other green threads meanwhile. Outside green threads, sleeps the OS thread
/// (like `std::thread::sleep`). A cancellation point.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// greenhouse::run(|| {
///     let t = Instant::now();
///     greenhouse::thread::sleep(Duration::from_millis(20));
///     assert!(t.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn sleep(dur: Duration) {
    let now = Instant::now();
    match now.checked_add(dur) {
        Some(deadline) => sleep_between(now, deadline),
        None => loop {
            park_until(None, WaitReason::Sleep);
        },
    }
}

/// Sleeps until `deadline`, the clock having just read `now`.
fn sleep_between(mut now: Instant, deadline: Instant) {
    while now < deadline {
        if park::park_until_future(deadline, WaitReason::Sleep) {
            // The worker's timer saw the deadline pass: no clock read.
            break;
        }
        now = Instant::now();
    }
    // Even a zero sleep is a cancellation point.
    park::check_cancel();
}

/// Sleeps until `deadline` (no-op if it has passed). A cancellation point.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// greenhouse::run(|| {
///     let until = Instant::now() + Duration::from_millis(10);
///     greenhouse::thread::sleep_until(until);
///     assert!(Instant::now() >= until);
/// });
/// ```
pub fn sleep_until(deadline: Instant) {
    sleep_between(Instant::now(), deadline)
}

/// Lets the other ready green threads of this worker run, then continues
/// (gevent's `sleep(0)`). Outside green threads, yields the OS thread.
/// A cancellation point.
///
/// # Example
///
/// ```
/// greenhouse::run(|| greenhouse::thread::yield_now());
/// ```
#[inline]
pub fn yield_now() {
    park::yield_now();
}

/// Blocks the current green thread until its [`Thread::unpark`] is called
/// (std's `thread::park`, with the same token semantics: an earlier unpark
/// makes it return at once, and it may return spuriously). A cancellation
/// point.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let me = greenhouse::thread::current();
///     let h = greenhouse::thread::spawn(move || me.unpark());
///     greenhouse::thread::park();
///     h.join().unwrap();
/// });
/// ```
pub fn park() {
    park_until(None, WaitReason::Park);
}

/// Like [`park`], returning after `dur` at the latest.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// greenhouse::run(|| greenhouse::thread::park_timeout(Duration::from_millis(5)));
/// ```
pub fn park_timeout(dur: Duration) {
    park_until(Instant::now().checked_add(dur), WaitReason::Park);
}

/// A green thread's (or, outside green threads, an OS thread's) unique id.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let a = greenhouse::thread::current().id();
///     let b = greenhouse::thread::spawn(|| greenhouse::thread::current().id()).join().unwrap();
///     assert_ne!(a, b);
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(u64);

impl ThreadId {
    /// The id as a number (unique within the process).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::thread::current().id().as_u64() > 0);
    /// ```
    pub fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A handle to a green thread or OS thread (std's `Thread`): its id, name,
/// and [`unpark`](Thread::unpark).
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let me = greenhouse::thread::current();
///     assert_eq!(me.name(), Some("main"));
/// });
/// ```
#[derive(Clone)]
pub struct Thread {
    inner: ThreadInner,
}

#[derive(Clone)]
enum ThreadInner {
    Green(TaskRef),
    Os {
        id: ThreadId,
        thread: std::thread::Thread,
    },
}

thread_local! {
    static OS_ID: u64 = next_task_id();
}

/// The calling OS thread's id (shares its counter with green threads').
pub(crate) fn os_thread_id() -> u64 {
    OS_ID.with(|id| *id)
}

impl Thread {
    /// The id.
    ///
    /// # Example
    ///
    /// ```
    /// let id = greenhouse::thread::current().id();
    /// assert_eq!(id, greenhouse::thread::current().id());
    /// ```
    pub fn id(&self) -> ThreadId {
        match &self.inner {
            ThreadInner::Green(t) => ThreadId(t.id),
            ThreadInner::Os { id, .. } => *id,
        }
    }

    /// The name, if any.
    ///
    /// # Example
    ///
    /// ```
    /// // Outside green threads: the OS thread's name.
    /// let t = std::thread::Builder::new().name("os".into())
    ///     .spawn(|| greenhouse::thread::current().name().map(String::from)).unwrap();
    /// assert_eq!(t.join().unwrap().as_deref(), Some("os"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        match &self.inner {
            ThreadInner::Green(t) => t.name.as_deref(),
            ThreadInner::Os { thread, .. } => thread.name(),
        }
    }

    /// Wakes the thread if it is in [`park`], or makes its next `park` return
    /// at once. Callable from any thread.
    ///
    /// # Example
    ///
    /// ```
    /// let me = greenhouse::thread::current();
    /// me.unpark();
    /// greenhouse::thread::park(); // returns at once: the token was set
    /// ```
    pub fn unpark(&self) {
        match &self.inner {
            ThreadInner::Green(t) => t.unpark(),
            ThreadInner::Os { thread, .. } => thread.unpark(),
        }
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("green", &matches!(self.inner, ThreadInner::Green(_)))
            .finish()
    }
}

/// The calling green thread (or, outside green threads, OS thread).
///
/// # Example
///
/// ```
/// greenhouse::run(|| println!("{:?}", greenhouse::thread::current()));
/// ```
pub fn current() -> Thread {
    match park::current_task_arc() {
        Some(t) => Thread {
            inner: ThreadInner::Green(t),
        },
        None => Thread {
            inner: ThreadInner::Os {
                id: ThreadId(OS_ID.with(|id| *id)),
                thread: std::thread::current(),
            },
        },
    }
}

/// Runs `f` on the blocking pool — OS threads kept for work that would stall
/// a worker: CPU-heavy loops, regular-file I/O, name resolution, blocking C
/// libraries (gevent's threadpool) — and waits for its result. The calling
/// green thread parks meanwhile, so its worker keeps running other green
/// threads. From an OS thread it simply blocks.
///
/// The pool starts empty, grows by one thread whenever a job finds no idle
/// thread (up to 64; further jobs queue), and threads idle for 10 s exit.
///
/// A panic in `f` is resumed in the caller. If the caller is killed or times
/// out while waiting, `f` still runs to completion and its result is dropped.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let n = greenhouse::thread::spawn_blocking(|| (1..=10u64).product::<u64>());
///     assert_eq!(n, 3_628_800);
/// });
/// ```
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::runtime::blocking::run_blocking(f)
}

/// A key for a value stored per green thread (gevent's `local`), created by
/// [`green_local!`](crate::green_local). Outside green threads the value is
/// per OS thread.
///
/// # Example
///
/// ```
/// use std::cell::Cell;
/// greenhouse::green_local! { static COUNT: Cell<u32> = Cell::new(0); }
/// greenhouse::run(|| {
///     COUNT.with(|c| c.set(5));
///     let other = greenhouse::thread::spawn(|| COUNT.with(|c| c.get())).join().unwrap();
///     assert_eq!(other, 0); // a new green thread starts from the initial value
///     assert_eq!(COUNT.with(|c| c.get()), 5);
/// });
/// ```
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    _marker: PhantomData<fn() -> T>,
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

thread_local! {
    static OS_LOCALS: std::cell::RefCell<crate::runtime::local::LocalMap> =
        const { std::cell::RefCell::new(crate::runtime::local::LocalMap::new()) };
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            _marker: PhantomData,
        }
    }

    /// Calls `f` with this green thread's value, creating it with the
    /// initialiser on first use.
    ///
    /// # Example
    ///
    /// ```
    /// use std::cell::RefCell;
    /// greenhouse::green_local! { static NAME: RefCell<String> = RefCell::new(String::new()); }
    /// NAME.with(|n| n.borrow_mut().push_str("os thread"));
    /// assert_eq!(NAME.with(|n| n.borrow().clone()), "os thread");
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        match current_task() {
            Some(task) => {
                // SAFETY: the running task on its owner thread; the borrows
                // of `locals` end before `init` or `f` run, so re-entrant use
                // of other keys cannot alias them.
                let existing = unsafe { task.local_mut().locals.get::<T>(key) };
                let ptr = match existing {
                    Some(p) => p,
                    None => {
                        let v = (self.init)();
                        // SAFETY: as above.
                        unsafe { task.local_mut().locals.insert(key, v) }
                    }
                };
                // SAFETY: values are boxed and only removed when the green
                // thread exits, after its closure returned — so after `f`.
                f(unsafe { &*ptr })
            }
            None => {
                let existing = OS_LOCALS.with(|m| m.borrow().get::<T>(key));
                let ptr = match existing {
                    Some(p) => p,
                    None => {
                        let v = (self.init)();
                        OS_LOCALS.with(|m| m.borrow_mut().insert(key, v))
                    }
                };
                // SAFETY: boxed values live until the OS thread exits.
                f(unsafe { &*ptr })
            }
        }
    }
}

/// Declares values stored per green thread (gevent's `local`), like
/// `thread_local!`:
///
/// ```
/// use std::cell::Cell;
/// greenhouse::green_local! {
///     /// Requests served by this green thread.
///     static SERVED: Cell<u64> = Cell::new(0);
/// }
/// SERVED.with(|s| s.set(s.get() + 1));
/// assert_eq!(SERVED.with(|s| s.get()), 1);
/// ```
#[macro_export]
macro_rules! green_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::thread::LocalKey<$t> = {
            fn __init() -> $t { $init }
            $crate::thread::LocalKey::new(__init)
        };
        $crate::green_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::green_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
