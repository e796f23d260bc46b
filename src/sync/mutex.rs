//! `Mutex`, shaped like `std::sync::Mutex`, and the raw lock it (and
//! `ReentrantMutex`) is built on.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::*};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::waiters::{lock, Node, Spin, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Held.
const LOCKED: u8 = 1;
/// Waiters may be queued: unlocking must go through the queue.
const QUEUED: u8 = 2;
/// Token: the lock is yours (the unlocker handed it over still held).
const HANDOFF: usize = 1;

/// A FIFO-fair lock without data: one CAS to lock and one to unlock when
/// uncontended; when waiters are queued, unlocking hands the lock, still
/// held, to the longest waiter, so nobody can overtake a queued waiter.
/// Before queueing, a locker spins briefly while nobody is queued (see
/// [`Spin`]): that keeps short critical sections on two workers from
/// turning every unlock into a wake-up.
pub(crate) struct RawMutex {
    state: AtomicU8,
    queue: Lock<WaitQueue>,
}

fn same(q: &mut WaitQueue) -> &mut WaitQueue {
    q
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU8::new(0),
            queue: Lock::new(WaitQueue::new()),
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Acquire, Relaxed)
            .is_ok()
    }

    /// Locks, waiting until `deadline`; false if it passed first. A
    /// cancellation point when it has to wait.
    #[inline]
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> bool {
        self.try_lock() || self.lock_slow(deadline)
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut spin = Spin::new();
        loop {
            let s = self.state.load(Relaxed);
            if s & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            // Spin only while nobody is queued: queued waiters get the lock
            // before us anyway.
            if s & QUEUED == 0 && spin.spin() {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            let hand_on = |q: &mut WaitQueue, _: &Node, _: usize, wakes: &mut Wakes| {
                // Handed the lock but unwinding: unlock again.
                self.unlock_queued(q, wakes)
            };
            let w = pin!(Waiter::new(&self.queue, same, 0, hand_on));
            {
                let mut q = lock(&self.queue);
                // Under the queue lock: take the lock if it came free, else
                // mark it queued (so its unlock comes to the queue) and queue.
                loop {
                    let s = self.state.load(Relaxed);
                    if s & LOCKED == 0 {
                        if self
                            .state
                            .compare_exchange(s, s | LOCKED, Acquire, Relaxed)
                            .is_ok()
                        {
                            return true;
                        }
                    } else if s & QUEUED != 0
                        || self
                            .state
                            .compare_exchange(s, s | QUEUED, Relaxed, Relaxed)
                            .is_ok()
                    {
                        break;
                    }
                }
                w.as_ref().enqueue(&mut q);
            }
            match w.as_ref().wait(deadline, WaitReason::Lock) {
                Some(_) => {
                    // The hand-off's Release store of the token pairs with
                    // the Acquire load in `wait`: the previous owner's writes
                    // are visible.
                    return true;
                }
                None => return false,
            }
        }
    }

    /// # Safety
    /// The caller holds the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Release, Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut wakes = Wakes::new();
        {
            let mut q = lock(&self.queue);
            self.unlock_queued(&mut q, &mut wakes);
        }
        wakes.unpark_all();
    }

    /// Unlocks with the queue lock held: hands the lock to the first waiter,
    /// or releases it if none is left.
    fn unlock_queued(&self, q: &mut WaitQueue, wakes: &mut Wakes) {
        match q.pop() {
            Some(next) => {
                if q.is_empty() {
                    self.state.fetch_and(!QUEUED, Relaxed);
                }
                // Still LOCKED: ownership passes to `next`.
                next.wake(HANDOFF, wakes);
            }
            None => self.state.store(0, Release),
        }
    }
}

/// std's poison flag: set when a guard is dropped during a panic that began
/// while it was held.
pub(crate) struct Poison {
    failed: AtomicBool,
}

impl Poison {
    pub(crate) const fn new() -> Poison {
        Poison {
            failed: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.failed.load(Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.failed.store(false, Relaxed);
    }

    /// Call when a guard is made: whether the thread was already panicking.
    #[inline]
    pub(crate) fn guard() -> bool {
        std::thread::panicking()
    }

    /// Call when that guard is dropped.
    #[inline]
    pub(crate) fn done(&self, was_panicking: bool) {
        if !was_panicking && std::thread::panicking() {
            self.failed.store(true, Relaxed);
        }
    }
}

/// A mutual-exclusion lock protecting a `T`, shaped like
/// [`std::sync::Mutex`] (same methods, guards, poisoning and error types), for
/// green threads and OS threads alike.
///
/// Waiting for it parks the green thread (its worker runs others) or blocks
/// the OS thread. It is FIFO-fair: when waiters are queued, `unlock` hands
/// the lock to the longest waiter directly. Uncontended, `lock` and `unlock`
/// are one atomic compare-and-swap each.
///
/// Poisoning works as in std: a guard dropped while its thread unwinds
/// marks the mutex poisoned. That includes a green thread unwinding because
/// it was killed or its [`crate::time::timeout`] expired inside the critical
/// section (the data may be half-updated either way).
///
/// Waiting in [`lock`](Mutex::lock) is a cancellation point.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use greenhouse::sync::Mutex;
///
/// greenhouse::run(|| {
///     let counter = Arc::new(Mutex::new(0));
///     let handles: Vec<_> = (0..10).map(|_| {
///         let c = counter.clone();
///         greenhouse::thread::spawn(move || {
///             for _ in 0..100 {
///                 *c.lock().unwrap() += 1;
///                 greenhouse::thread::yield_now();
///             }
///         })
///     }).collect();
///     for h in handles { h.join().unwrap(); }
///     assert_eq!(*counter.lock().unwrap(), 1000);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    pub(crate) raw: RawMutex,
    poison: Poison,
    data: UnsafeCell<T>,
}

// SAFETY: as std's Mutex: the lock gives one thread at a time access to T.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as std's Mutex.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped. Like
/// std's, it cannot be sent to another thread (a green thread never changes
/// OS thread, so holding it across a switch is fine).
///
/// # Example
///
/// ```
/// let m = greenhouse::sync::Mutex::new(vec![1]);
/// let mut g = m.lock().unwrap();
/// g.push(2);
/// assert_eq!(*g, [1, 2]);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) lock: &'a Mutex<T>,
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: as std's MutexGuard: sharing the guard shares &T.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    ///
    /// # Example
    ///
    /// ```
    /// static M: greenhouse::sync::Mutex<u32> = greenhouse::sync::Mutex::new(0);
    /// *M.lock().unwrap() += 1;
    /// ```
    pub const fn new(t: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            poison: Poison::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex, returning the data.
    ///
    /// # Errors
    /// If the mutex is poisoned: the error carries the data.
    ///
    /// # Example
    ///
    /// ```
    /// let m = greenhouse::sync::Mutex::new(String::from("x"));
    /// assert_eq!(m.into_inner().unwrap(), "x");
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

impl<T: ?Sized> Mutex<T> {
    #[inline]
    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let g = MutexGuard {
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

    /// Locks, waiting (parked, FIFO) while another holds it. A cancellation
    /// point when it waits.
    ///
    /// # Errors
    /// If the mutex is poisoned; the error still carries the guard (the lock
    /// is held).
    ///
    /// # Panics
    /// Never because of the lock itself; note that locking a mutex the
    /// caller already holds waits forever (use
    /// [`ReentrantMutex`](crate::sync::ReentrantMutex) for that), which the
    /// runtime reports as a deadlock.
    ///
    /// # Example
    ///
    /// ```
    /// let m = greenhouse::sync::Mutex::new(1);
    /// *m.lock().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.raw.lock_until(None);
        self.guard()
    }

    /// Locks if nobody holds it now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if it is held;
    /// [`TryLockError::Poisoned`] (carrying the guard) if it is poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::TryLockError;
    /// let m = greenhouse::sync::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(g);
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self.raw.try_lock() {
            Ok(self.guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Locks, waiting at most `timeout`. A cancellation point.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if the lock did not come free in time;
    /// [`TryLockError::Poisoned`] as for [`lock`](Mutex::lock).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = greenhouse::sync::Mutex::new(0);
    /// let g = m.lock().unwrap();
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_err());
    /// drop(g);
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_ok());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<MutexGuard<'_, T>> {
        if self.raw.lock_until(Instant::now().checked_add(timeout)) {
            Ok(self.guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether the mutex is poisoned.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!greenhouse::sync::Mutex::new(0).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// let m = Arc::new(greenhouse::sync::Mutex::new(0));
    /// let m2 = m.clone();
    /// let _ = std::thread::spawn(move || { let _g = m2.lock(); panic!("poison it") }).join();
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// A mutable reference to the data; no locking needed (`&mut self`
    /// proves there are no other users).
    ///
    /// # Errors
    /// If the mutex is poisoned; the error carries the reference.
    ///
    /// # Example
    ///
    /// ```
    /// let mut m = greenhouse::sync::Mutex::new(1);
    /// *m.get_mut().unwrap() = 5;
    /// assert_eq!(*m.lock().unwrap(), 5);
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

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(t: T) -> Mutex<T> {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&**e.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, and `&mut self` that
        // this is the only access through it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.poison.done(self.panicking);
        // SAFETY: the guard proves the lock is held.
        unsafe { self.lock.raw.unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
