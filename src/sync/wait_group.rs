//! `WaitGroup`: wait until a set of workers are done (crossbeam's shape).

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::waiters::{lock, NoHandOff, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Token: the count reached zero.
const ZERO: usize = 1;

struct State {
    /// Live `WaitGroup` handles.
    count: usize,
    waiters: WaitQueue,
}

fn waiters(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// Waits until every clone of it has been dropped (crossbeam's `WaitGroup`,
/// Go's `sync.WaitGroup` without the counting mistakes): each worker holds
/// a clone and drops it when done; [`wait`](WaitGroup::wait) consumes the
/// waiter's own handle and parks until no handle is left.
///
/// Works across workers and OS threads; waiting is a cancellation point.
///
/// # Example
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering::SeqCst}};
/// use greenhouse::sync::WaitGroup;
///
/// greenhouse::run(|| {
///     let wg = WaitGroup::new();
///     let done = Arc::new(AtomicUsize::new(0));
///     for _ in 0..5 {
///         let (wg, done) = (wg.clone(), done.clone());
///         greenhouse::thread::spawn(move || {
///             done.fetch_add(1, SeqCst);
///             drop(wg);
///         });
///     }
///     wg.wait();
///     assert_eq!(done.load(SeqCst), 5);
/// });
/// ```
pub struct WaitGroup {
    inner: Arc<Lock<State>>,
}

impl WaitGroup {
    /// A wait group with one handle (this one).
    ///
    /// # Example
    ///
    /// ```
    /// let wg = greenhouse::sync::WaitGroup::new();
    /// wg.wait(); // the only handle: returns at once
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Lock::new(State {
                count: 1,
                waiters: WaitQueue::new(),
            })),
        }
    }

    /// Drops this handle and waits until every other handle has been
    /// dropped. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// let wg = greenhouse::sync::WaitGroup::new();
    /// let worker = wg.clone();
    /// let t = std::thread::spawn(move || drop(worker));
    /// wg.wait();
    /// t.join().unwrap();
    /// ```
    pub fn wait(self) {
        self.wait_until(None);
    }

    /// Like [`wait`](WaitGroup::wait), for at most `timeout`; returns
    /// whether every handle was dropped in time. This handle is dropped
    /// either way.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let wg = greenhouse::sync::WaitGroup::new();
    /// let _busy = wg.clone();
    /// assert!(!wg.wait_timeout(Duration::from_millis(2)));
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(self, deadline: Option<Instant>) -> bool {
        let inner = self.inner.clone();
        drop(self);
        let mut s = lock(&inner);
        if s.count == 0 {
            return true;
        }
        let w = pin!(Waiter::new(&*inner, waiters, 0, NoHandOff));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Condvar).is_some()
    }

    /// How many handles are alive.
    ///
    /// # Example
    ///
    /// ```
    /// let wg = greenhouse::sync::WaitGroup::new();
    /// let w2 = wg.clone();
    /// assert_eq!(wg.count(), 2);
    /// drop(w2);
    /// assert_eq!(wg.count(), 1);
    /// ```
    pub fn count(&self) -> usize {
        lock(&self.inner).count
    }
}

impl Clone for WaitGroup {
    fn clone(&self) -> WaitGroup {
        lock(&self.inner).count += 1;
        WaitGroup {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for WaitGroup {
    fn drop(&mut self) {
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.inner);
            s.count -= 1;
            if s.count == 0 {
                s.waiters.wake_all(ZERO, &mut wakes);
            }
        }
        wakes.unpark_all();
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
