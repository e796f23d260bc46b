//! Green synchronization: locks, semaphores, events and results that green
//! threads on any worker and plain OS threads share.
//!
//! Every blocking call parks the calling green thread (its worker runs other
//! green threads meanwhile) or, called from an OS thread, blocks that thread
//! like std does. Every blocking call also comes as `try_` (never waits) and
//! with a timeout, and every wait is a cancellation point: a killed green
//! thread or an expired [`crate::time::timeout`] unwinds out of it, and a
//! wake-up, permit or item it had just been handed is passed on to the next
//! waiter rather than lost.
//!
//! All of them queue their waiters in one FIFO waiter list (see
//! ARCHITECTURE.md, "Waiting on each other"): a lock released while others
//! wait is handed to the longest waiter.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use greenhouse::sync::Semaphore;
//!
//! greenhouse::run(|| {
//!     let sem = Arc::new(Semaphore::new(1));
//!     let s2 = sem.clone();
//!     let permit = sem.acquire();
//!     let h = greenhouse::thread::spawn(move || { let _p = s2.acquire(); "got it" });
//!     drop(permit);
//!     assert_eq!(h.join().unwrap(), "got it");
//! });
//! ```

mod async_result;
mod barrier;
mod condvar;
mod event;
pub(crate) mod lock;
mod mutex;
mod reentrant;
mod rwlock;
mod semaphore;
mod wait_group;
pub(crate) mod waiters;

pub use async_result::AsyncResult;
pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use reentrant::{ReentrantMutex, ReentrantMutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{BoundedSemaphore, OverReleaseError, Semaphore, SemaphoreGuard};
/// std's lock error types, used unchanged so code moving from `std::sync`
/// keeps its error handling.
pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
pub use wait_group::WaitGroup;
