//! gevent's `Event`: a flag that green threads and OS threads wait for.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::waiters::{lock, NoHandOff, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Token: the event was set.
const SET: usize = 1;

fn same(q: &mut WaitQueue) -> &mut WaitQueue {
    q
}

/// A flag that starts clear; [`wait`](Event::wait) parks until it is
/// [`set`](Event::set), and `set` wakes every waiter at once (gevent's and
/// Python's `Event`).
///
/// A waiter woken by `set` returns even if the event is cleared again before
/// it runs. Waiting is a cancellation point. Works across workers and from
/// OS threads.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use greenhouse::sync::Event;
///
/// greenhouse::run(|| {
///     let go = Arc::new(Event::new());
///     let runners: Vec<_> = (0..3).map(|i| {
///         let go = go.clone();
///         greenhouse::thread::spawn(move || { go.wait(); i })
///     }).collect();
///     go.set(); // wakes all three
///     let sum: i32 = runners.into_iter().map(|h| h.join().unwrap()).sum();
///     assert_eq!(sum, 3);
/// });
/// ```
pub struct Event {
    flag: AtomicBool,
    waiters: Lock<WaitQueue>,
}

impl Event {
    /// A clear event.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!greenhouse::sync::Event::new().is_set());
    /// ```
    pub const fn new() -> Event {
        Event {
            flag: AtomicBool::new(false),
            waiters: Lock::new(WaitQueue::new()),
        }
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Example
    ///
    /// ```
    /// let e = greenhouse::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// e.wait(); // set: returns at once
    /// ```
    pub fn set(&self) {
        self.flag.store(true, Release);
        let mut wakes = Wakes::new();
        lock(&self.waiters).wake_all(SET, &mut wakes);
        wakes.unpark_all();
    }

    /// Clears the flag: later waits park until the next `set`.
    ///
    /// # Example
    ///
    /// ```
    /// let e = greenhouse::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.flag.store(false, Release);
    }

    /// Whether the flag is set.
    ///
    /// # Example
    ///
    /// ```
    /// let e = greenhouse::sync::Event::new();
    /// assert!(!e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.load(Acquire)
    }

    /// Waits until the flag is set (returns at once if it is). A
    /// cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// let e = Arc::new(greenhouse::sync::Event::new());
    /// let e2 = e.clone();
    /// let t = std::thread::spawn(move || e2.set());
    /// e.wait();
    /// t.join().unwrap();
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the flag; returns whether it was set
    /// (gevent's `wait(timeout)`). A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = greenhouse::sync::Event::new();
    /// assert!(!e.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        let mut q = lock(&self.waiters);
        // Re-check under the lock: `set` stores the flag before it takes
        // the lock to wake waiters.
        if self.is_set() {
            return true;
        }
        let w = pin!(Waiter::new(&self.waiters, same, 0, NoHandOff));
        w.as_ref().enqueue(&mut q);
        drop(q);
        w.as_ref().wait(deadline, WaitReason::Condvar).is_some()
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
