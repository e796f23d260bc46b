//! greenhouse: greenlet and gevent for Rust.
//!
//! Plain blocking code — `read`, `write`, `accept`, `sleep` in ordinary loops —
//! runs as thousands of green threads on a few OS threads; every wait switches
//! to another green thread. No `async`, no colouring.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use greenhouse::thread;
//!
//! let start = Instant::now();
//! greenhouse::run(|| {
//!     let handles: Vec<_> = (0..1000)
//!         .map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(100))))
//!         .collect();
//!     for h in handles {
//!         h.join().unwrap();
//!     }
//! });
//! // A thousand 100 ms sleeps, all at once.
//! assert!(start.elapsed() < Duration::from_secs(5));
//! ```
//!
//! The layers, bottom to top (see ARCHITECTURE.md):
//!
//! - [`stack`]: guarded, pooled stacks for every coroutine.
//! - [`greenlet`]: explicit `switch()` between stackful coroutines (Python's greenlet).
//! - [`generator`]: `Iterator`s written as closures that `yield_`, with `send`.
//! - [`runtime`]: the hub — workers, run queues, work stealing, timers,
//!   sockets, the blocking pool, the monitor.
//! - [`thread`]: green threads shaped like `std::thread`.
//! - [`time`]: [`time::timeout`] and gevent's [`time::Timeout`].
//! - [`net`]: green sockets shaped like `std::net`; [`io`]: waiting on any
//!   descriptor, a cooperative stdin; [`fs`]: `std::fs` on the blocking pool.
//! - `monkey` (feature `monkey`, Linux): gevent's `patch_all` — unmodified
//!   std and third-party blocking code yields inside green threads.
//! - [`server`]: gevent's `StreamServer`, a green thread per connection.
//! - [`sync`]: locks, condition variables, semaphores, events, results;
//!   [`channel`]: MPMC channels and select; [`queue`]: gevent's queues.
//! - [`pool`]: gevent's `Pool` and `Group`.
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

pub(crate) mod address_runs;
pub mod channel;
pub mod fs;
pub mod generator;
pub mod greenlet;
pub mod io;
#[cfg(all(feature = "monkey", target_os = "linux"))]
pub mod monkey;
pub mod net;
pub mod pool;
pub mod queue;
pub mod runtime;
pub mod server;
pub mod stack;
pub mod sync;
pub(crate) mod sys;
pub mod thread;
pub mod time;

/// Runs `f` as a green thread on a new runtime with default settings
/// (one worker per available core) and returns its value. Green threads
/// still running when `f` returns are killed (see [`runtime`]).
///
/// # Panics
/// If the runtime cannot start, if `f` panics (the panic is resumed here), or
/// on a deadlock (with the report naming each green thread and what it waits
/// on).
///
/// # Example
///
/// ```
/// let answer = greenhouse::run(|| {
///     let h = greenhouse::thread::spawn(|| 21);
///     h.join().unwrap() * 2
/// });
/// assert_eq!(answer, 42);
/// ```
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    runtime::Runtime::new()
        .expect("greenhouse: cannot start the runtime")
        .run(f)
}
