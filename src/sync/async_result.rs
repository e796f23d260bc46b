//! gevent's `AsyncResult`: a value (or error) that arrives once, waited for
//! by any number of green threads and OS threads.

use std::fmt;
use std::pin::pin;
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::waiters::{lock, NoHandOff, WaitQueue, Waiter, Wakes};
use crate::runtime::task::WaitReason;

/// Token: the result is ready.
const READY: usize = 1;

struct State<T, E> {
    value: Option<Result<T, E>>,
    waiters: WaitQueue,
}

fn waiters<T, E>(s: &mut State<T, E>) -> &mut WaitQueue {
    &mut s.waiters
}

/// A result that is set once — a value with [`set`](AsyncResult::set) or an
/// error with [`set_error`](AsyncResult::set_error) — and read by anyone:
/// [`get`](AsyncResult::get) waits for it and returns a clone (gevent's
/// `AsyncResult`; a one-shot future). Setting wakes every waiter, and can
/// be done from any green thread or OS thread.
///
/// Share it with an `Arc`. Waiting is a cancellation point.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use greenhouse::sync::AsyncResult;
///
/// greenhouse::run(|| {
///     let answer: Arc<AsyncResult<u32, String>> = Arc::new(AsyncResult::new());
///     let a2 = answer.clone();
///     // Set from a plain OS thread; the green thread parks until then.
///     let t = std::thread::spawn(move || a2.set(42).unwrap());
///     assert_eq!(answer.get(), Ok(42));
///     t.join().unwrap();
/// });
/// ```
pub struct AsyncResult<T, E> {
    state: Lock<State<T, E>>,
}

impl<T, E> AsyncResult<T, E> {
    /// An unset result.
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<i32, ()>::new();
    /// assert!(!r.ready());
    /// ```
    pub const fn new() -> AsyncResult<T, E> {
        AsyncResult {
            state: Lock::new(State {
                value: None,
                waiters: WaitQueue::new(),
            }),
        }
    }

    fn complete(&self, r: Result<T, E>) -> Result<(), Result<T, E>> {
        let mut wakes = Wakes::new();
        {
            let mut s = lock(&self.state);
            if s.value.is_some() {
                return Err(r);
            }
            s.value = Some(r);
            s.waiters.wake_all(READY, &mut wakes);
        }
        wakes.unpark_all();
        Ok(())
    }

    /// Sets the value and wakes every waiter.
    ///
    /// # Errors
    /// If the result was already set (value or error): `value` is given
    /// back, and the first result stays (as `OnceLock::set`).
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<&str, ()>::new();
    /// assert_eq!(r.set("first"), Ok(()));
    /// assert_eq!(r.set("second"), Err("second"));
    /// assert_eq!(r.get(), Ok("first"));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        self.complete(Ok(value)).map_err(|r| match r {
            Ok(v) => v,
            Err(_) => unreachable!("complete gives back what it was given"),
        })
    }

    /// Sets an error (gevent's `set_exception`) and wakes every waiter.
    ///
    /// # Errors
    /// If the result was already set: `error` is given back.
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<u8, String>::new();
    /// r.set_error("refused".into()).unwrap();
    /// assert_eq!(r.get(), Err("refused".to_string()));
    /// assert!(!r.successful());
    /// ```
    pub fn set_error(&self, error: E) -> Result<(), E> {
        self.complete(Err(error)).map_err(|r| match r {
            Err(e) => e,
            Ok(_) => unreachable!("complete gives back what it was given"),
        })
    }

    /// Whether a value or error has been set.
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<u8, ()>::new();
    /// r.set(1).unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        lock(&self.state).value.is_some()
    }

    /// Whether a value (not an error) has been set.
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<u8, ()>::new();
    /// assert!(!r.successful());
    /// r.set(1).unwrap();
    /// assert!(r.successful());
    /// ```
    pub fn successful(&self) -> bool {
        matches!(lock(&self.state).value, Some(Ok(_)))
    }

    /// Waits until a value or error is set. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// greenhouse::run(|| {
    ///     let r = Arc::new(greenhouse::sync::AsyncResult::<u8, ()>::new());
    ///     let r2 = r.clone();
    ///     greenhouse::thread::spawn(move || r2.set(3).unwrap());
    ///     r.wait();
    ///     assert!(r.ready());
    /// });
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; returns whether the result is ready. A
    /// cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = greenhouse::sync::AsyncResult::<u8, ()>::new();
    /// assert!(!r.wait_timeout(Duration::from_millis(2)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut s = lock(&self.state);
        if s.value.is_some() {
            return true;
        }
        let w = pin!(Waiter::new(&self.state, waiters, 0, NoHandOff));
        w.as_ref().enqueue(&mut s);
        drop(s);
        w.as_ref().wait(deadline, WaitReason::Condvar).is_some()
    }

    /// Consumes the `AsyncResult`, returning the result if one was set.
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<Vec<u8>, ()>::new();
    /// r.set(vec![1]).unwrap();
    /// assert_eq!(r.into_inner(), Some(Ok(vec![1])));
    /// ```
    pub fn into_inner(self) -> Option<Result<T, E>> {
        self.state.into_inner().value
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Waits for the result and returns a clone of it. A cancellation
    /// point.
    ///
    /// # Errors
    /// The error set with [`set_error`](AsyncResult::set_error).
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<u8, ()>::new();
    /// r.set(9).unwrap();
    /// assert_eq!(r.get(), Ok(9));
    /// ```
    pub fn get(&self) -> Result<T, E> {
        self.wait();
        self.try_get().expect("ready after wait")
    }

    /// The result if it is ready, without waiting.
    ///
    /// # Example
    ///
    /// ```
    /// let r = greenhouse::sync::AsyncResult::<u8, ()>::new();
    /// assert_eq!(r.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<Result<T, E>> {
        lock(&self.state).value.clone()
    }

    /// Waits at most `timeout` for the result; `None` if it is not ready by
    /// then. A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = greenhouse::sync::AsyncResult::<u8, ()>::new();
    /// assert_eq!(r.get_timeout(Duration::from_millis(1)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        self.wait_timeout(timeout);
        self.try_get()
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("value", &lock(&self.state).value)
            .finish()
    }
}
