//! Time limits on blocking code: [`timeout`] and gevent's [`Timeout`].
//!
//! A time limit interrupts whatever blocking call its body is in when the
//! deadline passes — a sleep, a socket read, a lock, a channel, a join — by
//! unwinding the body (its destructors run) back to the [`timeout`] call,
//! which returns [`Elapsed`]. Nested limits: the one that expires first wins
//! and only it reports; the others see their body end by that unwinding as
//! usual. A body that finishes in time leaves nothing behind.
//!
//! Limits work in green threads and in plain OS threads alike. Like gevent's,
//! they act at blocking points: a CPU loop that never blocks (or calls
//! [`crate::thread::yield_now`]) runs past its deadline.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use greenhouse::time::timeout;
//! greenhouse::run(|| {
//!     let slow = timeout(Duration::from_millis(20), || greenhouse::thread::sleep(Duration::from_secs(10)));
//!     assert!(slow.is_err());
//!     let fast = timeout(Duration::from_secs(10), || 7);
//!     assert_eq!(fast.unwrap(), 7);
//! });
//! ```

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::runtime::park::{with_timeouts, TimeoutScope, TimeoutUnwind};

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// The error of a [`timeout`] whose body did not finish in time.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let e = greenhouse::time::timeout(Duration::from_millis(1), || greenhouse::thread::park()).unwrap_err();
/// assert_eq!(e.duration(), Duration::from_millis(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    duration: Duration,
}

impl Elapsed {
    /// The time limit that expired.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = greenhouse::time::timeout(Duration::from_millis(2), || greenhouse::thread::park()).unwrap_err();
    /// assert_eq!(e.duration().as_millis(), 2);
    /// ```
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.duration)
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Pops a scope when the body ends, however it ends.
struct Scope {
    id: u64,
}

impl Scope {
    fn push(deadline: Instant) -> Scope {
        let id = NEXT_SCOPE.fetch_add(1, Relaxed);
        with_timeouts(|t| {
            t.scopes.push(TimeoutScope {
                id,
                deadline,
                fired: false,
            })
        });
        Scope { id }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let id = self.id;
        with_timeouts(|t| t.scopes.retain(|s| s.id != id));
    }
}

/// Runs `f`, interrupting it at its current blocking call if it has not
/// finished within `limit`.
///
/// # Errors
/// [`Elapsed`] if the limit expired before `f` returned; `f`'s locals have
/// been dropped by then.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// greenhouse::run(|| {
///     // The inner, shorter limit expires first and only it reports.
///     let outer = greenhouse::time::timeout(Duration::from_secs(5), || {
///         greenhouse::time::timeout(Duration::from_millis(10), || greenhouse::thread::park())
///     });
///     assert!(outer.unwrap().is_err());
/// });
/// ```
pub fn timeout<T>(limit: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let Some(deadline) = Instant::now().checked_add(limit) else {
        return Ok(f());
    };
    let scope = Scope::push(deadline);
    let id = scope.id;
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(scope);
    match r {
        Ok(v) => Ok(v),
        Err(p) => match p.downcast::<TimeoutUnwind>() {
            Ok(u) if u.id == id => Err(Elapsed { duration: limit }),
            Ok(u) => resume_unwind(u),
            Err(p) => resume_unwind(p),
        },
    }
}

/// gevent's `Timeout` as a guard: from [`start`](Timeout::start) until the
/// guard is dropped, the current green thread's blocking calls are limited to
/// the deadline. When it expires, the green thread unwinds from its blocking
/// call; a surrounding [`Timeout::run`] or [`timeout`] does not catch it (it
/// is not theirs), so it ends the green thread and
/// [`JoinError::is_timeout`](crate::thread::JoinError::is_timeout) reports it.
/// Use [`Timeout::run`] (or [`timeout`]) to get the expiry as a value instead.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use greenhouse::time::Timeout;
/// greenhouse::run(|| {
///     let h = greenhouse::thread::spawn(|| {
///         let _limit = Timeout::start(Duration::from_millis(10));
///         greenhouse::thread::park(); // interrupted after 10 ms
///         unreachable!();
///     });
///     assert!(h.join().unwrap_err().is_timeout());
///     // The same limit, caught as a value:
///     let r = Timeout::new(Duration::from_millis(10)).run(|| greenhouse::thread::park());
///     assert!(r.is_err());
/// });
/// ```
#[derive(Debug)]
pub struct Timeout {
    limit: Duration,
}

/// The guard returned by [`Timeout::start`]; dropping it cancels the limit.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let g = greenhouse::time::Timeout::start(Duration::from_secs(1));
/// drop(g); // cancelled: nothing happens later
/// greenhouse::thread::sleep(Duration::from_millis(1));
/// ```
#[must_use = "the limit is cancelled when the guard is dropped"]
pub struct TimeoutGuard {
    _scope: Option<Scope>,
}

impl fmt::Debug for TimeoutGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutGuard").finish_non_exhaustive()
    }
}

impl Timeout {
    /// A limit of `limit`, not yet started.
    ///
    /// # Example
    ///
    /// ```
    /// let t = greenhouse::time::Timeout::new(std::time::Duration::from_secs(1));
    /// assert_eq!(t.run(|| 1).unwrap(), 1);
    /// ```
    pub fn new(limit: Duration) -> Timeout {
        Timeout { limit }
    }

    /// Starts a limit for the current green thread (or OS thread) that lasts
    /// until the returned guard is dropped.
    ///
    /// # Example
    ///
    /// ```
    /// let _g = greenhouse::time::Timeout::start(std::time::Duration::from_secs(30));
    /// ```
    pub fn start(limit: Duration) -> TimeoutGuard {
        TimeoutGuard {
            _scope: Instant::now().checked_add(limit).map(Scope::push),
        }
    }

    /// Runs `f` under this limit; the same as [`timeout`].
    ///
    /// # Errors
    /// [`Elapsed`] if the limit expired first.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = greenhouse::time::Timeout::new(Duration::from_millis(1)).run(|| greenhouse::thread::park());
    /// assert!(r.is_err());
    /// ```
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
        timeout(self.limit, f)
    }
}
