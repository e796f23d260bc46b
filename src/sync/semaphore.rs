//! gevent's `Semaphore` and `BoundedSemaphore`: a counter of permits that
//! green threads and OS threads acquire and release, FIFO-fair.

use std::fmt;
use std::pin::pin;
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::waiters::{lock, Node, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Waiter tags.
const ACQUIRE: usize = 0;
const WAIT: usize = 1;
/// Tokens.
const GRANTED: usize = 1;
const AVAILABLE: usize = 2;

struct State {
    /// Free permits. Never non-zero while an acquirer waits: a release
    /// hands its permit to the first acquirer instead.
    permits: usize,
    waiters: WaitQueue,
}

fn waiters(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// Gives a permit back under the lock: to the first waiting acquirer (after
/// waking the `wait`ers ahead of it), else to the counter.
fn release_locked(s: &mut State, wakes: &mut Wakes) {
    while let Some(c) = s.waiters.pop() {
        if c.tag() == WAIT {
            c.wake(AVAILABLE, wakes);
        } else {
            c.wake(GRANTED, wakes);
            return;
        }
    }
    s.permits += 1;
}

/// A cancelled acquirer that had been handed a permit gives it back.
fn hand_on(s: &mut State, _: &Node, token: usize, wakes: &mut Wakes) {
    if token == GRANTED {
        release_locked(s, wakes);
    }
}

/// A counting semaphore (gevent's `Semaphore`, Python's
/// `threading.Semaphore`): [`acquire`](Semaphore::acquire) takes a permit,
/// waiting while there is none; dropping the returned guard (or
/// [`release`](Semaphore::release)) gives one back.
///
/// Waiters are served in FIFO order: a release hands its permit straight to
/// the longest waiter, so a newcomer never overtakes it. Works from green
/// threads on any worker and from plain OS threads (which block like std).
/// Every wait is a cancellation point; a waiter killed or timed out after
/// being handed a permit passes it on.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// use greenhouse::sync::Semaphore;
///
/// greenhouse::run(|| {
///     let sem = Arc::new(Semaphore::new(2));
///     let running = Arc::new(AtomicUsize::new(0));
///     let handles: Vec<_> = (0..6).map(|_| {
///         let (sem, running) = (sem.clone(), running.clone());
///         greenhouse::thread::spawn(move || {
///             let _permit = sem.acquire();
///             assert!(running.fetch_add(1, SeqCst) < 2);
///             greenhouse::thread::sleep(std::time::Duration::from_millis(5));
///             running.fetch_sub(1, SeqCst);
///         })
///     }).collect();
///     for h in handles { h.join().unwrap(); }
/// });
/// ```
pub struct Semaphore {
    state: Lock<State>,
    /// `Some(initial)` for a [`BoundedSemaphore`].
    bound: Option<usize>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(3);
    /// assert_eq!(sem.counter(), 3);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Lock::new(State {
                permits,
                waiters: WaitQueue::new(),
            }),
            bound: None,
        }
    }

    /// Takes a permit, waiting until one is free. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(1);
    /// let permit = sem.acquire();
    /// assert!(sem.locked());
    /// drop(permit);
    /// assert!(!sem.locked());
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.acquire_until(None);
        SemaphoreGuard { sem: self }
    }

    /// Takes a permit if one is free now (gevent's `acquire(blocking=False)`).
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(1);
    /// let first = sem.try_acquire();
    /// assert!(first.is_some());
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        let mut s = lock(&self.state);
        if s.permits > 0 {
            s.permits -= 1;
            Some(SemaphoreGuard { sem: self })
        } else {
            None
        }
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none came free in
    /// time. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenhouse::sync::Semaphore::new(1);
    /// let _held = sem.acquire();
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        let deadline = Instant::now().checked_add(timeout);
        // Not `then_some`: that would build (and drop, releasing) a guard
        // for a permit never taken.
        self.acquire_until(deadline)
            .then(|| SemaphoreGuard { sem: self })
    }

    /// Takes a permit (to be given back with `release`), waiting until
    /// `deadline`; false if it passed first.
    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.state);
        if s.permits > 0 {
            s.permits -= 1;
            return true;
        }
        let w = pin!(Waiter::new(&self.state, waiters, ACQUIRE, hand_on));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Lock) == Some(GRANTED)
    }

    /// Adds a permit: wakes the longest waiter, handing it the permit.
    /// Unlike [`BoundedSemaphore::release`], never fails: the count may grow
    /// past its initial value.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(0);
    /// sem.release();
    /// assert_eq!(sem.counter(), 1);
    /// ```
    pub fn release(&self) {
        // An unbounded semaphore cannot be over-released.
        let _ = self.release_checked();
    }

    fn release_checked(&self) -> Result<(), OverReleaseError> {
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.state);
            if let Some(bound) = self.bound {
                if s.waiters.is_empty() && s.permits >= bound {
                    return Err(OverReleaseError { bound });
                }
            }
            release_locked(&mut s, &mut wakes);
        }
        wakes.unpark_all();
        Ok(())
    }

    /// Free permits now (gevent's `counter`).
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(2);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.counter(), 1);
    /// ```
    pub fn counter(&self) -> usize {
        lock(&self.state).permits
    }

    /// True if no permit is free (an `acquire` would wait).
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(0);
    /// assert!(sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.counter() == 0
    }

    /// Waits until a permit is free, without taking it (gevent's `wait`).
    /// Another thread may take it before the caller acts. A cancellation
    /// point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// greenhouse::run(|| {
    ///     let sem = Arc::new(greenhouse::sync::Semaphore::new(0));
    ///     let s2 = sem.clone();
    ///     let h = greenhouse::thread::spawn(move || s2.release());
    ///     sem.wait();
    ///     assert_eq!(sem.counter(), 1);
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Like [`wait`](Semaphore::wait), for at most `timeout`; returns whether
    /// a permit came free. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenhouse::sync::Semaphore::new(0);
    /// assert!(!sem.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.state);
        if s.permits > 0 {
            return true;
        }
        let w = pin!(Waiter::new(&self.state, waiters, WAIT, hand_on));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Lock).is_some()
    }
}

impl Default for Semaphore {
    /// A semaphore with one permit (gevent's default).
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("Semaphore")
            .field("counter", &s.permits)
            .field("waiters", &s.waiters.len())
            .finish()
    }
}

/// A held permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it
/// gives the permit back.
///
/// # Example
///
/// ```
/// let sem = greenhouse::sync::Semaphore::new(1);
/// {
///     let _permit = sem.acquire();
///     assert_eq!(sem.counter(), 0);
/// }
/// assert_eq!(sem.counter(), 1);
/// ```
#[must_use = "dropping the guard gives the permit back at once"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken without a guard; give it back later with
    /// [`Semaphore::release`] (gevent's explicit `acquire`/`release` style).
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert!(sem.locked());
    /// sem.release();
    /// assert!(!sem.locked());
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.sem.release_checked() {
            // Only possible if `release` was called for this very permit.
            log::error!("greenhouse: dropping a semaphore permit: {e}");
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}

/// A [`Semaphore`] that refuses to be released more often than acquired
/// (gevent's `BoundedSemaphore`): the counter never exceeds its initial
/// value, so a stray [`release`](BoundedSemaphore::release) is an error
/// rather than a silently larger limit.
///
/// # Example
///
/// ```
/// let sem = greenhouse::sync::BoundedSemaphore::new(1);
/// sem.acquire().forget();
/// assert!(sem.release().is_ok());
/// assert!(sem.release().is_err()); // one more than was acquired
/// ```
#[derive(Debug)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` free permits, which is also its
    /// maximum.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::BoundedSemaphore::new(2);
    /// assert_eq!(sem.counter(), 2);
    /// ```
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            inner: Semaphore {
                state: Lock::new(State {
                    permits,
                    waiters: WaitQueue::new(),
                }),
                bound: Some(permits),
            },
        }
    }

    /// Takes a permit, waiting until one is free. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::BoundedSemaphore::new(1);
    /// let _p = sem.acquire();
    /// assert!(sem.locked());
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.inner.acquire()
    }

    /// Takes a permit if one is free now.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::BoundedSemaphore::new(0);
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.inner.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenhouse::sync::BoundedSemaphore::new(1);
    /// assert!(sem.acquire_timeout(Duration::from_millis(1)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.inner.acquire_timeout(timeout)
    }

    /// Gives a permit back (one taken with [`SemaphoreGuard::forget`]).
    ///
    /// # Errors
    /// [`OverReleaseError`] if the counter is already at its initial value:
    /// more releases than acquisitions. The counter is left unchanged.
    ///
    /// # Example
    ///
    /// ```
    /// let sem = greenhouse::sync::BoundedSemaphore::new(1);
    /// let err = sem.release().unwrap_err();
    /// assert_eq!(err.bound(), 1);
    /// ```
    pub fn release(&self) -> Result<(), OverReleaseError> {
        self.inner.release_checked()
    }

    /// Free permits now.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::sync::BoundedSemaphore::new(4).counter(), 4);
    /// ```
    pub fn counter(&self) -> usize {
        self.inner.counter()
    }

    /// True if no permit is free.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!greenhouse::sync::BoundedSemaphore::new(1).locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.inner.locked()
    }

    /// Waits until a permit is free, without taking it. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::sync::BoundedSemaphore::new(1).wait(); // free: returns at once
    /// ```
    pub fn wait(&self) {
        self.inner.wait()
    }

    /// Like [`wait`](BoundedSemaphore::wait), for at most `timeout`; returns
    /// whether a permit came free.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenhouse::sync::BoundedSemaphore::new(1);
    /// let _p = sem.acquire();
    /// assert!(!sem.wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.inner.wait_timeout(timeout)
    }
}

/// The error of [`BoundedSemaphore::release`] called more often than
/// `acquire`.
///
/// # Example
///
/// ```
/// let e = greenhouse::sync::BoundedSemaphore::new(3).release().unwrap_err();
/// assert_eq!(e.to_string(), "semaphore released too many times (bound 3)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverReleaseError {
    bound: usize,
}

impl OverReleaseError {
    /// The semaphore's initial (and maximum) count.
    ///
    /// # Example
    ///
    /// ```
    /// let e = greenhouse::sync::BoundedSemaphore::new(2).release().unwrap_err();
    /// assert_eq!(e.bound(), 2);
    /// ```
    pub fn bound(&self) -> usize {
        self.bound
    }
}

impl fmt::Display for OverReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "semaphore released too many times (bound {})",
            self.bound
        )
    }
}

impl std::error::Error for OverReleaseError {}
