//! `ReentrantMutex`: a lock its owner may take again (Python's `RLock`),
//! owned by a green thread, or by an OS thread outside green threads.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use super::mutex::RawMutex;
use crate::runtime::park;

thread_local! {
    /// An owner id for code that is not a green thread; drawn from the same
    /// counter as green threads' ids, so the two never collide.
    static OS_OWNER: u64 = crate::runtime::worker::next_task_id();
}

/// Who is asking: the current green thread's id, else the OS thread's.
fn current_owner() -> u64 {
    match park::current_task() {
        Some(t) => t.id,
        None => OS_OWNER.with(|id| *id),
    }
}

/// A mutex that the thread holding it may lock again (the seeds' `RLock`):
/// each [`lock`](ReentrantMutex::lock) by the owner nests, and the lock is
/// released when the outermost guard is dropped.
///
/// The owner is the *green thread* (not the worker OS thread it runs on:
/// two green threads on one worker exclude each other), or, for code outside
/// green threads, the OS thread. Gives shared access (`&T`), like std's
/// `ReentrantLock`; put a `Cell`/`RefCell` inside to mutate. Waiting is FIFO
/// and a cancellation point. Not poisoned by panics.
///
/// # Example
///
/// ```
/// use std::cell::RefCell;
/// use std::sync::Arc;
/// use greenhouse::sync::ReentrantMutex;
///
/// fn add(log: &ReentrantMutex<RefCell<Vec<u32>>>, n: u32) {
///     let g = log.lock();
///     g.borrow_mut().push(n);
///     if n < 3 {
///         add(log, n + 1); // the owner locks again: no deadlock
///     }
/// }
///
/// greenhouse::run(|| {
///     let log = Arc::new(ReentrantMutex::new(RefCell::new(Vec::new())));
///     let l2 = log.clone();
///     greenhouse::thread::spawn(move || add(&l2, 1)).join().unwrap();
///     assert_eq!(*log.lock().borrow(), [1, 2, 3]);
/// });
/// ```
pub struct ReentrantMutex<T: ?Sized> {
    raw: RawMutex,
    /// Owner id, 0 when unlocked. Only the owner writes it while it holds
    /// the lock, so a thread reading its own id here is the owner.
    owner: AtomicU64,
    /// Nesting depth; only touched by the owner.
    depth: Cell<usize>,
    data: UnsafeCell<T>,
}

// SAFETY: moving the mutex moves the T it owns.
unsafe impl<T: ?Sized + Send> Send for ReentrantMutex<T> {}
// SAFETY: as std's ReentrantLock: `depth` is only touched by the owner, and
// &T is only reachable by the owner.
unsafe impl<T: ?Sized + Send> Sync for ReentrantMutex<T> {}

/// A held [`ReentrantMutex`]; the lock is released when the outermost guard
/// is dropped.
///
/// # Example
///
/// ```
/// let m = greenhouse::sync::ReentrantMutex::new(5);
/// let a = m.lock();
/// let b = m.lock();
/// assert_eq!(*a + *b, 10);
/// ```
#[must_use = "if unused the ReentrantMutex will immediately unlock"]
pub struct ReentrantMutexGuard<'a, T: ?Sized> {
    lock: &'a ReentrantMutex<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> ReentrantMutex<T> {
    /// A new unlocked reentrant mutex.
    ///
    /// # Example
    ///
    /// ```
    /// let m = greenhouse::sync::ReentrantMutex::new(0);
    /// assert_eq!(*m.lock(), 0);
    /// ```
    pub const fn new(t: T) -> ReentrantMutex<T> {
        ReentrantMutex {
            raw: RawMutex::new(),
            owner: AtomicU64::new(0),
            depth: Cell::new(0),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex, returning the data.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::sync::ReentrantMutex::new(4).into_inner(), 4);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> ReentrantMutex<T> {
    /// Takes the lock given `deadline` (`Some(None)`: wait forever; `None`:
    /// don't wait).
    fn acquire(&self, wait: Option<Option<Instant>>) -> Option<ReentrantMutexGuard<'_, T>> {
        let me = current_owner();
        if self.owner.load(Relaxed) == me {
            let depth = self
                .depth
                .get()
                .checked_add(1)
                .expect("ReentrantMutex locked too many times by its owner");
            self.depth.set(depth);
        } else {
            let locked = match wait {
                None => self.raw.try_lock(),
                Some(deadline) => self.raw.lock_until(deadline),
            };
            if !locked {
                return None;
            }
            self.owner.store(me, Relaxed);
            self.depth.set(1);
        }
        Some(ReentrantMutexGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Locks, or nests if the caller already holds it; waits (FIFO) while
    /// another holds it. A cancellation point when it waits.
    ///
    /// # Panics
    /// If the owner nests it more than `usize::MAX` times.
    ///
    /// # Example
    ///
    /// ```
    /// let m = greenhouse::sync::ReentrantMutex::new(());
    /// let _outer = m.lock();
    /// let _inner = m.lock();
    /// ```
    pub fn lock(&self) -> ReentrantMutexGuard<'_, T> {
        self.acquire(Some(None))
            .expect("locking without a deadline returns only with the lock")
    }

    /// Locks (or nests) if that is possible without waiting.
    ///
    /// # Example
    ///
    /// ```
    /// let m = greenhouse::sync::ReentrantMutex::new(());
    /// let _g = m.lock();
    /// assert!(m.try_lock().is_some()); // the owner may always nest
    /// ```
    pub fn try_lock(&self) -> Option<ReentrantMutexGuard<'_, T>> {
        self.acquire(None)
    }

    /// Locks (or nests), waiting at most `timeout`. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let m = Arc::new(greenhouse::sync::ReentrantMutex::new(()));
    /// let g = m.lock();
    /// let m2 = m.clone();
    /// let other = std::thread::spawn(move || m2.lock_timeout(Duration::from_millis(5)).is_none());
    /// assert!(other.join().unwrap());
    /// drop(g);
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ReentrantMutexGuard<'_, T>> {
        self.acquire(Some(Instant::now().checked_add(timeout)))
    }

    /// A mutable reference to the data, without locking.
    ///
    /// # Example
    ///
    /// ```
    /// let mut m = greenhouse::sync::ReentrantMutex::new(1);
    /// *m.get_mut() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: ?Sized> Deref for ReentrantMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the caller owns the lock; only shared
        // references are handed out, so nested guards may coexist.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for ReentrantMutexGuard<'_, T> {
    fn drop(&mut self) {
        let depth = self.lock.depth.get() - 1;
        self.lock.depth.set(depth);
        if depth == 0 {
            self.lock.owner.store(0, Relaxed);
            // SAFETY: the outermost guard of the owner holds the raw lock.
            unsafe { self.lock.raw.unlock() };
        }
    }
}

impl<T: Default> Default for ReentrantMutex<T> {
    fn default() -> Self {
        ReentrantMutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReentrantMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReentrantMutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReentrantMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
