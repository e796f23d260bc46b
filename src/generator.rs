//! Generators: a closure that hands out values one at a time with
//! [`Yielder::yield_`], as a Python generator does with `yield`.
//!
//! A [`Generator`] runs its closure on its own guarded stack, like a greenlet,
//! so `yield_` may be called from any function the closure calls: Python's
//! `yield from sub()` is a plain call `sub(y)` that yields through the same
//! [`Yielder`]. A generator is an [`Iterator`]; [`Generator::send`] resumes it
//! with a value, which its pending `yield_` returns (Python's `send`), and
//! its closure's return value is kept for [`Generator::take_return_value`].
//! Dropping a generator that has not finished unwinds it: the destructors of
//! its locals run and the rest of its closure does not.
//!
//! ```
//! use greenhouse::generator::{Generator, Yielder};
//!
//! fn evens(y: &Yielder<u32>, below: u32) {
//!     for n in (0..below).step_by(2) {
//!         y.yield_(n);
//!     }
//! }
//! let g = Generator::new(|y| {
//!     evens(y, 5); // "yield from"
//!     y.yield_(100);
//! })?;
//! assert_eq!(g.collect::<Vec<_>>(), [0, 2, 4, 100]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design
//!
//! The generator is a corosensei coroutine resumed directly by `send`/`next`:
//! one resume and one suspend per item, no trampoline, and values pass as the
//! coroutine's input and output without allocation. Each resume installs the
//! generator's own greenlet context (made on the first resume), so greenlets
//! created and switched inside the body belong to the body (whose implicit
//! main greenlet is the body itself) and never get confused with the
//! greenlets of whoever iterates it. That one thread-local replace (and its
//! restore) is all a resume records: the context carries the generator's
//! stack record, which is how the overflow handler finds it, and the hub
//! tells a generator's stack from a green thread's by the stack pointer.
//! The [`Yielder`] is only lent to the closure (`&Yielder`), so it cannot
//! escape into a greenlet or another thread.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem;

use corosensei::stack::Stack as _;
use corosensei::{Coroutine, CoroutineResult};

use crate::greenlet::{Installed, State, ThreadState};
use crate::stack::{self, StackRecord};

type Coro<Y, R, S> = Coroutine<S, Y, R, stack::Stack>;

/// How a generator is named in a stack overflow report.
const GENERATOR_NAME: &str = "<generator>";

/// Handed to a generator's closure: the way to yield values.
///
/// `Y` is the type of the values yielded, `S` the type of the values
/// [`Generator::send`] passes in (what `yield_` returns).
///
/// # Example
///
/// ```
/// use greenhouse::generator::{Builder, Yielder};
///
/// // `yield_` returns what the next `send` passes in.
/// let mut g = Builder::new().create(|y: &Yielder<i64, i64>| {
///     let mut total = 0;
///     loop {
///         total += y.yield_(total);
///     }
/// })?;
/// assert_eq!(g.send(0), Some(0)); // starts it; the first value sent is dropped
/// assert_eq!(g.send(5), Some(5));
/// assert_eq!(g.send(2), Some(7));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Yielder<Y, S = ()> {
    inner: *const corosensei::Yielder<S, Y>,
    /// The generator's stack as `(low, size)`: `[low, low + size)`.
    range: (usize, usize),
    /// Neither `Send` nor `Sync`: it only makes sense on its generator's stack.
    _marker: PhantomData<*const ()>,
}

impl<Y, S> Yielder<Y, S> {
    /// Hands `value` to the caller of `next`/`send` and suspends the
    /// generator; returns the value of the `send` that resumes it
    /// (`S::default()` when resumed by `next`).
    ///
    /// # Panics
    ///
    /// Panics if called on a stack other than the generator's own (possible
    /// only by lending the yielder to a raw, non-`'static` coroutine resumed
    /// inside the body), which would otherwise corrupt the switch.
    ///
    /// # Example
    ///
    /// ```
    /// let mut g = greenhouse::generator::Generator::new(|y| {
    ///     y.yield_('a');
    ///     y.yield_('b');
    /// })?;
    /// assert_eq!(g.next(), Some('a'));
    /// assert_eq!(g.next(), Some('b'));
    /// assert_eq!(g.next(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn yield_(&self, value: Y) -> S {
        let here = &value as *const Y as usize;
        assert!(
            here.wrapping_sub(self.range.0) < self.range.1,
            "greenhouse: Yielder::yield_ called off its generator's stack"
        );
        // SAFETY: `inner` points to the corosensei yielder at the base of
        // this generator's stack, which lives until the coroutine returns;
        // we run on that stack (checked above), so the coroutine is running
        // and the yielder is linked to the `send` that resumed it.
        unsafe { (*self.inner).suspend(value) }
    }
}

impl<Y, S> fmt::Debug for Yielder<Y, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}

/// A stackful generator: yields `Y`s, receives `S`s from
/// [`send`](Generator::send), and returns an `R` at the end.
///
/// # Example
///
/// ```
/// use greenhouse::generator::Generator;
///
/// let mut fib = Generator::new(|y| {
///     let (mut a, mut b) = (0u64, 1u64);
///     for _ in 0..10 {
///         y.yield_(a);
///         (a, b) = (b, a + b);
///     }
///     "done"
/// })?;
/// let firsts: Vec<u64> = fib.by_ref().collect();
/// assert_eq!(firsts, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
/// assert_eq!(fib.take_return_value(), Some("done"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Generator<Y: 'static, R: 'static = (), S: 'static = ()> {
    /// `None` once finished (its stack is back in the pool). Its state
    /// follows from it: dead when `None`, else not started or suspended
    /// (see [`Generator::state`]), so a resume stores no state.
    coro: Option<Coro<Y, R, S>>,
    /// The generator's stack, named for the overflow report: goes into the
    /// body's context when that is made.
    record: StackRecord,
    ret: Option<R>,
    /// The body's greenlet state, installed while it runs: empty until the
    /// first resume, then a context of the body's own that carries `record`.
    greenlets: ThreadState,
}

/// The body's greenlet state for a resume, made on the first one (a
/// generator that is never resumed costs no context).
#[inline(always)]
fn enter<'a>(greenlets: &'a mut ThreadState, record: &StackRecord) -> Installed<'a> {
    if greenlets.is_empty() {
        make_context(greenlets, record);
    }
    greenlets.install()
}

#[cold]
#[inline(never)]
fn make_context(greenlets: &mut ThreadState, record: &StackRecord) {
    *greenlets = ThreadState::generator_body(*record);
}

impl<Y: 'static, R: 'static> Generator<Y, R> {
    /// Creates a generator running `f` on a stack of the default size. It
    /// starts on the first `next`. For a generator that is sent values, or
    /// one with another stack size, use [`Builder`].
    ///
    /// # Errors
    ///
    /// Fails if no stack can be mapped (memory-map or address-space limit;
    /// the message says which).
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::generator::Generator::new(|y| {
    ///     for c in "Leo".chars() {
    ///         y.yield_(c);
    ///     }
    /// })?;
    /// assert_eq!(g.collect::<String>(), "Leo");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new<F>(f: F) -> io::Result<Generator<Y, R>>
    where
        F: FnOnce(&Yielder<Y>) -> R + 'static,
    {
        Builder::new().create(f)
    }
}

/// Configures a generator: its stack size, and (through the closure's
/// argument type) the type of the values [`Generator::send`] passes in.
///
/// # Example
///
/// ```
/// use greenhouse::generator::{Builder, Yielder};
///
/// // A running total: each `send` adds to it and gets the new total back.
/// let mut g = Builder::new().stack_size(64 * 1024).create(|y: &Yielder<i64, i64>| {
///     let mut total = 0;
///     loop {
///         total += y.yield_(total);
///     }
/// })?;
/// assert_eq!(g.send(0), Some(0)); // starts it
/// assert_eq!(g.send(5), Some(5));
/// assert_eq!(g.send(2), Some(7));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder for a generator with the default stack size
    /// ([`stack::default_size`]).
    ///
    /// # Example
    ///
    /// ```
    /// let mut g = greenhouse::generator::Builder::new().create(|y| y.yield_(1))?;
    /// assert_eq!(g.send(()), Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Sets the stack size in bytes, rounded up to whole pages and at least
    /// [`stack::MIN_STACK_SIZE`].
    ///
    /// # Example
    ///
    /// ```
    /// let mut g = greenhouse::generator::Builder::new()
    ///     .stack_size(1 << 20)
    ///     .create(|y| y.yield_(1))?;
    /// assert_eq!(g.send(()), Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Creates the generator; it starts on the first `next` or `send`.
    ///
    /// # Errors
    ///
    /// Fails if no stack can be mapped (memory-map or address-space limit;
    /// the message says which).
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::generator::{Builder, Yielder};
    ///
    /// let mut echo = Builder::new().create(|y: &Yielder<String, String>| {
    ///     let mut s = String::new();
    ///     loop {
    ///         s = y.yield_(s.to_uppercase());
    ///     }
    /// })?;
    /// echo.send(String::new());
    /// assert_eq!(echo.send("abc".into()).as_deref(), Some("ABC"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create<Y, R, S, F>(self, f: F) -> io::Result<Generator<Y, R, S>>
    where
        Y: 'static,
        R: 'static,
        S: 'static,
        F: FnOnce(&Yielder<Y, S>) -> R + 'static,
    {
        let stack = stack::take(self.stack_size.unwrap_or_else(stack::default_size))?;
        let record = stack.info().record(GENERATOR_NAME);
        let low = stack.limit().get();
        let range = (low, stack.base().get() - low);
        let coro = Coroutine::with_stack(stack, move |y: &corosensei::Yielder<S, Y>, _first: S| {
            let y = Yielder {
                inner: y,
                range,
                _marker: PhantomData,
            };
            f(&y)
        });
        Ok(Generator {
            coro: Some(coro),
            record,
            ret: None,
            greenlets: ThreadState::default(),
        })
    }
}

impl<Y: 'static, R: 'static, S: 'static> Generator<Y, R, S> {
    /// Resumes the generator, making its pending `yield_` return `value`,
    /// and returns the next value it yields, or `None` once it has finished.
    /// The `send` that starts the generator has no pending `yield_` to
    /// receive its value, which is dropped (Python requires it to be `None`).
    ///
    /// A panic in the generator propagates to the caller of `send`; the
    /// generator is finished afterwards.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::generator::{Builder, Yielder};
    ///
    /// let mut g = Builder::new().create(|y: &Yielder<String, &'static str>| {
    ///     let name = y.yield_("who?".to_string());
    ///     format!("hello {name}")
    /// })?;
    /// assert_eq!(g.send("ignored").as_deref(), Some("who?"));
    /// assert_eq!(g.send("Leo"), None);
    /// assert_eq!(g.take_return_value().as_deref(), Some("hello Leo"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline(always)]
    pub fn send(&mut self, value: S) -> Option<Y> {
        self.coro.as_ref()?;
        let result = {
            let _entered = enter(&mut self.greenlets, &self.record);
            // Marks the generator finished if the body's panic unwinds.
            let guard = FinishOnUnwind {
                coro: &mut self.coro,
            };
            let result = guard.coro.as_mut().map(|c| c.resume(value));
            mem::forget(guard);
            result?
        };
        match result {
            CoroutineResult::Yield(v) => Some(v),
            CoroutineResult::Return(r) => {
                self.finish();
                self.ret = Some(r);
                None
            }
        }
    }

    fn finish(&mut self) {
        if let Some(coro) = self.coro.take() {
            stack::give(coro.into_stack());
        }
    }

    /// The generator's state: [`State::NotStarted`], [`State::Suspended`]
    /// between items, [`State::Dead`] once finished (returned or panicked).
    /// ([`State::Running`] is never observable from outside: `send` holds
    /// the generator mutably while it runs.)
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::State;
    ///
    /// let mut g = greenhouse::generator::Generator::new(|y| y.yield_(1))?;
    /// assert_eq!(g.state(), State::NotStarted);
    /// g.next();
    /// assert_eq!(g.state(), State::Suspended);
    /// g.next();
    /// assert_eq!(g.state(), State::Dead);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self) -> State {
        match &self.coro {
            None => State::Dead,
            Some(coro) if !coro.started() => State::NotStarted,
            Some(_) => State::Suspended,
        }
    }

    /// Whether the generator has finished: its closure returned or panicked.
    ///
    /// # Example
    ///
    /// ```
    /// let mut g = greenhouse::generator::Generator::new(|_y: &greenhouse::generator::Yielder<()>| 5)?;
    /// assert!(!g.is_finished());
    /// assert_eq!(g.next(), None);
    /// assert!(g.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.coro.is_none()
    }

    /// Takes the closure's return value: `Some` once, after the generator
    /// has finished by returning (`None` before that, after a panic, and
    /// the second time).
    ///
    /// # Example
    ///
    /// ```
    /// let mut g = greenhouse::generator::Generator::new(|y| {
    ///     y.yield_(1);
    ///     y.yield_(2);
    ///     3
    /// })?;
    /// assert_eq!(g.by_ref().sum::<i32>(), 3);
    /// assert_eq!(g.take_return_value(), Some(3));
    /// assert_eq!(g.take_return_value(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_return_value(&mut self) -> Option<R> {
        self.ret.take()
    }
}

/// Marks the generator finished if its body's panic unwinds out of `send`.
struct FinishOnUnwind<'a, Y: 'static, R: 'static, S: 'static> {
    coro: &'a mut Option<Coro<Y, R, S>>,
}

impl<Y: 'static, R: 'static, S: 'static> Drop for FinishOnUnwind<'_, Y, R, S> {
    fn drop(&mut self) {
        // Only reached when `resume` unwinds: the coroutine has returned
        // (with the panic), so its stack can be reused. Without its
        // coroutine the generator is dead.
        if let Some(coro) = self.coro.take() {
            if coro.done() {
                stack::give(coro.into_stack());
            }
        }
    }
}

impl<Y: 'static, R: 'static, S: Default + 'static> Iterator for Generator<Y, R, S> {
    type Item = Y;

    /// Resumes the generator with `S::default()` (Python's `next(gen)` is
    /// `gen.send(None)`) and returns the next value it yields.
    #[inline]
    fn next(&mut self) -> Option<Y> {
        self.send(S::default())
    }
}

impl<Y: 'static, R: 'static, S: 'static> Drop for Generator<Y, R, S> {
    fn drop(&mut self) {
        let Some(mut coro) = self.coro.take() else {
            return;
        };
        if coro.started() && !coro.done() {
            // Unwind the suspended body on its own stack, as it would run.
            let _entered = enter(&mut self.greenlets, &self.record);
            coro.force_unwind();
        } else {
            coro.force_unwind(); // drops an unstarted closure
        }
        stack::give(coro.into_stack());
    }
}

impl<Y: 'static, R: 'static, S: 'static> fmt::Debug for Generator<Y, R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}
