//! The hub: an M:N work-stealing scheduler for green threads.
//!
//! A [`Runtime`] owns N worker OS threads (default: the available
//! parallelism). Each worker is a small gevent hub: it runs green threads, and
//! whenever one waits — on a timer, a socket, a lock, a channel, another green
//! thread — it switches to the next ready one. Idle workers block in `epoll`
//! with the next timer as timeout, so an idle runtime uses no CPU.
//!
//! New green threads are stealable: idle workers take them from busy ones.
//! Once a green thread has started it stays on its worker, which is what keeps
//! `thread_local!`, `Rc` and std `MutexGuard`s held across a switch sound (and
//! why [`spawn`](crate::thread::spawn) is a safe function).
//!
//! # What happens to green threads still running when `run` returns
//!
//! [`Runtime::run`] returns as soon as its closure does; other green threads
//! keep running on the runtime's workers. When the [`Runtime`] is dropped,
//! every green thread still alive is killed — unwound from its current or next
//! blocking point, destructors run — and the drop waits for them to finish
//! unwinding. [`greenhouse::run`](crate::run) drops its runtime right away, so
//! its stragglers are killed when `f` returns, as Go's `main` ends its
//! goroutines; join what you need before returning. We chose killing over
//! gevent's "left un-run" because unwinding runs destructors (files flushed,
//! sockets closed) and nothing is left half-done in the background.
//!
//! # Example
//!
//! ```
//! use greenhouse::runtime::Runtime;
//! use greenhouse::thread;
//! use std::time::Duration;
//!
//! let rt = Runtime::builder().workers(2).build().unwrap();
//! let total = rt.run(|| {
//!     let handles: Vec<_> = (0..10)
//!         .map(|i| thread::spawn(move || { thread::sleep(Duration::from_millis(10)); i }))
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
//! });
//! assert_eq!(total, 45);
//! ```

pub(crate) mod blocking;
pub(crate) mod io;
pub(crate) mod local;
pub(crate) mod monitor;
pub(crate) mod park;
pub(crate) mod records;
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod worker;

use std::fmt;
use std::io as stdio;
use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Once};
use std::time::Duration;

use crossbeam_deque::Worker as Deque;

use crate::thread::JoinHandle;
use monitor::MonitorStop;
use worker::{Config, Shared, WorkerShared, WAKE_TOKEN};

/// A running set of workers that green threads run on.
///
/// Build one with [`Runtime::new`] or [`Runtime::builder`], run green code
/// with [`run`](Runtime::run), spawn into it from any OS thread through a
/// [`Handle`]. Dropping it kills the green threads still alive (see the
/// [module docs](self)) and stops its OS threads.
///
/// # Example
///
/// ```
/// let rt = greenhouse::runtime::Runtime::new().unwrap();
/// assert_eq!(rt.run(|| 6 * 7), 42);
/// ```
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    monitor: Option<(std::thread::JoinHandle<()>, Arc<MonitorStop>)>,
}

/// Settings for a [`Runtime`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let rt = greenhouse::runtime::Runtime::builder()
///     .workers(1)
///     .stack_size(128 * 1024)
///     .name_prefix("crawler")
///     .monitor_threshold(Some(Duration::from_millis(200)))
///     .build()
///     .unwrap();
/// assert_eq!(rt.workers(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: Option<usize>,
    name_prefix: String,
    monitor_threshold: Option<Duration>,
    deadlock_detection: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: None,
            stack_size: None,
            name_prefix: "greenhouse".into(),
            monitor_threshold: Some(Duration::from_millis(100)),
            deadlock_detection: true,
        }
    }
}

impl Builder {
    /// Number of worker OS threads. Default: [`std::thread::available_parallelism`].
    /// `0` is rejected by [`build`](Builder::build).
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().workers(2).build().unwrap();
    /// assert_eq!(rt.workers(), 2);
    /// ```
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Default stack size of green threads spawned into this runtime
    /// (default [`crate::stack::default_size`]). Rounded up to whole pages and
    /// at least [`crate::stack::MIN_STACK_SIZE`].
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().stack_size(64 * 1024).build().unwrap();
    /// rt.run(|| ());
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Prefix of the worker OS threads' names (`<prefix>-worker-<i>`).
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().name_prefix("proxy").build().unwrap();
    /// rt.run(|| ());
    /// ```
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Builder {
        self.name_prefix = prefix.into();
        self
    }

    /// A green thread that runs longer than this without reaching a switch
    /// point is reported (once per episode, through the `log` crate at `warn`
    /// level) with its name. Default 100 ms; `None` turns the monitor off.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().monitor_threshold(None).build().unwrap();
    /// rt.run(|| ());
    /// ```
    pub fn monitor_threshold(mut self, threshold: Option<Duration>) -> Builder {
        self.monitor_threshold = threshold;
        self
    }

    /// Whether to detect deadlocks (default on): when every green thread is
    /// parked and nothing can wake any of them, the runtime logs a report
    /// naming each one and what it waits on, kills them, and
    /// [`Runtime::run`] panics with the report ([`Runtime::try_run`] returns
    /// it) instead of hanging.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().deadlock_detection(false).build().unwrap();
    /// rt.run(|| ());
    /// ```
    pub fn deadlock_detection(mut self, on: bool) -> Builder {
        self.deadlock_detection = on;
        self
    }

    /// Starts the runtime's OS threads.
    ///
    /// # Errors
    /// `InvalidInput` for zero workers; the OS's error if a thread or poller
    /// cannot be created.
    ///
    /// # Example
    ///
    /// ```
    /// let err = greenhouse::runtime::Runtime::builder().workers(0).build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> stdio::Result<Runtime> {
        let n = match self.workers {
            Some(0) => {
                return Err(stdio::Error::new(
                    stdio::ErrorKind::InvalidInput,
                    "a runtime needs at least one worker",
                ))
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        install_panic_hook();
        let config = Config {
            stack_size: crate::stack::round_size(
                self.stack_size.unwrap_or_else(crate::stack::default_size),
            ),
            monitor_threshold: self.monitor_threshold,
            deadlock_detection: self.deadlock_detection,
        };
        let mut polls = Vec::with_capacity(n);
        let mut deques = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)?;
            let registry = poll.registry().try_clone()?;
            let deque = Deque::new_fifo();
            workers.push(WorkerShared::new(deque.stealer(), waker, registry));
            polls.push(poll);
            deques.push(deque);
        }
        let shared = Arc::new(Shared::new(config, workers));
        let mut rt = Runtime {
            shared: shared.clone(),
            threads: Vec::new(),
            monitor: None,
        };
        for (i, (poll, deque)) in polls.into_iter().zip(deques).enumerate() {
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("{}-worker-{i}", self.name_prefix))
                .spawn(move || {
                    let _ = sh.workers[i].thread.set(std::thread::current());
                    worker::run_worker(i, sh, deque, poll)
                })?;
            rt.threads.push(t);
        }
        if self.monitor_threshold.is_some() || self.deadlock_detection {
            let stop = Arc::new(MonitorStop {
                stop: std::sync::Mutex::new(false),
                cv: std::sync::Condvar::new(),
            });
            let (sh, st) = (shared.clone(), stop.clone());
            let t = std::thread::Builder::new()
                .name(format!("{}-monitor", self.name_prefix))
                .spawn(move || monitor::run_monitor(sh, st))?;
            rt.monitor = Some((t, stop));
        }
        Ok(rt)
    }
}

/// Why [`Runtime::try_run`] did not return a value.
///
/// # Example
///
/// ```
/// use greenhouse::runtime::{RunError, Runtime};
/// let rt = Runtime::new().unwrap();
/// match rt.try_run(|| -> u32 { panic!("boom") }) {
///     Err(RunError::Panicked(p)) => assert_eq!(p.downcast_ref::<&str>(), Some(&"boom")),
///     other => panic!("expected the root's panic, got {other:?}"),
/// }
/// ```
#[derive(Debug)]
pub enum RunError {
    /// Every green thread was parked with nothing left to wake any of them.
    /// The string is the report: each green thread and what it waited on.
    Deadlock(String),
    /// The root green thread panicked; the payload is the panic's.
    Panicked(Box<dyn std::any::Any + Send + 'static>),
    /// The root green thread was killed.
    Killed,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Deadlock(r) => f.write_str(r),
            RunError::Panicked(_) => f.write_str("the root green thread panicked"),
            RunError::Killed => f.write_str("the root green thread was killed"),
        }
    }
}

impl std::error::Error for RunError {}

impl Runtime {
    /// A runtime with default settings (see [`Builder`]).
    ///
    /// # Errors
    /// The OS's error if a thread or poller cannot be created.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::new().unwrap();
    /// assert!(rt.workers() >= 1);
    /// ```
    pub fn new() -> stdio::Result<Runtime> {
        Builder::default().build()
    }

    /// Settings to build a runtime with.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.workers(), 1);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Number of worker OS threads.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::builder().workers(3).build().unwrap();
    /// assert_eq!(rt.workers(), 3);
    /// ```
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Runs `f` as a green thread (named `main`) and blocks the calling OS
    /// thread until it returns; returns its value. Other green threads keep
    /// running afterwards until the runtime is dropped.
    ///
    /// # Panics
    /// If `f` panics, the panic is resumed here. On a deadlock (see
    /// [`Builder::deadlock_detection`]) this panics with the report.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::new().unwrap();
    /// let v = rt.run(|| {
    ///     let h = greenhouse::thread::spawn(|| "hello");
    ///     h.join().unwrap()
    /// });
    /// assert_eq!(v, "hello");
    /// ```
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_run(f) {
            Ok(v) => v,
            Err(RunError::Panicked(p)) => std::panic::resume_unwind(p),
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`run`](Runtime::run), but returns a deadlock, a panic or a kill
    /// of the root green thread as an error.
    ///
    /// # Errors
    /// See [`RunError`].
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::runtime::{Runtime, RunError};
    /// let rt = Runtime::new().unwrap();
    /// // The root parks and nothing can ever unpark it.
    /// let err = rt.try_run(|| greenhouse::thread::park()).unwrap_err();
    /// assert!(matches!(err, RunError::Deadlock(_)));
    /// ```
    pub fn try_run<F, T>(&self, f: F) -> Result<T, RunError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _in_run = worker::InRun::enter();
        *self
            .shared
            .deadlock
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let handle = crate::thread::spawn_in(&self.shared, Some("main".into()), None, f)
            .map_err(|e| RunError::Panicked(Box::new(e.to_string())))?;
        self.shared.runs_waiting.fetch_add(1, SeqCst);
        let joined = handle.join();
        self.shared.runs_waiting.fetch_sub(1, SeqCst);
        match joined {
            Ok(v) => Ok(v),
            Err(e) => {
                let report = self
                    .shared
                    .deadlock
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                match report {
                    Some(r) => Err(RunError::Deadlock(r)),
                    None if e.is_panic() => Err(RunError::Panicked(e.into_panic())),
                    None => Err(RunError::Killed),
                }
            }
        }
    }

    /// A handle that spawns into this runtime from any OS thread.
    ///
    /// While a handle obtained here (or a clone of it) is alive, the runtime
    /// does not report deadlocks: the handle's holder may still spawn
    /// something that wakes the parked green threads.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::new().unwrap();
    /// let h = rt.handle();
    /// let j = std::thread::spawn(move || h.spawn(|| 1 + 1).join().unwrap());
    /// assert_eq!(j.join().unwrap(), 2);
    /// ```
    pub fn handle(&self) -> Handle {
        self.shared.external_handles.fetch_add(1, SeqCst);
        Handle {
            shared: self.shared.clone(),
            counted: true,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let shared = &self.shared;
        // Each worker kills the green threads it started when it sees this
        // (unstarted ones are dropped without running); wait for them to
        // unwind.
        shared.shutting_down.store(true, SeqCst);
        shared.wake_all();
        shared.wait_all_done();
        shared.stop.store(true, SeqCst);
        shared.wake_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some((t, stop)) = self.monitor.take() {
            *stop.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
            stop.cv.notify_all();
            let _ = t.join();
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.workers.len())
            .field("live_green_threads", &self.shared.live())
            .finish()
    }
}

/// Spawns green threads into a runtime from any OS thread
/// (asyncio's `call_soon_threadsafe` / `run_coroutine_threadsafe`).
/// `Send + Sync + Clone`.
///
/// # Example
///
/// ```
/// let rt = greenhouse::runtime::Runtime::new().unwrap();
/// let handle = rt.handle();
/// let from_os_thread = std::thread::spawn(move || {
///     handle.spawn(|| greenhouse::thread::current().name().map(String::from)).join().unwrap()
/// });
/// assert_eq!(from_os_thread.join().unwrap(), None);
/// ```
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
    counted: bool,
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        if self.counted {
            self.shared.external_handles.fetch_add(1, SeqCst);
        }
        Handle {
            shared: self.shared.clone(),
            counted: self.counted,
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.counted {
            self.shared.external_handles.fetch_sub(1, SeqCst);
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// The handle of the runtime the calling green thread runs in.
    ///
    /// # Panics
    /// Outside a green thread; see [`Handle::try_current`].
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let h = greenhouse::runtime::Handle::current();
    ///     h.spawn(|| ()).join().unwrap();
    /// });
    /// ```
    pub fn current() -> Handle {
        Handle::try_current()
            .expect("greenhouse::runtime::Handle::current called outside a green thread")
    }

    /// The handle of the runtime the calling green thread runs in, or `None`
    /// outside green threads.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::runtime::Handle::try_current().is_none());
    /// ```
    pub fn try_current() -> Option<Handle> {
        park::current_task().map(|t| Handle {
            shared: t.shared.clone(),
            counted: false,
        })
    }

    /// Spawns `f` as a new green thread of this runtime.
    ///
    /// # Panics
    /// If the runtime has shut down or no stack can be mapped; use
    /// [`crate::thread::Builder::spawn_on`] to get these as errors.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = greenhouse::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.handle().spawn(|| 5).join().unwrap(), 5);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::thread::Builder::new()
            .spawn_on(self, f)
            .expect("failed to spawn green thread")
    }
}

static PANIC_HOOK: Once = Once::new();

/// Green threads' panics are reported like std's, naming the green thread
/// rather than the worker OS thread. Other panics go to the previous hook.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some(task) = park::current_task() else {
                return prev(info);
            };
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "Box<dyn Any>".to_string()
            };
            let loc = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let bt = match std::env::var("RUST_BACKTRACE") {
                Ok(v) if v != "0" => format!("{}", std::backtrace::Backtrace::force_capture()),
                _ => {
                    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
                        .to_string()
                }
            };
            eprintln!(
                "\ngreen thread '{}' panicked at {loc}:\n{msg}\n{bt}",
                task.display_name()
            );
        }));
    });
}
