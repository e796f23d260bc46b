//! `RwLock`, shaped like `std::sync::RwLock`.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::pin;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::mutex::Poison;
use super::waiters::{lock, Node, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Waiter tags.
const READ: usize = 0;
const WRITE: usize = 1;
/// Token: the lock (in the mode asked for) is yours.
const GRANTED: usize = 1;

struct State {
    readers: usize,
    writer: bool,
    waiters: WaitQueue,
}

fn waiters(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// Nobody holds the lock: grant it to the head of the queue — one writer,
/// or every reader up to the next writer.
fn grant(s: &mut State, wakes: &mut Wakes) {
    debug_assert!(!s.writer && s.readers == 0);
    match s.waiters.front().map(Node::tag) {
        Some(WRITE) => {
            if let Some(w) = s.waiters.pop() {
                s.writer = true;
                w.wake(GRANTED, wakes);
            }
        }
        Some(_) => {
            while s.waiters.front().map(Node::tag) == Some(READ) {
                if let Some(r) = s.waiters.pop() {
                    s.readers += 1;
                    r.wake(GRANTED, wakes);
                }
            }
        }
        None => {}
    }
}

fn release(s: &mut State, mode: usize, wakes: &mut Wakes) {
    if mode == WRITE {
        s.writer = false;
    } else {
        s.readers -= 1;
    }
    if !s.writer && s.readers == 0 {
        grant(s, wakes);
    }
}

/// A waiter granted the lock but unwinding releases it again.
fn hand_on(s: &mut State, node: &Node, _: usize, wakes: &mut Wakes) {
    release(s, node.tag(), wakes);
}

/// A reader-writer lock protecting a `T`, shaped like
/// [`std::sync::RwLock`]: many readers or one writer at a time.
///
/// Fair: waiters are served in FIFO order; a new reader waits behind a
/// waiting writer (so writers are not starved), and a writer's release lets
/// in the whole run of readers queued behind it at once. Poisoned, as in
/// std, when a writer unwinds (also by kill or timeout) while holding it.
/// Waiting is a cancellation point.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use greenhouse::sync::RwLock;
///
/// greenhouse::run(|| {
///     let config = Arc::new(RwLock::new(String::from("v1")));
///     let c2 = config.clone();
///     greenhouse::thread::spawn(move || *c2.write().unwrap() = "v2".into()).join().unwrap();
///     let a = config.read().unwrap();
///     let b = config.read().unwrap(); // readers share
///     assert_eq!((a.as_str(), b.as_str()), ("v2", "v2"));
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    state: Lock<State>,
    poison: Poison,
    data: UnsafeCell<T>,
}

// SAFETY: as std's RwLock.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as std's RwLock: readers share &T across threads.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to a read-locked [`RwLock`]; releases it when dropped.
///
/// # Example
///
/// ```
/// let l = greenhouse::sync::RwLock::new(5);
/// let r = l.read().unwrap();
/// assert_eq!(*r, 5);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: as std's: sharing the guard shares &T.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

/// Exclusive access to a write-locked [`RwLock`]; releases it when dropped.
///
/// # Example
///
/// ```
/// let l = greenhouse::sync::RwLock::new(5);
/// *l.write().unwrap() += 1;
/// assert_eq!(*l.read().unwrap(), 6);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: as std's.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    ///
    /// # Example
    ///
    /// ```
    /// static L: greenhouse::sync::RwLock<Vec<u8>> = greenhouse::sync::RwLock::new(Vec::new());
    /// L.write().unwrap().push(1);
    /// ```
    pub const fn new(t: T) -> RwLock<T> {
        RwLock {
            state: Lock::new(State {
                readers: 0,
                writer: false,
                waiters: WaitQueue::new(),
            }),
            poison: Poison::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the lock, returning the data.
    ///
    /// # Errors
    /// If poisoned; the error carries the data.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(greenhouse::sync::RwLock::new(3).into_inner().unwrap(), 3);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        let t = self.data.into_inner();
        if poisoned {
            Err(PoisonError::new(t))
        } else {
            Ok(t)
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes the lock in `mode`, waiting until `deadline` (None: forever) if
    /// `wait`; false if not taken.
    fn acquire(&self, mode: usize, wait: bool, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.state);
        let free = !s.writer && s.waiters.is_empty() && (mode == READ || s.readers == 0);
        if free {
            if mode == WRITE {
                s.writer = true;
            } else {
                s.readers += 1;
            }
            return true;
        }
        if !wait {
            return false;
        }
        let w = pin!(Waiter::new(&self.state, waiters, mode, hand_on));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Lock).is_some()
    }

    fn unlock(&self, mode: usize) {
        let mut wakes = Wakes::new();
        release(&mut lock(&self.state), mode, &mut wakes);
        wakes.unpark_all();
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let g = RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        };
        if self.poison.get() {
            Err(PoisonError::new(g))
        } else {
            Ok(g)
        }
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let g = RwLockWriteGuard {
            lock: self,
            panicking: Poison::guard(),
            _not_send: PhantomData,
        };
        if self.poison.get() {
            Err(PoisonError::new(g))
        } else {
            Ok(g)
        }
    }

    /// Takes shared read access, waiting while a writer holds or waits for
    /// the lock. A cancellation point when it waits.
    ///
    /// # Errors
    /// If poisoned; the error carries the guard.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::sync::RwLock::new(1);
    /// assert_eq!(*l.read().unwrap(), 1);
    /// ```
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.acquire(READ, true, None);
        self.read_guard()
    }

    /// Takes read access if it is available now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if a writer holds or waits for it;
    /// [`TryLockError::Poisoned`] if poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::sync::RwLock::new(1);
    /// let _w = l.write().unwrap();
    /// assert!(l.try_read().is_err());
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.acquire(READ, false, None) {
            Ok(self.read_guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Takes read access, waiting at most `timeout`. A cancellation point.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] on timeout; [`TryLockError::Poisoned`]
    /// if poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenhouse::sync::RwLock::new(1);
    /// let _w = l.write().unwrap();
    /// assert!(l.read_timeout(Duration::from_millis(2)).is_err());
    /// ```
    pub fn read_timeout(&self, timeout: Duration) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.acquire(READ, true, Instant::now().checked_add(timeout)) {
            Ok(self.read_guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Takes exclusive write access, waiting while anyone holds the lock or
    /// waits ahead. A cancellation point when it waits.
    ///
    /// # Errors
    /// If poisoned; the error carries the guard.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::sync::RwLock::new(vec![1]);
    /// l.write().unwrap().push(2);
    /// assert_eq!(*l.read().unwrap(), [1, 2]);
    /// ```
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.acquire(WRITE, true, None);
        self.write_guard()
    }

    /// Takes write access if nobody holds or waits for the lock now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if held; [`TryLockError::Poisoned`] if
    /// poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::sync::RwLock::new(1);
    /// let _r = l.read().unwrap();
    /// assert!(l.try_write().is_err());
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.acquire(WRITE, false, None) {
            Ok(self.write_guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Takes write access, waiting at most `timeout`. A cancellation point.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] on timeout; [`TryLockError::Poisoned`]
    /// if poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenhouse::sync::RwLock::new(1);
    /// let _r = l.read().unwrap();
    /// assert!(l.write_timeout(Duration::from_millis(2)).is_err());
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.acquire(WRITE, true, Instant::now().checked_add(timeout)) {
            Ok(self.write_guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether the lock is poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!greenhouse::sync::RwLock::new(0).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::sync::RwLock::new(0);
    /// l.clear_poison();
    /// assert!(!l.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// A mutable reference to the data, without locking.
    ///
    /// # Errors
    /// If poisoned; the error carries the reference.
    ///
    /// # Example
    ///
    /// ```
    /// let mut l = greenhouse::sync::RwLock::new(0);
    /// *l.get_mut().unwrap() = 9;
    /// assert_eq!(*l.read().unwrap(), 9);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        let data = self.data.get_mut();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(t: T) -> RwLock<T> {
        RwLock::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&**e.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock(READ);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(self.panicking);
        self.lock.unlock(WRITE);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
