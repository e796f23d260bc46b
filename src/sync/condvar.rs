//! `Condvar`, shaped like `std::sync::Condvar`, working with
//! [`crate::sync::Mutex`].

use std::fmt;
use std::pin::pin;
use std::sync::{LockResult, PoisonError};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::mutex::MutexGuard;
use super::waiters::{lock, Node, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Token: notified.
const NOTIFIED: usize = 1;

fn same(q: &mut WaitQueue) -> &mut WaitQueue {
    q
}

/// A notification a cancelled waiter got but will not act on goes to the
/// next waiter.
fn pass_on(q: &mut WaitQueue, _: &Node, _: usize, wakes: &mut Wakes) {
    q.wake_one(NOTIFIED, wakes);
}

/// Whether a [`Condvar::wait_timeout`] returned because time ran out (std's
/// `WaitTimeoutResult`).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use greenhouse::sync::{Condvar, Mutex};
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(r.timed_out());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout elapsed.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhouse::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(false), Condvar::new());
    /// let (g, r) = cv.wait_timeout_while(m.lock().unwrap(), Duration::from_millis(1), |ready| !*ready).unwrap();
    /// assert!(r.timed_out() && !*g);
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable, shaped like [`std::sync::Condvar`], used with a
/// [`crate::sync::Mutex`]: [`wait`](Condvar::wait) releases the mutex and
/// parks until [`notify_one`](Condvar::notify_one) or
/// [`notify_all`](Condvar::notify_all), then locks it again.
///
/// Waiters are woken in FIFO order and never spuriously (loop on your
/// condition anyway, as with std, or use [`wait_while`](Condvar::wait_while)).
/// Waiting is a cancellation point: a waiter killed or timed out after being
/// notified passes the notification on to the next waiter.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use greenhouse::sync::{Condvar, Mutex};
///
/// greenhouse::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let p2 = pair.clone();
///     greenhouse::thread::spawn(move || {
///         *p2.0.lock().unwrap() = true;
///         p2.1.notify_one();
///     });
///     let (m, cv) = &*pair;
///     let ready = cv.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap();
///     assert!(*ready);
/// });
/// ```
pub struct Condvar {
    waiters: Lock<WaitQueue>,
}

impl Condvar {
    /// A condition variable nobody waits on.
    ///
    /// # Example
    ///
    /// ```
    /// let cv = greenhouse::sync::Condvar::new();
    /// cv.notify_all(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            waiters: Lock::new(WaitQueue::new()),
        }
    }

    /// Releases the guard's mutex, waits for a notification, and locks the
    /// mutex again. A cancellation point (while waiting for the notification
    /// and for the mutex).
    ///
    /// # Errors
    /// If the mutex is poisoned when locked again; the error carries the
    /// guard.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenhouse::sync::{Condvar, Mutex};
    /// greenhouse::run(|| {
    ///     let pair = Arc::new((Mutex::new(0), Condvar::new()));
    ///     let p2 = pair.clone();
    ///     let mut g = pair.0.lock().unwrap();
    ///     greenhouse::thread::spawn(move || { *p2.0.lock().unwrap() = 1; p2.1.notify_all(); });
    ///     while *g == 0 {
    ///         g = pair.1.wait(g).unwrap();
    ///     }
    ///     assert_eq!(*g, 1);
    /// });
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let (g, _) = self.wait_until(guard, None);
        g
    }

    /// Waits (as [`wait`](Condvar::wait)) while `condition` returns true.
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenhouse::sync::{Condvar, Mutex};
    /// greenhouse::run(|| {
    ///     let pair = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    ///     let p2 = pair.clone();
    ///     greenhouse::thread::spawn(move || for i in 0..3 {
    ///         p2.0.lock().unwrap().push(i);
    ///         p2.1.notify_one();
    ///     });
    ///     let g = pair.1.wait_while(pair.0.lock().unwrap(), |v| v.len() < 3).unwrap();
    ///     assert_eq!(*g, [0, 1, 2]);
    /// });
    /// ```
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Waits (as [`wait`](Condvar::wait)) for at most `dur`.
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait); the error carries the guard and the
    /// timeout result.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhouse::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(2)).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let (g, timed_out) = self.wait_until(guard, Instant::now().checked_add(dur));
        let r = WaitTimeoutResult(timed_out);
        match g {
            Ok(g) => Ok((g, r)),
            Err(e) => Err(PoisonError::new((e.into_inner(), r))),
        }
    }

    /// Waits while `condition` returns true, for at most `dur` in total.
    ///
    /// # Errors
    /// As [`wait_timeout`](Condvar::wait_timeout).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use greenhouse::sync::{Condvar, Mutex};
    /// greenhouse::run(|| {
    ///     let pair = Arc::new((Mutex::new(0), Condvar::new()));
    ///     let p2 = pair.clone();
    ///     greenhouse::thread::spawn(move || { *p2.0.lock().unwrap() = 7; p2.1.notify_one(); });
    ///     let (g, r) = pair.1
    ///         .wait_timeout_while(pair.0.lock().unwrap(), Duration::from_secs(5), |v| *v == 0)
    ///         .unwrap();
    ///     assert!(!r.timed_out());
    ///     assert_eq!(*g, 7);
    /// });
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = Instant::now().checked_add(dur);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            let (g, _) = self.wait_until(guard, deadline);
            guard = match g {
                Ok(g) => g,
                Err(e) => return Err(PoisonError::new((e.into_inner(), WaitTimeoutResult(false)))),
            };
        }
    }

    /// The wait: returns the relocked guard and whether the deadline passed
    /// without a notification.
    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (LockResult<MutexGuard<'a, T>>, bool) {
        let mutex = guard.lock;
        let w = pin!(Waiter::new(&self.waiters, same, 0, pass_on));
        // Queue before releasing the mutex: a notifier must take the mutex
        // to change the condition, so it cannot notify before we are queued.
        w.as_ref().enqueue(&mut lock(&self.waiters));
        drop(guard);
        let notified = w.as_ref().wait(deadline, WaitReason::Condvar).is_some();
        // Consumed the notification; if locking again is cancelled, give it
        // to the next waiter (this waiter will never act on it).
        let pass = PassOnIfUnwinding {
            cv: self,
            armed: notified,
        };
        let g = mutex.lock();
        std::mem::forget(pass);
        (g, !notified)
    }

    /// Wakes the longest waiter, if any.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::sync::Condvar::new().notify_one();
    /// ```
    pub fn notify_one(&self) {
        let mut wakes = Wakes::new();
        lock(&self.waiters).wake_one(NOTIFIED, &mut wakes);
        wakes.unpark_all();
    }

    /// Wakes every waiter.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::sync::Condvar::new().notify_all();
    /// ```
    pub fn notify_all(&self) {
        let mut wakes = Wakes::new();
        lock(&self.waiters).wake_all(NOTIFIED, &mut wakes);
        wakes.unpark_all();
    }
}

struct PassOnIfUnwinding<'a> {
    cv: &'a Condvar,
    armed: bool,
}

impl Drop for PassOnIfUnwinding<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cv.notify_one();
        }
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
