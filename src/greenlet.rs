//! Greenlets: stackful coroutines that pass control with an explicit
//! [`switch`](Greenlet::switch), with the semantics of Python's `greenlet`.
//!
//! A [`Greenlet`] runs a closure on its own guarded stack (see [`crate::stack`]).
//! The first `switch(v)` into it starts the closure with `v`; from then on a
//! `switch(v)` into it makes *its* pending `switch` return `v`. Any greenlet
//! can switch to any other of its thread, at any call depth, so a greenlet is
//! a symmetric coroutine rather than a generator.
//!
//! ```
//! use greenhouse::greenlet::{self, Greenlet};
//!
//! let child = Greenlet::new(|x: i32| {
//!     // The greenlet that created us is our parent: switch back to it.
//!     let parent = greenlet::current::<i32>().parent().unwrap();
//!     let y = parent.switch(x + 1).unwrap(); // suspends until switched into again
//!     y * 10 // returning sends the value to the parent
//! })?;
//! assert_eq!(child.switch(1).unwrap(), 2);
//! assert_eq!(child.switch(5).unwrap(), 50);
//! assert!(child.is_dead());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The rules (greenlet's)
//!
//! - Every OS thread (and every green thread of the runtime) has an implicit
//!   *main* greenlet: the code that is running when no greenlet is. It is
//!   never dead and cannot be killed. [`current`] returns the running
//!   greenlet.
//! - Every greenlet except a main one has a *parent*, the greenlet that was
//!   running when it was created unless [`Greenlet::set_parent`] changes it.
//!   When a greenlet's closure returns, the value goes to the parent's pending
//!   `switch`. A parent that has not started yet is started with that value.
//! - A panic in a greenlet ends it; the parent's pending `switch` returns
//!   [`SwitchError::Panicked`] with the payload. Nothing is printed twice and
//!   nothing aborts.
//! - Switching to a dead greenlet switches to its first live ancestor, which
//!   receives the value.
//! - [`Greenlet::throw`] makes the target's pending `switch` unwind: the
//!   destructors of its locals run and it dies. Its parent then receives
//!   [`GreenletExit`] (as [`SwitchError::Exit`]): a normal ending, distinct
//!   from a panic. Throwing into a greenlet that has not started kills it
//!   without running its closure. [`Greenlet::kill`] is the convenience form
//!   that reports a successful kill as `Ok`.
//! - Dropping the last handle to a suspended greenlet unwinds it the same way
//!   (its destructors run, the rest of its closure does not), then frees its
//!   stack. As with `Rc`, greenlets whose closures hold handles to each other
//!   in a cycle are never dropped: break such cycles (let one of them finish,
//!   or keep the other's handle in an `Option` you clear). For the same
//!   reason a greenlet should not keep a handle to *itself* alive across a
//!   switch. Bind the parent first —
//!   `let parent = greenlet::current().parent().unwrap(); parent.switch(v)` —
//!   because in the one-line chain `greenlet::current().parent().unwrap().switch(v)`
//!   the `current()` temporary lives until the end of the statement, across
//!   the switch, and so does `let me = greenlet::current();`.
//!
//! # Values and types
//!
//! A `Greenlet<T>` handle sends and receives `T`: the common ping-pong of one
//! type needs no boxing and no downcasting. Values travel without allocation:
//! the sender checks that the receiver waits for a `T`, leaves the value on
//! its own stack and hands over its address; the receiver moves it out the
//! moment it resumes (values of primitive types between a greenlet and its
//! context's main greenlet travel in the handed-over word itself). (A
//! closure's return value, whose stack is gone by the
//! time it is delivered, is boxed once.) A handle's `T` is a *view*: the
//! greenlet itself is untyped, so
//! [`Greenlet::cast`] gives a handle with another value type, and
//! [`current`] and [`Greenlet::parent`] can be asked for any `T`. If a
//! switch would hand a greenlet a type other than the one its pending
//! `switch` (or its closure) expects, the switch fails with
//! [`SwitchError::TypeMismatch`] before anything runs. For values of several
//! types, use an enum (checked by the compiler: the recommended choice) or
//! `Greenlet<Box<dyn Any>>` (open-ended, checked when you downcast).
//!
//! ```
//! use greenhouse::greenlet::{Greenlet, SwitchError};
//!
//! // Mixing types through casts: each side states what it expects.
//! let g = Greenlet::new(|n: u32| n * 2)?;
//! let as_string = g.cast::<String>();
//! assert!(matches!(as_string.switch("x".into()), Err(SwitchError::TypeMismatch { .. })));
//! assert_eq!(g.switch(21).unwrap(), 42);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Threads
//!
//! Greenlets belong to the OS thread (more precisely: the green thread or
//! plain OS thread) that created them. The handle is `!Send`, so the type
//! system keeps it on that thread:
//!
//! ```compile_fail
//! let g = greenhouse::greenlet::Greenlet::new(|x: i32| x).unwrap();
//! std::thread::spawn(move || g.switch(1)); // error: `Rc<..>` cannot be sent between threads
//! ```
//!
//! Within one OS thread the runtime runs many green threads, each with its
//! own main greenlet. A handle smuggled from one green thread to another (in
//! a `thread_local!`, say) is refused with [`SwitchError::WrongThread`].
//!
//! # Design
//!
//! corosensei, which does the stack switching, is asymmetric: a coroutine is
//! *resumed* by someone and *suspends* back to them. Greenlets are symmetric.
//! The bridge is a trampoline: only the main greenlet ever resumes
//! coroutines. When the main greenlet switches to `X`, it resumes `X` in a loop;
//! when a non-main greenlet switches to `Y`, it suspends to that loop with
//! "go to `Y` with this value", and the loop resumes `Y`. A main↔child round
//! trip is one resume and one suspend; child→child costs a suspend and a
//! resume. Every greenlet except the running one and the main one is therefore
//! suspended in exactly one place, its `switch`, which is where values arrive
//! and where `throw` unwinds it.
//!
//! The main ↔ child ping-pong has a short way through the trampoline: the
//! main greenlet resumes the handle's greenlet directly (the handle keeps it
//! alive, so nothing is reference-counted) and receives a value switched
//! back to it right after the resume. Its checks are three comparisons: the
//! target's context against the running one (the thread-local holds the
//! context's address, which is each of its greenlets' key), the target's
//! *gate* (the number of the value type its pending switch waits for, and
//! whether it is a main greenlet, started and alive, in one word) against
//! "waiting for a `T`", and either the running greenlet's gate (for a child
//! target: it must be the main greenlet, waiting for a `T`) or the stack
//! pointer (for the main target: the running child must be on its own
//! stack). Anything else takes the slow path with every check spelled out.
//! The side that gives control away does the stores: the main greenlet sets
//! `current` to the child it resumes, and a child's fast path sets it back
//! to the main greenlet as it suspends with a value for it, which is how
//! the main greenlet knows a value arrived; no state is stored (a started
//! greenlet runs while it is `current`). What a switch hands over is
//! one machine word (the address of the value on the sender's stack, a
//! primitive value itself, or a boxed ending such as a return value or a
//! panic), which corosensei passes in a register. `switch` is inlined so
//! that a child's suspend sits in the calling code: corosensei resumes with
//! a `call` and suspends with the matching `ret`, and a suspend inside a
//! function of its own would be followed by a return the CPU's return
//! predictor never saw the call for. A greenlet that switched a value to
//! another is kept alive until the value has been taken.
//!
//! Unwinding (`throw`, `kill`, drop) resumes the target with a "throw" input;
//! its pending `switch` calls `std::panic::resume_unwind` with a private
//! payload, which the greenlet's entry catches and turns into
//! [`GreenletExit`]. `resume_unwind` does not run the panic hook, so nothing
//! is printed; user panics are told apart by their payload type.
//!
//! All per-thread state (main greenlet, current greenlet) is one value in one
//! thread-local slot, which the runtime swaps when it switches green threads,
//! so each green thread has its own main greenlet. A [`Generator`] swaps in a
//! fresh one too, so greenlets used inside a generator body belong to it.
//!
//! [`Generator`]: crate::generator::Generator

use std::any::{type_name, Any, TypeId};
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use corosensei::stack::Stack as _;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::stack::{self, OnRecord, StackRecord};

/// What a switch hands over, in one machine word, so that corosensei passes
/// it in a register and nobody copies a multi-word enum through memory on
/// every switch (such copies, written field by field and read back whole,
/// stall store-to-load forwarding: they were most of the switch's cost).
///
/// - A *value*: the address of the sender's [`ValueSlot`], on the sender's
///   suspended stack (bit 0 clear: slots are 8-aligned). The receiver moves
///   the value out the moment it resumes, before the sender can run again;
///   the sender checked beforehand that the receiver waits for that type.
/// - [`Transfer::THROW`]: unwind from the pending switch (throw, kill, drop).
/// - An *ending* (a greenlet's return value, kill, panic, type mismatch): an
///   owned `Box<Ending>` with bit 0 set. These are rare and allocate.
///
/// A value slot that is dropped without being received leaks its value
/// (never frees it twice); that does not happen: every value is received.
struct Transfer(usize);

/// The rare things a switch can hand over (see [`Transfer`]).
enum Ending {
    /// A finished greenlet's return value (a `Box<T>`) and `T`'s name.
    Returned {
        value: Box<dyn Any>,
        name: &'static str,
    },
    /// A greenlet whose result was headed here was killed.
    Exit,
    /// A greenlet whose result was headed here panicked.
    Panic(Box<dyn Any + Send>),
    /// A finished greenlet's value had the wrong type for the receiver.
    Mismatch {
        expected: &'static str,
        found: &'static str,
    },
}

/// Where a switched value waits on the sender's stack. Aligned so that its
/// address has bit 0 clear (see [`Transfer`]).
#[repr(align(8))]
struct ValueSlot<T>(MaybeUninit<T>);

impl Transfer {
    const THROW: usize = 1;

    /// Hands over the value in `slot`, which the receiver moves out.
    #[inline(always)]
    fn value<T>(slot: &mut ValueSlot<T>) -> Transfer {
        let addr = slot as *mut ValueSlot<T> as usize;
        debug_assert!(addr & 1 == 0, "value slots are 8-aligned");
        Transfer(addr)
    }

    fn throw() -> Transfer {
        Transfer(Transfer::THROW)
    }

    fn ending(e: Ending) -> Transfer {
        Transfer(Box::into_raw(Box::new(e)) as usize | 1)
    }

    #[inline(always)]
    fn is_value(&self) -> bool {
        self.0 & 1 == 0
    }

    fn is_throw(&self) -> bool {
        self.0 == Transfer::THROW
    }

    /// The ending this carries, if any.
    fn ending_ref(&self) -> Option<&Ending> {
        if self.is_value() || self.is_throw() {
            return None;
        }
        // SAFETY: with bit 0 set and not THROW, the word is an owned
        // `Box<Ending>` address with bit 0 set (see `ending`); the borrow is
        // tied to `self`, which owns the box.
        Some(unsafe { &*((self.0 & !1) as *const Ending) })
    }

    /// Moves the value out of the sender's slot.
    ///
    /// # Safety
    ///
    /// `self` is a value transfer (`is_value`) whose slot holds a `T`, and
    /// the sender is suspended (so the slot is alive) and will not touch the
    /// slot again.
    #[inline(always)]
    unsafe fn take_value<T>(self) -> T {
        let slot = self.0 as *const ValueSlot<T>;
        mem::forget(self);
        ptr::read((*slot).0.as_ptr())
    }

    /// A value of a type that [`travels_inline`], carried in the word itself
    /// (only by the fast paths, which the receiver tells: see [`SLOW_IN`]
    /// and [`Context::current`]). Such a transfer must be taken apart with
    /// [`Transfer::take_inline`], never dropped or read as a tagged word.
    #[inline(always)]
    fn inline<T: 'static>(value: T) -> Transfer {
        debug_assert!(travels_inline::<T>());
        let mut word = 0usize;
        // SAFETY: `travels_inline::<T>()` (every caller checks it, and it is
        // a constant for each `T`): `T` fits in a word and has no padding, so
        // the word is initialised throughout.
        unsafe { ptr::write_unaligned(&mut word as *mut usize as *mut T, value) };
        Transfer(word)
    }

    /// The value of a [`Transfer::inline`] transfer.
    ///
    /// # Safety
    ///
    /// `self` was made by `Transfer::inline::<T>` (its sender said so, and
    /// checked that the receiver waits for a `T`).
    #[inline(always)]
    unsafe fn take_inline<T: 'static>(self) -> T {
        let word = self.0;
        mem::forget(self);
        ptr::read_unaligned(&word as *const usize as *const T)
    }

    /// A value switched to a main greenlet by a child's fast path
    /// ([`child_to_main`]): in the word itself for a type that
    /// [`travels_inline`], else the address of the sender's slot.
    ///
    /// # Safety
    ///
    /// `self` is such a value, of type `T` (its sender checked that the
    /// receiver waits for a `T`), and its sender is suspended and alive.
    #[inline(always)]
    unsafe fn take_fast<T: 'static>(self) -> T {
        if travels_inline::<T>() {
            self.take_inline::<T>()
        } else {
            self.take_value::<T>()
        }
    }

    /// The word, for a resume (see [`Word`]); the receiver takes it back
    /// with [`Transfer::from_word`].
    #[inline(always)]
    fn into_word(self) -> Word {
        let word = Word(self.0);
        mem::forget(self);
        word
    }

    /// The transfer a resume handed over (see [`Transfer::into_word`]).
    #[inline(always)]
    fn from_word(word: Word) -> Transfer {
        Transfer(word.0)
    }

    /// Turns a non-value transfer into what its receiver gets.
    fn into_ending(self) -> Result<Ending, Transfer> {
        if self.is_value() || self.is_throw() {
            return Err(self);
        }
        let p = (self.0 & !1) as *mut Ending;
        mem::forget(self);
        // SAFETY: as in `ending_ref`; ownership of the box moves out of
        // `self`, which is forgotten.
        Ok(*unsafe { Box::from_raw(p) })
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if !self.is_value() && !self.is_throw() {
            // SAFETY: an ending owns its box (see `ending`).
            drop(unsafe { Box::from_raw((self.0 & !1) as *mut Ending) });
        }
    }
}

/// Whether values of type `T` travel to a main greenlet in the transfer word
/// itself rather than in a slot on the sender's stack: the primitive types,
/// which fit in a word and have no padding. (One store and load fewer on the
/// value's way, which is about a tenth of a round trip.) A constant for each
/// `T`.
#[inline(always)]
fn travels_inline<T: 'static>() -> bool {
    let t = TypeId::of::<T>();
    mem::size_of::<T>() <= mem::size_of::<usize>()
        && (t == TypeId::of::<u64>()
            || t == TypeId::of::<i64>()
            || t == TypeId::of::<usize>()
            || t == TypeId::of::<isize>()
            || t == TypeId::of::<u32>()
            || t == TypeId::of::<i32>()
            || t == TypeId::of::<u16>()
            || t == TypeId::of::<i16>()
            || t == TypeId::of::<u8>()
            || t == TypeId::of::<i8>()
            || t == TypeId::of::<bool>()
            || t == TypeId::of::<char>()
            || t == TypeId::of::<f64>()
            || t == TypeId::of::<f32>()
            || t == TypeId::of::<()>())
}

/// A [`Transfer`] on its way into a coroutine: the bare word, without drop
/// glue, so that a resume keeps no copy of its input for an unwinding that
/// does not happen (corosensei's `resume` panics only for a finished
/// coroutine, which no caller resumes). [`Transfer::into_word`] and
/// [`Transfer::from_word`] convert.
struct Word(usize);

type Coro = Coroutine<Word, Transfer, Transfer, stack::Stack>;
type CoroYielder = Yielder<Word, Transfer>;

/// The private payload that `throw` unwinds a greenlet with. Never escapes a
/// greenlet's entry.
struct ThrowPayload;

/// The state of a greenlet, as returned by [`Greenlet::state`].
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::{self, Greenlet, State};
///
/// let g = Greenlet::new(|_: ()| {
///     assert_eq!(greenlet::current::<()>().state(), State::Running);
/// })?;
/// assert_eq!(g.state(), State::NotStarted);
/// g.switch(()).unwrap();
/// assert_eq!(g.state(), State::Dead);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created; its closure has not been entered yet.
    NotStarted,
    /// Executing now: it is [`current`].
    Running,
    /// Started and waiting in a `switch` (or, for a main greenlet, in the
    /// `switch` that runs the others).
    Suspended,
    /// Its closure returned, panicked or was killed. Switching to it goes to
    /// its first live ancestor.
    Dead,
}

/// The value a parent receives when a child greenlet was killed by
/// [`Greenlet::throw`] or [`Greenlet::kill`] (Python greenlet's
/// `GreenletExit`). It arrives as [`SwitchError::Exit`]: a normal way for a
/// greenlet to end, not a failure.
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::{Greenlet, GreenletExit, SwitchError};
///
/// let g = Greenlet::new(|x: i32| x)?;
/// assert!(matches!(g.throw(), Err(SwitchError::Exit(GreenletExit))));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greenlet exited (killed)")
    }
}

/// Why a [`switch`](Greenlet::switch) returned something other than a
/// value of the expected type.
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::{Greenlet, SwitchError};
///
/// let g = Greenlet::new(|_: ()| -> () { panic!("boom") })?;
/// # std::panic::set_hook(Box::new(|_| {}));
/// match g.switch(()) {
///     Err(SwitchError::Panicked(payload)) => {
///         assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"))
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[non_exhaustive]
pub enum SwitchError {
    /// A greenlet whose result came here was killed ([`Greenlet::throw`],
    /// [`Greenlet::kill`]). This is greenlet's `GreenletExit` value: the
    /// child ended normally, by request.
    Exit(GreenletExit),
    /// A greenlet whose result came here panicked; this is the panic payload,
    /// as `std::thread::JoinHandle::join` returns it.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The value offered is not of the type the receiving greenlet waits for.
    /// When the switch itself offered it, nothing ran.
    TypeMismatch {
        /// The type the receiver expects.
        expected: &'static str,
        /// The type that was offered.
        found: &'static str,
    },
    /// The greenlet belongs to another thread or green thread, or its thread
    /// is exiting; nothing ran.
    WrongThread,
    /// `throw` or `kill` aimed at a main greenlet, which cannot be unwound;
    /// nothing ran.
    MainGreenlet,
    /// The running greenlet is being unwound because its last handle was
    /// dropped, and may no longer switch.
    Dying,
    /// `switch` was called on a stack that is not the running greenlet's
    /// (from inside a raw coroutine that greenhouse does not manage); nothing
    /// ran.
    ForeignStack,
}

impl SwitchError {
    /// Whether this is [`SwitchError::Exit`]: the greenlet was killed, which
    /// is an expected ending rather than a failure.
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Greenlet::new(|x: i32| x)?;
    /// assert!(g.throw().unwrap_err().is_exit());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_exit(&self) -> bool {
        matches!(self, SwitchError::Exit(_))
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

impl fmt::Debug for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Exit(e) => f.debug_tuple("Exit").field(e).finish(),
            SwitchError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(&**p))
                .finish(),
            SwitchError::TypeMismatch { expected, found } => f
                .debug_struct("TypeMismatch")
                .field("expected", expected)
                .field("found", found)
                .finish(),
            SwitchError::WrongThread => f.write_str("WrongThread"),
            SwitchError::MainGreenlet => f.write_str("MainGreenlet"),
            SwitchError::Dying => f.write_str("Dying"),
            SwitchError::ForeignStack => f.write_str("ForeignStack"),
        }
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Exit(e) => e.fmt(f),
            SwitchError::Panicked(p) => {
                write!(f, "greenlet panicked: {}", panic_message(&**p))
            }
            SwitchError::TypeMismatch { expected, found } => write!(
                f,
                "greenlet value type mismatch: the receiver expects `{expected}`, got `{found}`"
            ),
            SwitchError::WrongThread => f.write_str(
                "the greenlet belongs to another thread or green thread (or its thread is exiting)",
            ),
            SwitchError::MainGreenlet => f.write_str("a main greenlet cannot be thrown into"),
            SwitchError::Dying => {
                f.write_str("a greenlet being dropped cannot switch while it unwinds")
            }
            SwitchError::ForeignStack => f.write_str(
                "switch called from a stack that is not the running greenlet's \
                 (inside a raw coroutine?)",
            ),
        }
    }
}

impl Error for SwitchError {}

/// Why [`Greenlet::set_parent`] refused a new parent.
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::{Greenlet, ParentError};
///
/// let a = Greenlet::new(|x: i32| x)?;
/// assert_eq!(a.set_parent(&a), Err(ParentError::Cycle));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentError {
    /// The greenlet would become its own ancestor.
    Cycle,
    /// The new parent belongs to another thread or green thread.
    WrongThread,
    /// A main greenlet has no parent and cannot be given one.
    MainGreenlet,
}

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParentError::Cycle => "cyclic parent chain: a greenlet cannot be its own ancestor",
            ParentError::WrongThread => {
                "the parent belongs to another thread or green thread than the greenlet"
            }
            ParentError::MainGreenlet => "a main greenlet cannot have a parent",
        })
    }
}

impl Error for ParentError {}

const UNNAMED: &str = "<unnamed greenlet>";

/// One greenlet, shared by its handles, its children (as their parent) and
/// the trampoline (while resumed).
struct Inner {
    /// The context (thread or green thread) it belongs to: the address of
    /// its `Context`, which is also what the thread-local [`STATE`] holds
    /// while that context runs, so that "belongs to the running context" is
    /// one comparison with the thread-local. The address stays unique while
    /// the greenlet lives: the main greenlet's [`Inner::owner`] keeps the
    /// context's allocation, and every other greenlet keeps its context's
    /// main greenlet alive through its parent chain.
    ctx: usize,
    /// Its context (whose allocation a main greenlet keeps, see `ctx`), to
    /// tell whether it runs (see [`Inner::state`]).
    owner: Weak<Context>,
    /// Its state and the type of value its pending switch (or its closure)
    /// waits for, in one word: [`type_bits`] of that type | [`MAIN`] for a
    /// main greenlet | state code. A switch compares it with the gate a
    /// suspended greenlet waiting for the switch's own type has (its handle
    /// keeps that): one comparison checks state and type, and tells a main
    /// target from another (the fast path). Only the greenlet itself changes
    /// the type, when it switches away (and at creation).
    ///
    /// A started greenlet's state code is `SUSPENDED` ("waiting in a switch
    /// for this type") while it lives, also while it runs: whether it runs
    /// is whether it is its context's `current` (see [`Inner::state`]),
    /// which is kept anyway, so no switch stores a state.
    gate: Cell<u64>,
    /// `None` only for a main greenlet.
    parent: RefCell<Option<Rc<Inner>>>,
    /// `None` for a main greenlet and once finished.
    coro: RefCell<Option<Coro>>,
    /// Set when the coroutine starts; points into the coroutine's own stack
    /// and is valid until the coroutine finishes.
    yielder: Cell<*const CoroYielder>,
    /// What the overflow handler is told while this greenlet runs, built once
    /// at creation (its name points into `name` or is [`UNNAMED`]). `None`
    /// for a main greenlet.
    record: Option<StackRecord>,
    /// The usable stack range as `(low, size)` less its lowest
    /// [`SUSPEND_MARGIN`] bytes, to check that a switch runs on this
    /// greenlet's stack. `(0, 0)` for a main greenlet and for a
    /// dropped greenlet's stand-in, so that no stack passes the check: the
    /// fast path's child side is closed to them.
    range: (usize, usize),
    name: Option<Box<str>>,
    /// Set by a child suspending by the slow path: the greenlet the
    /// trampoline must switch to next. Not counted: the child's `switch`
    /// borrows a handle to it (or to a dead descendant, whose parent chain
    /// owns it) while suspended, and the trampoline reads it (and counts it,
    /// unless it is the main greenlet) the moment the child has suspended.
    /// Not set (stale) when the child's fast path switched a value to the
    /// main greenlet: that one is told apart first, by `current` (see
    /// [`Resumed`]).
    next: Cell<*const Inner>,
    /// Being unwound because its last handle was dropped.
    dying: bool,
}

/// State codes in the low two bits of [`Inner::gate`]. No code says
/// "running": a started, live greenlet's code is `SUSPENDED` (waiting in a
/// switch, or running: whether it is its context's `current` tells, see
/// [`Inner::state`]), so that no switch stores a state before or after a
/// resume.
const NOT_STARTED: u64 = 0;
const SUSPENDED: u64 = 2;
const DEAD: u64 = 3;
/// Bit 2 of [`Inner::gate`], set by every resume but the main greenlet's
/// fast path ([`resume_greenlet`]): what the greenlet receives is a slot
/// value or an ending, not a value of a type that [`travels_inline`] in the
/// word itself ([`Transfer::inline`]), which is what the fast path sends
/// such a type as. Cleared by the greenlet's own next switch (which the
/// fast path's gate check waits for).
const SLOW_IN: u64 = 4;
/// Bit 3 of [`Inner::gate`]: set in a main greenlet's, never in another's.
const MAIN: u64 = 8;
/// The bits of a gate below the type number ([`type_bits`]).
const LOW_BITS: u64 = 15;

/// The value types that greenlets have waited for, numbered in the order
/// they were first seen (process-wide, so that a number means one type on
/// every thread). [`type_bits`] is the number shifted into a gate.
static TYPES: Mutex<Vec<(TypeId, TypeName)>> = Mutex::new(Vec::new());

/// A type's `type_name`, called only for error messages.
type TypeName = fn() -> &'static str;

thread_local! {
    /// The last type [`type_bits`] looked up and its bits: handles are made
    /// far more often than new types are seen.
    static LAST_TYPE: Cell<Option<(TypeId, u64)>> = const { Cell::new(None) };
}

/// `T`'s number in [`TYPES`], shifted into the type part of a gate.
#[inline]
fn type_bits<T: 'static>() -> u64 {
    let id = TypeId::of::<T>();
    if let Some((last, bits)) = LAST_TYPE.with(Cell::get) {
        if last == id {
            return bits;
        }
    }
    let bits = register_type(id, type_name::<T>);
    LAST_TYPE.with(|c| c.set(Some((id, bits))));
    bits
}

#[cold]
fn register_type(id: TypeId, name: TypeName) -> u64 {
    let mut types = TYPES.lock().unwrap_or_else(|e| e.into_inner());
    let n = match types.iter().position(|&(t, _)| t == id) {
        Some(n) => n,
        None => {
            types.push((id, name));
            types.len() - 1
        }
    };
    (n as u64) << 4
}

/// The type whose [`type_bits`] are in `gate`, and its name.
fn type_of_gate(gate: u64) -> (TypeId, &'static str) {
    let types = TYPES.lock().unwrap_or_else(|e| e.into_inner());
    let (id, name) = types[(gate >> 4) as usize];
    (id, name())
}

impl Inner {
    #[inline(always)]
    fn is_main(&self) -> bool {
        self.record.is_none()
    }

    /// The key of the context it belongs to (see [`Inner::ctx`]).
    #[inline(always)]
    fn ctx(&self) -> usize {
        self.ctx
    }

    fn state(&self) -> State {
        match self.gate.get() & 3 {
            NOT_STARTED => State::NotStarted,
            DEAD => State::Dead,
            _ if self.runs() => State::Running,
            _ => State::Suspended,
        }
    }

    /// Whether this started, live greenlet runs: is its context's
    /// `current`. Once its context is gone, its main greenlet ran last and
    /// the others are suspended.
    fn runs(&self) -> bool {
        match self.owner.upgrade() {
            Some(ctx) => ptr::eq(ctx.current.get(), self),
            None => self.is_main(),
        }
    }

    #[inline(always)]
    fn is_dead(&self) -> bool {
        self.gate.get() & 3 == DEAD
    }

    #[inline(always)]
    fn set_state(&self, code: u64) {
        self.gate.set(self.gate.get() & !LOW_BITS | code);
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(UNNAMED)
    }

    /// The first greenlet from `this` up its parent chain that is not dead.
    /// Chains end in a main greenlet, which never dies.
    #[inline(always)]
    fn first_live(this: &Rc<Inner>) -> Rc<Inner> {
        if !this.is_dead() {
            return this.clone();
        }
        Inner::first_live_ancestor(this)
    }

    #[cold]
    fn first_live_ancestor(this: &Rc<Inner>) -> Rc<Inner> {
        let mut g = this.clone();
        while g.is_dead() {
            let parent = g.parent.borrow().clone();
            match parent {
                Some(p) => g = p,
                None => break,
            }
        }
        g
    }

    fn parent_or_self(this: &Rc<Inner>) -> Rc<Inner> {
        this.parent.borrow().clone().unwrap_or_else(|| this.clone())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Some(mut coro) = self.coro.get_mut().take() else {
            return;
        };
        if self.state() == State::NotStarted {
            // Drops the closure (and what it captured) without running it;
            // corosensei does this on the current stack.
            coro.force_unwind();
            stack::give(coro.into_stack());
            return;
        }
        // Suspended: unwind it. The handles are gone, so the unwinding runs
        // as a stand-in greenlet (same stack, name and context) that is
        // current while it unwinds and cannot switch away.
        //
        // Its pending switch still reads this greenlet's gate when it
        // resumes: tell it that what arrives is not a fast-path value (the
        // stand-in's resume marks only the stand-in's gate).
        *self.gate.get_mut() |= SLOW_IN;
        let ghost = Rc::new(Inner {
            ctx: self.ctx,
            owner: self.owner.clone(),
            gate: Cell::new(self.gate.get() & !LOW_BITS | SUSPENDED),
            parent: RefCell::new(None),
            coro: RefCell::new(Some(coro)),
            yielder: Cell::new(self.yielder.get()),
            record: self.record,
            // No stack passes the fast path's stack check: the stand-in's
            // switches take the slow path, which refuses them.
            range: (0, 0),
            // Moving the box keeps the name's bytes where `record` points.
            name: self.name.take(),
            next: Cell::new(ptr::null()),
            dying: true,
        });
        // It is current in whichever context runs the drop, so that a switch
        // from its destructors is refused there (`SwitchError::Dying`). (While
        // the thread's locals are being destroyed there may be no context to
        // borrow: a throwaway one does.)
        let ctx = context().unwrap_or_else(|_| Context::new(None));
        let (prev, main_gate) = (ctx.current.get(), ctx.main.gate.get());
        // A dying greenlet's switch unwinds again or fails; it never
        // suspends, but if it somehow did, keep unwinding. Whatever it ends
        // with (normally Exit) has nobody to go to.
        {
            // `ctx` may be a throwaway context that `running_record` cannot
            // see: install the stand-in's overflow record the long way.
            let _record = ghost.record.as_ref().map(OnRecord::enter);
            let mut transfer = Transfer::throw();
            loop {
                match resume_greenlet(&ctx, &ghost, transfer) {
                    Resumed::Return(out) => break drop(out),
                    // Only a fast path sends `ToMain`, and the stand-in's
                    // switches never take one (see `range` above); its word
                    // might be an inline value, which must not be dropped as
                    // a tagged one.
                    Resumed::ToMain(out) => mem::forget(out),
                    // Nothing to hand it to.
                    Resumed::Yield(out) => drop(out),
                }
                transfer = Transfer::throw();
            }
        }
        ctx.current.set(prev);
        ctx.main.gate.set(main_gate);
        ghost.set_state(DEAD);
        let coro = ghost.coro.borrow_mut().take();
        if let Some(coro) = coro {
            stack::give(coro.into_stack());
        }
    }
}

/// The greenlet state of one thread or green thread. Its address is the
/// key that tells its greenlets (see [`Inner::ctx`]).
struct Context {
    /// A number for `Debug`.
    id: u64,
    /// The implicit main greenlet.
    main: Rc<Inner>,
    /// The overflow record of the stack the main greenlet runs on when that
    /// is a generator body's (see [`ThreadState::generator_body`]), so that
    /// the overflow handler finds it through the context like a greenlet's
    /// (`running_record`); `None` otherwise.
    record: Option<StackRecord>,
    /// The running greenlet. Not counted: it is always kept alive by someone
    /// else — `main` above, the trampoline's `target` while it resumes a
    /// greenlet, or `Inner::drop`'s stand-in while that one unwinds — and
    /// every place that changes who that is sets `current` first.
    ///
    /// Set by the side that gives control away: the main greenlet sets it
    /// to the greenlet it resumes; a child's fast path sets it back to the
    /// main greenlet as it suspends with a value for it, which is how the
    /// main greenlet tells that value from every other way a resume can end
    /// (see [`Resumed`]); anything else finds it still naming the child and
    /// sets it back after the resume.
    current: Cell<*const Inner>,
}

impl Context {
    fn new(record: Option<StackRecord>) -> Rc<Context> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Rc::new_cyclic(|owner: &Weak<Context>| {
            let main = Rc::new(Inner {
                ctx: owner.as_ptr() as usize,
                owner: owner.clone(),
                gate: Cell::new(type_bits::<()>() | MAIN | SUSPENDED),
                parent: RefCell::new(None),
                coro: RefCell::new(None),
                yielder: Cell::new(ptr::null()),
                record: None,
                range: (0, 0),
                name: Some("<main greenlet>".into()),
                next: Cell::new(ptr::null()),
                dying: false,
            });
            Context {
                id,
                current: Cell::new(Rc::as_ptr(&main)),
                main,
                record,
            }
        })
    }

    /// The key its greenlets have in [`Inner::ctx`].
    #[inline(always)]
    fn key(&self) -> usize {
        self as *const Context as usize
    }

    /// The running greenlet.
    #[inline(always)]
    fn current(&self) -> &Inner {
        // SAFETY: `current` always points to a live greenlet (see the field).
        unsafe { &*self.current.get() }
    }

    /// A counted handle to this context.
    #[inline(always)]
    fn counted(&self) -> Rc<Context> {
        let p: *const Context = self;
        // SAFETY: every Context lives in an Rc (`Context::new` is the only
        // constructor); the new count is handed to the returned Rc.
        unsafe {
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        }
    }

    /// A counted handle to the running greenlet.
    fn current_rc(&self) -> Rc<Inner> {
        let p = self.current.get();
        // SAFETY: `current` points to a live greenlet owned by an `Rc` (see
        // the field); the new count is handed to the returned `Rc`.
        unsafe {
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        }
    }
}

/// All greenlet state of the running thread (or green thread): its main
/// greenlet and which greenlet is current. Opaque; the runtime keeps one per
/// green thread and swaps it in with [`swap_thread_state`] when it resumes
/// that green thread. The default value is empty and costs no allocation; the
/// main greenlet is made when a greenlet is first used.
///
/// Represented exactly as the thread-local slot holds it — a pointer owning
/// one strong count of an `Rc<Context>`, or null — so swapping it in and out
/// is two pointer moves.
pub(crate) struct ThreadState(*const Context);

impl Default for ThreadState {
    fn default() -> ThreadState {
        ThreadState(ptr::null())
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // SAFETY: a ThreadState's pointer is null or owns one strong count.
        drop(unsafe { into_owned(self.0) });
    }
}

impl ThreadState {
    /// Swaps this state with the running thread's: the runtime calls it
    /// once to install a green thread's state for a resume and once more to
    /// put the worker's back. The same rule as [`swap_thread_state`]
    /// applies.
    #[inline(always)]
    pub(crate) fn swap_with_running(&mut self) {
        self.0 = STATE.with(|s| s.replace(self.0));
    }

    /// A generator body's state: a context of its own whose main greenlet
    /// is the body, carrying the record of the generator's stack so that the
    /// overflow handler finds it while the body runs (see
    /// [`Context::record`]) without the resume installing anything else.
    pub(crate) fn generator_body(record: StackRecord) -> ThreadState {
        stack::set_record_finder(running_record);
        ThreadState(Rc::into_raw(Context::new(Some(record))))
    }

    /// Whether this is the empty state (no context made yet).
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_null()
    }

    /// Installs this state (a generator body's) as the running thread's
    /// until the returned guard is dropped, which puts back the state it
    /// replaced. Nothing is stored into `self`: the guard keeps the outer
    /// state, so a resume costs one thread-local replace and one store.
    ///
    /// Whoever installs another state while this one is installed puts it
    /// back before control returns here (a nested generator's guard, the
    /// runtime between green threads), so the guard restores exactly what
    /// was there; the counts stay where they were (`self` keeps the body's,
    /// the guard the outer one).
    #[inline(always)]
    pub(crate) fn install(&self) -> Installed<'_> {
        Installed {
            outer: STATE.with(|s| s.replace(self.0)),
            _state: PhantomData,
        }
    }
}

/// A generator body's state installed by [`ThreadState::install`]; puts the
/// outer state back when dropped (also when the body's panic unwinds).
pub(crate) struct Installed<'a> {
    /// The state that was running, owning its count while it is out.
    outer: *const Context,
    _state: PhantomData<&'a ThreadState>,
}

impl Drop for Installed<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        STATE.with(|s| s.set(self.outer));
    }
}

impl fmt::Debug for ThreadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: non-null means it owns a count, so the context is alive.
        let id = (!self.0.is_null()).then(|| unsafe { (*self.0).id });
        f.debug_tuple("ThreadState").field(&id).finish()
    }
}

thread_local! {
    /// The running context: a pointer owning one strong count of an
    /// `Rc<Context>` (from `Rc::into_raw`), or null before first use. A raw
    /// pointer in a const thread-local without a destructor makes every
    /// access a plain thread-pointer load; `CLEANUP` releases it at thread
    /// exit.
    static STATE: Cell<*const Context> = const { Cell::new(ptr::null()) };
    static CLEANUP: StateCleanup = const { StateCleanup };
}

/// Drops the thread's context at thread exit (registered when the context is
/// first made).
struct StateCleanup;

impl Drop for StateCleanup {
    fn drop(&mut self) {
        drop(ThreadState(STATE.with(|s| s.replace(ptr::null()))));
    }
}

/// Turns the STATE representation back into an owned `Option<Rc>`.
///
/// # Safety
///
/// `p` is null or owns one strong count of an `Rc<Context>`, which the
/// caller takes over.
unsafe fn into_owned(p: *const Context) -> Option<Rc<Context>> {
    if p.is_null() {
        None
    } else {
        Some(Rc::from_raw(p))
    }
}

/// Installs `new` as the running thread's greenlet state and returns the one
/// it replaces. The runtime calls it when it resumes or suspends a green
/// thread. Must not be called while a non-main greenlet of the state being
/// replaced is running (the runtime guarantees that: a green thread only
/// switches away from its own stack, where its main greenlet runs; see
/// `runtime::park`).
#[inline]
pub(crate) fn swap_thread_state(mut new: ThreadState) -> ThreadState {
    new.swap_with_running();
    new
}

/// Whether the running thread has no greenlet state installed (it has not
/// used greenlets since its state was last swapped out): swapping in an
/// empty state would change nothing.
#[inline]
pub(crate) fn thread_state_is_empty() -> bool {
    STATE.with(|s| s.get().is_null())
}

/// The running context, created on first use. Fails only while the thread's
/// locals are being destroyed.
///
/// The pointer stays valid while the caller runs: STATE owns a count of it,
/// and whoever swaps STATE (the runtime between green threads, a generator
/// around a resume) puts it back before control returns to code that was
/// running under it, without dropping it.
#[inline(always)]
fn context_ptr() -> Result<*const Context, SwitchError> {
    let p = STATE.with(|s| s.get());
    if p.is_null() {
        return new_context();
    }
    Ok(p)
}

#[cold]
fn new_context() -> Result<*const Context, SwitchError> {
    // Registering the cleanup fails once the thread's locals are being
    // destroyed: then no context can be made.
    CLEANUP
        .try_with(|_| ())
        .map_err(|_| SwitchError::WrongThread)?;
    let p = Rc::into_raw(Context::new(None));
    STATE.with(|s| s.set(p));
    Ok(p)
}

/// A counted handle to the running context: the one the trampoline holds
/// while it runs other greenlets' code, so nothing they do can free it.
fn context() -> Result<Rc<Context>, SwitchError> {
    let p = context_ptr()?;
    // SAFETY: STATE's pointer owns a count (see `context_ptr`); the new count
    // is handed to the returned Rc.
    unsafe {
        Rc::increment_strong_count(p);
        Ok(Rc::from_raw(p))
    }
}

/// The overflow handler's way to the record of the running greenlet's stack
/// (see `stack::set_record_finder`): a child greenlet's own, else the stack
/// of the context's main greenlet when that is a generator body's, else
/// `None`. Only reads memory, as a signal handler may.
fn running_record() -> Option<StackRecord> {
    let ctx = STATE.try_with(|s| s.get()).ok()?;
    // SAFETY: STATE is null or owns a count of a live context, and its
    // `current` points to a live greenlet (see `Context::current`); both are
    // written by this thread only, which the signal interrupted.
    let ctx = unsafe { ctx.as_ref() }?;
    ctx.current().record.or(ctx.record)
}

/// Returns a handle to the running greenlet: the main greenlet of this thread
/// (or green thread) when no other is running. `T` is the value type the
/// handle switches with (see the [module docs](self#values-and-types)).
///
/// # Panics
///
/// Panics if called while the thread's thread-locals are being destroyed.
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::{self, Greenlet};
///
/// let main = greenlet::current::<i32>();
/// assert!(main.is_main());
/// let g = Greenlet::new(move |x: i32| {
///     assert!(greenlet::current::<i32>().parent().unwrap() == main);
///     x
/// })?;
/// g.switch(0).unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current<T: 'static>() -> Greenlet<T> {
    let ctx = context_ptr()
        .expect("greenhouse::greenlet::current() called during thread-local destruction");
    // SAFETY: STATE's pointer is alive while we run (see `context_ptr`).
    Greenlet::from_inner(unsafe { (*ctx).current_rc() })
}

/// A handle to a greenlet that sends and receives values of type `T`.
///
/// Cloning a handle is cheap and gives another handle to the same greenlet;
/// `==` tells whether two handles refer to the same greenlet. The handle is
/// `!Send`: a greenlet stays on the thread that made it. When the last handle
/// to a suspended greenlet is dropped, the greenlet is unwound. See the
/// [module docs](self) for the rules.
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::{self, Greenlet};
///
/// let echo = Greenlet::new(|mut x: String| {
///     let main = greenlet::current::<String>().parent().unwrap();
///     loop {
///         x = main.switch(x.to_uppercase()).unwrap();
///     }
/// })?;
/// assert_eq!(echo.switch("a".into()).unwrap(), "A");
/// assert_eq!(echo.switch("b".into()).unwrap(), "B");
/// drop(echo); // unwinds the loop
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Greenlet<T: 'static> {
    inner: Rc<Inner>,
    /// The gate of a greenlet suspended in a switch for a `T`:
    /// [`type_bits`] of `T` | `SUSPENDED`, looked up once per handle.
    waits: u64,
    _values: PhantomData<fn(T) -> T>,
}

impl<T: 'static> Clone for Greenlet<T> {
    fn clone(&self) -> Self {
        Greenlet {
            inner: self.inner.clone(),
            waits: self.waits,
            _values: PhantomData,
        }
    }
}

impl<T: 'static> PartialEq for Greenlet<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T: 'static> Eq for Greenlet<T> {}

impl<T: 'static> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("name", &self.inner.name())
            .field("state", &self.inner.state())
            .finish()
    }
}

/// Configures a greenlet before it is created: its name (used in the stack
/// overflow report) and stack size. Mirrors `std::thread::Builder`.
///
/// # Example
///
/// ```
/// use greenhouse::greenlet::Builder;
///
/// let g = Builder::new()
///     .name("parser")
///     .stack_size(1024 * 1024)
///     .create(|n: u64| n + 1)?;
/// assert_eq!(g.name(), Some("parser"));
/// assert_eq!(g.switch(1).unwrap(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the default stack size
    /// ([`stack::default_size`]).
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Builder::new().create(|x: i32| x)?;
    /// assert_eq!(g.name(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet. The name appears in its `Debug` output and in the
    /// report if it overflows its stack.
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Builder::new().name("worker").create(|x: i32| x)?;
    /// assert_eq!(g.name(), Some("worker"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes, rounded up to whole pages and at least
    /// [`stack::MIN_STACK_SIZE`].
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Builder::new()
    ///     .stack_size(64 * 1024)
    ///     .create(|x: i32| x)?;
    /// assert_eq!(g.switch(7).unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Creates the greenlet; it starts on the first switch into it. Its
    /// parent is the running greenlet.
    ///
    /// # Errors
    ///
    /// Fails if no stack can be mapped: most often because the process hit
    /// the kernel's memory-map limit (`vm.max_map_count`) or its
    /// address-space limit; the error message says which and how to raise
    /// it. Also fails while the thread is exiting.
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Builder::new().create(|x: i32| x * 3)?;
    /// assert_eq!(g.switch(2).unwrap(), 6);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create<T, F>(self, f: F) -> io::Result<Greenlet<T>>
    where
        T: 'static,
        F: FnOnce(T) -> T + 'static,
    {
        let ctx = context().map_err(|_| {
            io::Error::other("greenhouse: cannot create a greenlet while the thread is exiting")
        })?;
        let stack = stack::take(self.stack_size.unwrap_or_else(stack::default_size))?;
        stack::set_record_finder(running_record);
        let name = self.name.map(String::into_boxed_str);
        // The record points at the name's bytes, which stay put when the
        // box moves into the greenlet below.
        let record = stack.info().record(name.as_deref().unwrap_or(UNNAMED));
        let low = stack.limit().get();
        // The fast path's stack range (see `SUSPEND_MARGIN`).
        let range = (
            low + SUSPEND_MARGIN,
            stack.base().get() - low - SUSPEND_MARGIN,
        );
        let coro = Coroutine::with_stack(stack, move |y: &CoroYielder, first: Word| {
            entry(y, Transfer::from_word(first), f)
        });
        let inner = Rc::new(Inner {
            ctx: ctx.key(),
            owner: Rc::downgrade(&ctx),
            gate: Cell::new(type_bits::<T>() | NOT_STARTED),
            parent: RefCell::new(Some(ctx.current_rc())),
            coro: RefCell::new(Some(coro)),
            yielder: Cell::new(ptr::null()),
            record: Some(record),
            range,
            name,
            next: Cell::new(ptr::null()),
            dying: false,
        });
        Ok(Greenlet::from_inner(inner))
    }
}

/// A greenlet's first frame: records its yielder, runs `f` and turns how it
/// ended into what its parent receives.
fn entry<T: 'static, F: FnOnce(T) -> T>(y: &CoroYielder, first: Transfer, f: F) -> Transfer {
    // The trampoline made this greenlet current before resuming it.
    if let Ok(ctx) = context_ptr() {
        // SAFETY: STATE's pointer is alive while we run (see `context_ptr`).
        unsafe { (*ctx).current().yielder.set(y) };
    }
    let arg = match receive::<T>(first) {
        Ok(arg) => arg,
        // The trampoline only starts a greenlet with a value of its type;
        // should that ever fail, end as if killed rather than panic here.
        Err(_) => return Transfer::ending(Ending::Exit),
    };
    Transfer::ending(
        match panic::catch_unwind(AssertUnwindSafe(move || f(arg))) {
            Ok(v) => Ending::Returned {
                value: Box::new(v),
                name: type_name::<T>(),
            },
            Err(p) if p.is::<ThrowPayload>() => Ending::Exit,
            Err(p) => Ending::Panic(p),
        },
    )
}

/// Runs `slow`, an out-of-line slow path, so that its result need not be
/// merged in memory with an inlined fast path's `Ok(value)`.
///
/// A `Result<T, SwitchError>` is returned through memory (`SwitchError` is
/// five words), so where an inlined fast path's `Ok(v)` and a slow path's
/// result meet, the compiler built the `Result` on the stack and the
/// caller's `unwrap` read it back: two store-to-load round trips on the
/// value's path in every switch, which is most of a switch's latency. Here
/// the slow path hands back a `Result<T, Box<SwitchError>>` (in registers
/// for small `T`; the box is allocated only for an error), and the
/// `Result` is built after the merge. No out-parameter: the fast path
/// keeps no stack address live for the slow one (the context switch
/// clobbers the registers that would hold it, so it was rematerialised on
/// every switch).
#[inline(always)]
fn in_registers<T>(slow: impl FnOnce() -> Result<T, SwitchError>) -> Result<T, SwitchError> {
    match split(slow) {
        Ok(v) => Ok(v),
        Err(e) => Err(*e),
    }
}

/// The out-of-line half of [`in_registers`]: runs the slow path (inlined
/// here) and boxes its error.
#[inline(never)]
fn split<T>(slow: impl FnOnce() -> Result<T, SwitchError>) -> Result<T, Box<SwitchError>> {
    slow().map_err(Box::new)
}

/// Turns what a pending switch received into its result.
#[inline(always)]
fn receive<T: 'static>(got: Transfer) -> Result<T, SwitchError> {
    if got.is_value() {
        // SAFETY: a value transfer points to the sender's slot, on its
        // suspended stack (the trampoline keeps the sender alive until its
        // value has been taken). The slot holds a `T`: the sender checked
        // that the receiver's gate says it waits for its own type, and the
        // receiver (which set that to `T` before it suspended, or at creation)
        // is the one receiving. Nothing else reads the slot.
        return Ok(unsafe { got.take_value::<T>() });
    }
    in_registers(move || receive_other(got))
}

/// [`receive`] for everything but a switched value.
#[cold]
fn receive_other<T: 'static>(got: Transfer) -> Result<T, SwitchError> {
    match got.into_ending() {
        Ok(Ending::Returned { value, name }) => {
            value
                .downcast::<T>()
                .map(|b| *b)
                .map_err(|_| SwitchError::TypeMismatch {
                    expected: type_name::<T>(),
                    found: name,
                })
        }
        Ok(Ending::Exit) => Err(SwitchError::Exit(GreenletExit)),
        Ok(Ending::Panic(p)) => Err(SwitchError::Panicked(p)),
        Ok(Ending::Mismatch { expected, found }) => {
            Err(SwitchError::TypeMismatch { expected, found })
        }
        // THROW (values were handled by `receive`).
        Err(_) => panic::resume_unwind(Box::new(ThrowPayload)),
    }
}

/// Whether the caller runs on `current`'s own stack (always true for a main
/// greenlet). A child that switches from inside some raw coroutine it
/// resumed would suspend the wrong coroutine. The slow paths' check: the
/// whole usable stack.
#[inline(always)]
fn on_own_stack(current: &Inner) -> bool {
    if current.is_main() {
        return true;
    }
    let (low, size) = current.range;
    size != 0 && stack_pointer().wrapping_sub(low - SUSPEND_MARGIN) < size + SUSPEND_MARGIN
}

/// The fast path's stack check, for a greenlet known not to be a main one:
/// one subtraction and one comparison. False for a main greenlet and a
/// dropped greenlet's stand-in (empty range), and in the lowest
/// [`SUSPEND_MARGIN`] bytes of the stack.
#[inline(always)]
fn on_child_stack(current: &Inner) -> bool {
    let (low, size) = current.range;
    stack_pointer().wrapping_sub(low) < size
}

/// The lowest bytes of a greenlet's usable stack where the fast path's
/// stack check fails, sending the switch to the slow path. The fast path's
/// child side makes the main greenlet current before corosensei's suspend
/// pushes its few words on the child's stack ([`child_to_main`]); with this
/// much room left those pushes cannot reach the guard page, so a stack
/// overflow is never taken for the main greenlet's (the slow path leaves
/// the child current until the stacks have switched).
const SUSPEND_MARGIN: usize = 256;

/// The stack pointer. (Within one function it does not change after the
/// prologue, so the compiler may keep it in a register across a loop.)
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; touches no memory.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; touches no memory.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // A local's address: within the frame, at most its size above the
        // stack pointer (the margin above is then an estimate).
        let probe = 0u8;
        sp = std::hint::black_box(&probe) as *const u8 as usize;
    }
    sp
}

/// Hands `transfer` from the running greenlet `current` to `target`, a
/// different live greenlet of the running context `ctx` that the caller
/// keeps alive for the call, and returns what
/// `current`, which waits for a `T`, receives when it is next switched to.
/// The slow paths' way (`switch_slow`, `throw`); the fast path is in
/// [`Greenlet::switch`].
///
/// Cannot fail: the callers have checked everything that could refuse the
/// switch (thread, type, dying, stack) before putting a value in a slot, so
/// a value handed here is always received.
#[inline(always)]
fn hand_over<T: 'static>(
    ctx: &Context,
    current: &Inner,
    target: &Inner,
    transfer: Transfer,
    waits: u64,
) -> Result<T, SwitchError> {
    if current.is_main() {
        // Waits for a `T` from now on.
        current.gate.set(waits | MAIN);
        return trampoline(ctx, counted(target), transfer, None);
    }
    current.next.set(target);
    // `current` stays the child: the trampoline sets it back and reads
    // `next`.
    child_wait(current, transfer, waits)
}

/// A child's side of a switch: suspends to the trampoline with `transfer`,
/// waiting for a `T` (`waits` is its gate while it does), and returns what it
/// receives when it is resumed. The caller has set what tells the
/// trampoline where `transfer` goes (`next`, or `current` for the fast
/// path's value to the main greenlet).
///
/// Inlined into `switch`, and `switch` is `#[inline(always)]` in optimised
/// builds (a hint was not enough: the compiler declined it in the
/// benchmark), so that a child's suspend sits in the caller's own code.
/// corosensei resumes a coroutine with a `call` and suspends with the
/// matching `ret`; when the suspend point is in a function of its own,
/// resuming it is followed by an extra `ret` (out of that function) that
/// the return-stack predictor never saw the `call` for, and it and the
/// following returns on both stacks mispredict.
#[inline(always)]
fn child_wait<T: 'static>(
    current: &Inner,
    transfer: Transfer,
    waits: u64,
) -> Result<T, SwitchError> {
    let yielder = current.yielder.get();
    current.gate.set(waits);
    // SAFETY: `yielder` was set by this greenlet's entry and points into its
    // own coroutine stack, which lives until the coroutine returns; the
    // coroutine is running (the caller checked that we are on its stack), so
    // it has not returned and the yielder is the one linked to its resumer.
    let got = Transfer::from_word(unsafe { (*yielder).suspend(transfer) });
    if travels_inline::<T>() && current.gate.get() & SLOW_IN == 0 {
        // SAFETY: without SLOW_IN, the main greenlet's fast path resumed us
        // (the only resume that does not set it), with a `Transfer::inline`
        // for a `T` that travels inline, after checking that we wait for a
        // `T`.
        return Ok(unsafe { got.take_inline::<T>() });
    }
    receive(got)
}

/// The fast path's child side: `current`, a child running on its own
/// stack, switches `transfer` (a value of the type the main greenlet `main`
/// waits for, in that type's fast encoding: see [`Transfer::take_fast`]) to
/// its context's main greenlet. Making `main` current again is what tells
/// the main greenlet that a value for it arrived (see [`Resumed`]), so the
/// main greenlet sets nothing after the resume.
#[inline(always)]
fn child_to_main<T: 'static>(
    ctx: &Context,
    current: &Inner,
    main: &Inner,
    transfer: Transfer,
    waits: u64,
) -> Result<T, SwitchError> {
    // From here until the suspend has switched stacks, the overflow handler
    // finds the main greenlet, not this one; the suspend pushes a few words
    // on this stack in between, which the stack check's margin has room for
    // (see `SUSPEND_MARGIN`).
    ctx.current.set(main);
    child_wait(current, transfer, waits)
}

/// [`Greenlet::switch`] with every check spelled out, for all that the
/// fast path does not take: a context to create, another context's
/// greenlet, a dying stand-in, dead, unstarted or running targets, a type
/// mismatch, a foreign stack. `target` is the handle's greenlet (kept alive
/// by the handle for the call), `waits` the handle's gate. Runs out of line
/// (see [`in_registers`]).
#[inline(always)]
fn switch_slow<T: 'static>(target: &Inner, waits: u64, value: T) -> Result<T, SwitchError> {
    // SAFETY: STATE's pointer is alive while we run (see `context_ptr`).
    let ctx = unsafe { &*context_ptr()? };
    if target.ctx() != ctx.key() {
        return Err(SwitchError::WrongThread);
    }
    let current = ctx.current();
    if current.dying {
        return dying_switch();
    }
    // The handle keeps `target` alive for the call; an ancestor of a dead
    // one is kept by `ancestor`.
    let ancestor;
    let target: &Inner = if !target.is_dead() {
        target
    } else {
        ancestor = Inner::first_live_ancestor(&counted(target));
        &ancestor
    };
    if ptr::eq(current, target) {
        return Ok(value);
    }
    if target.gate.get() & !LOW_BITS != waits & !LOW_BITS {
        return Err(type_mismatch::<T>(target));
    }
    if !on_own_stack(current) {
        return Err(SwitchError::ForeignStack);
    }
    let mut slot = ValueSlot(MaybeUninit::new(value));
    // From here the value belongs to the receiver, which moves it out.
    hand_over(ctx, current, target, Transfer::value(&mut slot), waits)
}

/// A switch by a greenlet that is being unwound because it was dropped.
#[cold]
fn dying_switch<T>() -> Result<T, SwitchError> {
    if std::thread::panicking() {
        // A destructor switching during the unwinding: refuse, don't abort.
        return Err(SwitchError::Dying);
    }
    // The greenlet caught its unwinding and carried on: unwind again.
    panic::resume_unwind(Box::new(ThrowPayload))
}

#[cold]
fn type_mismatch<T>(target: &Inner) -> SwitchError {
    SwitchError::TypeMismatch {
        expected: type_of_gate(target.gate.get()).1,
        found: type_name::<T>(),
    }
}

/// A counted handle to a greenlet known only by reference.
#[inline(always)]
fn counted(g: &Inner) -> Rc<Inner> {
    let p: *const Inner = g;
    // SAFETY: every Inner lives in an Rc (they are only made by `Rc::new`);
    // the new count is handed to the returned Rc.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

/// How the resume of a child ended, as the main greenlet's slow paths see
/// it ([`resume_greenlet`]).
enum Resumed {
    /// The child's fast path switched a value to the main greenlet, in the
    /// fast encoding of the type the main greenlet waits for
    /// ([`Transfer::take_fast`]). Told by `current`: only that path sets it
    /// back to the main greenlet before suspending ([`child_to_main`]).
    ToMain(Transfer),
    /// The child suspended by the slow path; its `next` says where the
    /// transfer goes.
    Yield(Transfer),
    /// The child's closure ended with this.
    Return(Transfer),
}

/// Resumes `target` (a live, non-main greenlet, current from now on) with
/// `transfer` until it suspends or returns, and makes the main greenlet
/// current again. One out-of-line copy for the slow paths (the fast path
/// inlines [`resume_inline`] and looks at `current` itself).
#[inline(never)]
fn resume_greenlet(ctx: &Context, target: &Inner, transfer: Transfer) -> Resumed {
    // Started, and told that this is not the fast path's resume; its type
    // does not matter while it runs but is kept.
    target
        .gate
        .set(target.gate.get() & !LOW_BITS | SUSPENDED | SLOW_IN);
    let result = resume_inline(ctx, target, transfer);
    let main: *const Inner = &*ctx.main;
    let to_main = ptr::eq(ctx.current.get(), main);
    ctx.current.set(main);
    match result {
        CoroutineResult::Yield(tr) if to_main => Resumed::ToMain(tr),
        CoroutineResult::Yield(tr) => Resumed::Yield(tr),
        CoroutineResult::Return(tr) => Resumed::Return(tr),
    }
}

/// Makes `target` current (which is what running means, see
/// [`Inner::state`]) and resumes it with `transfer`. Inlined into the switch fast path so that
/// corosensei's `resume` is instantiated and inlined there too, and the
/// registers its context switch clobbers are saved once by the caller's
/// loop rather than on every call. Sets nothing afterwards: the caller
/// tells from `current` how the resume ended (see [`Resumed`]).
#[inline(always)]
fn resume_inline(
    ctx: &Context,
    target: &Inner,
    transfer: Transfer,
) -> CoroutineResult<Transfer, Transfer> {
    ctx.current.set(target);
    // SAFETY: the coroutine of a greenlet is borrowed only here, while
    // the greenlet runs (from just above until `resume` returns), and by
    // `finished`, `prepare_unusual` and `Inner::drop`, for greenlets that
    // do not run (returned, unstarted, dropped). Callers resume only a
    // greenlet that is not running: the fast path checks that its target
    // is suspended; the slow paths resume the target of a switch (not the
    // running greenlet, of the running context: every other greenlet of
    // it is suspended or unstarted) or the next one the trampoline picks
    // (likewise). So this is the only borrow. (A `RefCell` checked it
    // again on every switch.)
    let coro = unsafe { &mut *target.coro.as_ptr() };
    debug_assert!(
        coro.is_some(),
        "greenhouse: a live greenlet has a coroutine"
    );
    // SAFETY: a greenlet's coroutine is taken only when it is marked
    // dead (`finished`, `prepare_unusual`) or dropped (`Inner::drop`,
    // which hands it to a stand-in that has it); callers resume only
    // live greenlets (the fast path's gate check says suspended, the
    // slow paths skip dead ones), so it is there. Tests of switches to
    // dead, killed and dropped greenlets hit the debug assertion above
    // if that ever changes.
    let coro = unsafe { coro.as_mut().unwrap_unchecked() };
    // The overflow handler finds the greenlet's record through
    // `current` (`running_record`), and the hub tells its stack from
    // the green thread's by the stack pointer: nothing to install.
    coro.resume(transfer.into_word())
}

/// Marks `target`, whose coroutine just returned, dead, frees its stack and
/// returns where its result goes: its first live ancestor.
fn finished(target: &Inner) -> Rc<Inner> {
    target.set_state(DEAD);
    if let Some(coro) = target.coro.borrow_mut().take() {
        stack::give(coro.into_stack());
    }
    let parent = target.parent.borrow().clone();
    match parent {
        Some(p) => Inner::first_live(&p),
        None => counted(target),
    }
}

/// What the main greenlet receives after its fast path resumed `target`:
/// at once if `target`'s fast path switched a value back to it, else out
/// of line.
///
/// `target`'s fast path made the main greenlet current again; every other
/// way out of the resume leaves `target` current (see [`Resumed`]: only the
/// main greenlet changes `current` otherwise, and a greenlet that changes
/// it for a while, as `Inner::drop` does, puts it back). So "no longer
/// `target`" is the test: `target` is at hand in a register or a reload,
/// where the main greenlet's address would have to be kept across the
/// context switch.
#[inline(always)]
fn main_received<T: 'static>(
    ctx: &Context,
    target: &Inner,
    result: CoroutineResult<Transfer, Transfer>,
) -> Result<T, SwitchError> {
    if let CoroutineResult::Yield(_) = &result {
        if !ptr::eq(ctx.current.get(), target) {
            let CoroutineResult::Yield(tr) = result else {
                unreachable!()
            };
            // SAFETY: `current` says `target`'s fast path sent a value to
            // the main greenlet after checking that it waits for a `T`
            // (`child_to_main`); the sender, `target`, is alive (the caller
            // keeps it).
            return Ok(unsafe { tr.take_fast::<T>() });
        }
    }
    in_registers(move || after_resume(ctx, target, result))
}

/// [`main_received`] for a resume that did not end in a value switched to
/// the main greenlet by the fast path.
#[inline(always)]
fn after_resume<T: 'static>(
    ctx: &Context,
    target: &Inner,
    result: CoroutineResult<Transfer, Transfer>,
) -> Result<T, SwitchError> {
    let main: *const Inner = &*ctx.main;
    let to_main = ptr::eq(ctx.current.get(), main);
    ctx.current.set(main);
    match result {
        CoroutineResult::Yield(tr) if to_main => {
            // SAFETY: as in `main_received`.
            Ok(unsafe { tr.take_fast::<T>() })
        }
        CoroutineResult::Yield(tr) => {
            let next = target.next.get();
            if ptr::eq(next, main) {
                return receive(tr);
            }
            // SAFETY: `next` was set by `target` as it suspended (see the
            // field); nothing ran since.
            let next = counted(unsafe { &*next });
            trampoline(ctx, next, tr, Some(counted(target)))
        }
        CoroutineResult::Return(outcome) => {
            let parent = finished(target);
            if Rc::ptr_eq(&parent, &ctx.main) {
                return receive(outcome);
            }
            trampoline(ctx, parent, outcome, None)
        }
    }
}

/// The main greenlet's side of every switch that is not the plain
/// ping-pong: resumes greenlets until one switches (or its result goes) back
/// to the main greenlet, and returns what arrived. `sender`, if any, is the
/// greenlet whose switched value `transfer` is (kept alive until taken).
#[inline(never)]
fn trampoline<T: 'static>(
    ctx: &Context,
    mut target: Rc<Inner>,
    mut transfer: Transfer,
    mut sender: Option<Rc<Inner>>,
) -> Result<T, SwitchError> {
    // Children's code runs from here: keep the context alive whatever it
    // does.
    let ctx_rc = ctx.counted();
    let main = &ctx.main;
    // A greenlet that switched to another is kept alive (in `sender`) until
    // that one has taken the value, which sits on the sender's stack.
    loop {
        if !transfer.is_value() {
            match prepare_unusual(target, transfer) {
                Prepared::Resume(t, tr) => (target, transfer) = (t, tr),
                Prepared::Deliver(t, tr) => {
                    (target, transfer) = (t, tr);
                    if Rc::ptr_eq(&target, main) {
                        drop(sender);
                        drop(ctx_rc);
                        return receive(transfer);
                    }
                    continue;
                }
            }
        }
        let resumed = resume_greenlet(ctx, &target, transfer);
        // `target` has taken its value: its sender may go.
        drop(sender.take());
        match resumed {
            Resumed::ToMain(tr) => {
                // Move the value out before `target`, on whose stack it
                // may sit, can be dropped.
                // SAFETY: as in `main_received`; the main greenlet waits for
                // a `T` (its switch, which runs this, set that).
                let value = unsafe { tr.take_fast::<T>() };
                drop(target);
                drop(ctx_rc);
                return Ok(value);
            }
            Resumed::Yield(tr) => {
                let next = target.next.get();
                if ptr::eq(next, Rc::as_ptr(main)) {
                    if !tr.is_value() {
                        drop(target);
                        drop(ctx_rc);
                        return receive_other(tr);
                    }
                    // Move the value out before `target`, on whose stack it
                    // sits, can be dropped; build the `Result` only then, so
                    // it is written once in place rather than copied.
                    // SAFETY: as in `receive`.
                    let value = unsafe { tr.take_value::<T>() };
                    drop(target);
                    drop(ctx_rc);
                    return Ok(value);
                }
                // SAFETY: `next` was set by `target` as it suspended (see
                // the field); nothing ran since.
                let next = counted(unsafe { &*next });
                sender = Some(mem::replace(&mut target, next));
                transfer = tr;
            }
            Resumed::Return(outcome) => {
                transfer = outcome;
                target = finished(&target);
                if Rc::ptr_eq(&target, main) {
                    drop(ctx_rc);
                    return receive(transfer);
                }
            }
        }
    }
}

/// What the trampoline does with a target and a transfer that is not a
/// switched value.
enum Prepared {
    /// Resume the target with it.
    Resume(Rc<Inner>, Transfer),
    /// The target died unstarted: hand this to that greenlet instead.
    Deliver(Rc<Inner>, Transfer),
}

/// The trampoline's checks for anything but a switched value: a returned
/// value of the wrong type becomes a mismatch error, and an unstarted target
/// handed an ending (kill, error) dies without running.
#[cold]
fn prepare_unusual(target: Rc<Inner>, mut transfer: Transfer) -> Prepared {
    let returned = match transfer.ending_ref() {
        Some(Ending::Returned { value, name }) => Some((Any::type_id(&**value), *name)),
        _ => None,
    };
    if let Some((ty, found)) = returned {
        if ty == type_of_gate(target.gate.get()).0 {
            // A returned value of the right type: resume (or start) with it.
            return Prepared::Resume(target, transfer);
        }
        // Only a returned value can get here with a wrong type; the
        // switching side checks its own.
        transfer = Transfer::ending(Ending::Mismatch {
            expected: type_of_gate(target.gate.get()).1,
            found,
        });
    }
    if target.state() != State::NotStarted {
        return Prepared::Resume(target, transfer);
    }
    // Killed (or handed an error) before it ever ran: drop its closure
    // without running it, and pass the ending on up.
    target.set_state(DEAD);
    let coro = target.coro.borrow_mut().take();
    if let Some(mut coro) = coro {
        coro.force_unwind();
        stack::give(coro.into_stack());
    }
    if transfer.is_throw() {
        transfer = Transfer::ending(Ending::Exit);
    }
    Prepared::Deliver(Inner::first_live(&Inner::parent_or_self(&target)), transfer)
}

impl<T: 'static> Greenlet<T> {
    fn from_inner(inner: Rc<Inner>) -> Greenlet<T> {
        Greenlet {
            inner,
            waits: type_bits::<T>() | SUSPENDED,
            _values: PhantomData,
        }
    }

    /// Creates a greenlet that will run `f` on its own stack of the default
    /// size. It starts on the first [`switch`](Self::switch) into it, with the
    /// switched value as `f`'s argument; `f`'s return value goes to the
    /// parent (the running greenlet, unless changed). Use [`Builder`] for a
    /// name or another stack size.
    ///
    /// # Errors
    ///
    /// Fails if no stack can be mapped (see [`Builder::create`]).
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::Greenlet;
    ///
    /// let g = Greenlet::new(|s: String| s + "!")?;
    /// assert_eq!(g.switch("hi".into()).unwrap(), "hi!");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new<F>(f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce(T) -> T + 'static,
    {
        Builder::new().create(f)
    }

    /// Switches to this greenlet, handing it `value`, and returns what the
    /// running greenlet receives when it is next switched to.
    ///
    /// If this greenlet has not started, it starts with `f(value)`; if it is
    /// suspended, its pending `switch` returns `Ok(value)`; if it is dead, the
    /// value goes to its first live ancestor. Switching to the running
    /// greenlet returns `Ok(value)` at once.
    ///
    /// # Errors
    ///
    /// When the running greenlet is switched back to, it receives whatever
    /// was sent: a value (`Ok`), or the end of a greenlet whose result came
    /// here: [`SwitchError::Exit`] if it was killed, [`SwitchError::Panicked`]
    /// if it panicked, [`SwitchError::TypeMismatch`] if it returned a value of
    /// another type. Without switching at all, it fails with
    /// [`SwitchError::TypeMismatch`] if the target waits for another type than
    /// `T`, and [`SwitchError::WrongThread`] if the target belongs to another
    /// thread or green thread.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{self, Greenlet};
    ///
    /// let counter = Greenlet::new(|mut n: u32| {
    ///     let main = greenlet::current::<u32>().parent().unwrap();
    ///     loop {
    ///         n = main.switch(n + 1).unwrap();
    ///     }
    /// })?;
    /// assert_eq!(counter.switch(1).unwrap(), 2);
    /// assert_eq!(counter.switch(10).unwrap(), 11);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // Forced inline in optimised builds (see `hand_over`); in debug builds,
    // where unoptimised frames do not share stack slots, a hint, so that a
    // caller's frame does not grow by the whole switch.
    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn switch(&self, value: T) -> Result<T, SwitchError> {
        let target = &*self.inner;
        let ctx = STATE.with(|s| s.get());
        // The fast path, behind three comparisons. The target belongs to the
        // running context (the thread-local holds its key, see `Inner::ctx`;
        // so it is not null either). Its gate is that of a started greenlet
        // waiting in a switch for a `T` (so not dead, not unstarted, and the
        // types match), and says whether it is the main greenlet. For a
        // child target, the running greenlet's gate says it is the main
        // greenlet and waits for a `T` already (so the target does not run);
        // for the main target, the running greenlet runs on its own stack,
        // so it is a child (the main greenlet's and a dying stand-in's stack
        // range is empty) and the main greenlet does not run. Every check
        // that could refuse the switch has passed.
        if target.ctx == ctx as usize {
            // SAFETY: equal to a greenlet's context key, so STATE's pointer
            // is not null, and it is alive while we run (see `context_ptr`).
            let ctx = unsafe { &*ctx };
            let waits = self.waits;
            // 0 for a child target, MAIN for the main one: one comparison
            // on each side's way rather than two on the child's.
            let differs = target.gate.get() ^ waits;
            if differs == 0 {
                let current = ctx.current();
                if current.gate.get() == waits | MAIN {
                    // The main greenlet resumes the target, which runs.
                    if travels_inline::<T>() {
                        // The value goes in the word (no SLOW_IN says so).
                        let transfer = Transfer::inline(value);
                        let result = resume_inline(ctx, target, transfer);
                        return main_received(ctx, target, result);
                    }
                    let mut slot = ValueSlot(MaybeUninit::new(value));
                    // From here the value belongs to the receiver.
                    let result = resume_inline(ctx, target, Transfer::value(&mut slot));
                    return main_received(ctx, target, result);
                }
            } else if differs == MAIN {
                let current = ctx.current();
                if on_child_stack(current) {
                    if travels_inline::<T>() {
                        let transfer = Transfer::inline(value);
                        return child_to_main(ctx, current, target, transfer, waits);
                    }
                    let mut slot = ValueSlot(MaybeUninit::new(value));
                    // From here the value belongs to the receiver.
                    let transfer = Transfer::value(&mut slot);
                    return child_to_main(ctx, current, target, transfer, waits);
                }
            }
        }
        // The greenlet's address and the gate, not the handle's address, so
        // that the fast path keeps no stack address live for this.
        let waits = self.waits;
        in_registers(move || switch_slow(target, waits, value))
    }

    /// Unwinds this greenlet from its pending `switch` (Python greenlet's
    /// `throw()`, which raises `GreenletExit`): the destructors of its locals
    /// run and it dies; its parent then receives [`GreenletExit`] as
    /// [`SwitchError::Exit`]. Returns, like [`switch`](Self::switch), what the
    /// running greenlet receives next, so when the caller is the parent (the
    /// common case) the result is `Err(SwitchError::Exit(GreenletExit))`.
    ///
    /// A greenlet that has not started dies without running its closure. A
    /// dead greenlet's first live ancestor receives `GreenletExit`. Throwing
    /// into the running greenlet unwinds it right here.
    ///
    /// # Errors
    ///
    /// As [`switch`](Self::switch); also [`SwitchError::MainGreenlet`] for a
    /// main greenlet, which cannot be unwound.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{self, Greenlet, State, SwitchError};
    ///
    /// let g = Greenlet::new(|x: i32| {
    ///     let main = greenlet::current::<i32>().parent().unwrap();
    ///     main.switch(x).unwrap(); // the throw unwinds from here
    ///     unreachable!()
    /// })?;
    /// g.switch(1).unwrap();
    /// assert!(matches!(g.throw(), Err(SwitchError::Exit(_))));
    /// assert_eq!(g.state(), State::Dead);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn throw(&self) -> Result<T, SwitchError> {
        // SAFETY: STATE's pointer is alive while we run (see `context_ptr`).
        let ctx = unsafe { &*context_ptr()? };
        if self.inner.ctx() != ctx.key() {
            return Err(SwitchError::WrongThread);
        }
        if self.inner.is_main() {
            return Err(SwitchError::MainGreenlet);
        }
        let current = ctx.current();
        if current.dying {
            return dying_switch();
        }
        let (target, transfer) = if self.inner.is_dead() {
            // greenlet: a GreenletExit thrown into a dead greenlet becomes a
            // GreenletExit value for its first live ancestor.
            let target = Inner::first_live(&self.inner);
            (target, Transfer::ending(Ending::Exit))
        } else {
            (self.inner.clone(), Transfer::throw())
        };
        if ptr::eq(current, &*target) {
            // Throwing into oneself unwinds right here; an exit for oneself
            // is received at once.
            return receive(transfer);
        }
        if !on_own_stack(current) {
            return Err(SwitchError::ForeignStack);
        }
        hand_over(ctx, current, &target, transfer, self.waits)
    }

    /// Kills this greenlet: like [`throw`](Self::throw), but reports the
    /// expected outcome as success. Returns `Ok(None)` once the greenlet is
    /// dead and its [`GreenletExit`] came back (or it was already dead, in
    /// which case nothing is switched), and `Ok(Some(v))` if a value was
    /// switched back instead (the greenlet caught its unwinding and carried
    /// on, or another greenlet switched here first).
    ///
    /// # Errors
    ///
    /// As [`throw`](Self::throw), except that `SwitchError::Exit` is `Ok(None)`.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{self, Greenlet};
    ///
    /// let g = Greenlet::new(|x: i32| {
    ///     let _guard = String::from("dropped when killed");
    ///     greenlet::current::<i32>().parent().unwrap().switch(x).unwrap()
    /// })?;
    /// g.switch(1).unwrap();
    /// assert_eq!(g.kill().unwrap(), None);
    /// assert!(g.is_dead());
    /// assert_eq!(g.kill().unwrap(), None); // already dead: nothing happens
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn kill(&self) -> Result<Option<T>, SwitchError> {
        if self.inner.is_dead() {
            return Ok(None);
        }
        match self.throw() {
            Ok(v) => Ok(Some(v)),
            Err(SwitchError::Exit(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// This greenlet's state.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{self, State};
    ///
    /// assert_eq!(greenlet::current::<()>().state(), State::Running);
    /// ```
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// Whether this greenlet is dead: its closure returned, panicked or was
    /// killed. Main greenlets never die.
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Greenlet::new(|x: i32| x)?;
    /// assert!(!g.is_dead());
    /// g.switch(1).unwrap();
    /// assert!(g.is_dead());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_dead(&self) -> bool {
        self.state() == State::Dead
    }

    /// Whether this is a main greenlet: the implicit one of a thread or green
    /// thread, which runs when no other greenlet does.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(greenhouse::greenlet::current::<()>().is_main());
    /// ```
    pub fn is_main(&self) -> bool {
        self.inner.is_main()
    }

    /// The name given with [`Builder::name`], if any.
    ///
    /// # Example
    ///
    /// ```
    /// let g = greenhouse::greenlet::Builder::new().name("a").create(|x: i32| x)?;
    /// assert_eq!(g.name(), Some("a"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        if self.inner.is_main() {
            None
        } else {
            self.inner.name.as_deref()
        }
    }

    /// The greenlet that receives this one's result, or `None` for a main
    /// greenlet.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{self, Greenlet};
    ///
    /// let g = Greenlet::new(|x: i32| x)?;
    /// assert!(g.parent().unwrap() == greenlet::current());
    /// assert!(greenlet::current::<i32>().parent().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parent(&self) -> Option<Greenlet<T>> {
        self.inner.parent.borrow().clone().map(Greenlet::from_inner)
    }

    /// Makes `parent` this greenlet's parent: the one that receives its
    /// result (or its panic, or its exit).
    ///
    /// # Errors
    ///
    /// [`ParentError::Cycle`] if this greenlet is `parent` or one of its
    /// ancestors; [`ParentError::WrongThread`] if `parent` belongs to another
    /// thread or green thread; [`ParentError::MainGreenlet`] if this is a
    /// main greenlet. Nothing changes on error.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{Greenlet, ParentError};
    ///
    /// let a = Greenlet::new(|x: i32| x)?;
    /// let b = Greenlet::new(|x: i32| x + 1)?;
    /// b.set_parent(&a).unwrap();
    /// assert_eq!(a.set_parent(&b), Err(ParentError::Cycle));
    /// // b's result now starts a.
    /// assert_eq!(b.switch(1).unwrap(), 2);
    /// assert!(a.is_dead());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_parent<U: 'static>(&self, parent: &Greenlet<U>) -> Result<(), ParentError> {
        if self.inner.is_main() {
            return Err(ParentError::MainGreenlet);
        }
        if parent.inner.ctx() != self.inner.ctx() {
            return Err(ParentError::WrongThread);
        }
        let mut p = Some(parent.inner.clone());
        while let Some(g) = p {
            if Rc::ptr_eq(&g, &self.inner) {
                return Err(ParentError::Cycle);
            }
            p = g.parent.borrow().clone();
        }
        *self.inner.parent.borrow_mut() = Some(parent.inner.clone());
        Ok(())
    }

    /// Another handle to the same greenlet that switches values of type `U`.
    /// See the [module docs](self#values-and-types).
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::greenlet::{self, Greenlet, SwitchError};
    ///
    /// // The child is started with a u8 and answers with a String.
    /// let child = Greenlet::new(|n: u8| {
    ///     let parent = greenlet::current::<String>().parent().unwrap();
    ///     let _ = parent.switch(format!("got {n}"));
    ///     n
    /// })?;
    /// // Through its u8 view, a switch sends a u8 and waits for a u8, so the
    /// // child's String is refused (at the child's switch) ...
    /// assert_eq!(child.switch(7).unwrap(), 7); // ... and its return value arrives
    ///
    /// let child = Greenlet::new(|n: u8| {
    ///     let parent = greenlet::current::<String>().parent().unwrap();
    ///     parent.switch(format!("got {n}")).unwrap();
    ///     n
    /// })?;
    /// // The String view cannot start it: it waits for a u8.
    /// let as_string: Greenlet<String> = child.cast();
    /// assert!(matches!(
    ///     as_string.switch("7".into()),
    ///     Err(SwitchError::TypeMismatch { expected: "u8", .. })
    /// ));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cast<U: 'static>(&self) -> Greenlet<U> {
        Greenlet::from_inner(self.inner.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_states_keep_separate_main_greenlets() {
        let main1 = current::<i32>();
        let child1 = Greenlet::new(|x: i32| x + 1).unwrap();

        let outer = swap_thread_state(ThreadState::default());
        let main2 = current::<i32>();
        assert!(main2.is_main());
        assert!(
            main1 != main2,
            "a fresh ThreadState has its own main greenlet"
        );
        // A greenlet of the other context can be neither switched to nor
        // made a parent here.
        assert!(matches!(child1.switch(1), Err(SwitchError::WrongThread)));
        let child2 = Greenlet::new(|x: i32| x * 2).unwrap();
        assert!(child2.parent().unwrap() == main2);
        assert_eq!(child2.set_parent(&child1), Err(ParentError::WrongThread));
        let inner = swap_thread_state(outer);

        assert!(current::<i32>() == main1);
        assert!(matches!(child2.switch(1), Err(SwitchError::WrongThread)));
        assert_eq!(child1.switch(1).unwrap(), 2);

        let outer = swap_thread_state(inner);
        assert!(current::<i32>() == main2);
        assert_eq!(child2.switch(4).unwrap(), 8);
        swap_thread_state(outer);
        assert!(current::<i32>() == main1);
    }

    #[test]
    fn type_bits_are_one_number_per_type_on_every_thread() {
        let (a, b) = (type_bits::<u8>(), type_bits::<String>());
        assert_ne!(a, b);
        assert_eq!(a & LOW_BITS, 0, "the state bits stay free");
        // Alternating lookups get past the one-entry cache.
        assert_eq!((type_bits::<u8>(), type_bits::<String>()), (a, b));
        let (c, d) = std::thread::spawn(|| (type_bits::<String>(), type_bits::<u8>()))
            .join()
            .unwrap();
        assert_eq!((a, b), (d, c));
        let (id, name) = type_of_gate(b | SUSPENDED);
        assert_eq!(id, TypeId::of::<String>());
        assert_eq!(name, type_name::<String>());
    }

    #[test]
    fn a_context_key_is_not_reused_while_its_greenlets_live() {
        let saved = swap_thread_state(ThreadState::default());
        let old_main = current::<i32>();
        let old_child = Greenlet::new(|x: i32| x).unwrap();
        let old_key = old_child.inner.ctx();
        // Drops the context: its handles keep its allocation, so no later
        // context gets its address (the key the fast path compares).
        drop(swap_thread_state(ThreadState::default()));
        for _ in 0..50 {
            let main = current::<i32>();
            assert_ne!(main.inner.ctx(), old_key);
            assert!(matches!(old_child.switch(1), Err(SwitchError::WrongThread)));
            assert!(matches!(old_main.switch(1), Err(SwitchError::WrongThread)));
            let child = Greenlet::new(|x: i32| {
                let p = current::<i32>().parent().unwrap();
                p.switch(x + 1).unwrap()
            })
            .unwrap();
            // From a child of the new context too (the fast path's other side).
            let om = old_main.clone();
            let probe = Greenlet::new(move |_: i32| match om.switch(3) {
                Err(SwitchError::WrongThread) => 1,
                _ => 0,
            })
            .unwrap();
            assert_eq!(probe.switch(0).unwrap(), 1);
            assert_eq!(child.switch(1).unwrap(), 2);
            drop(swap_thread_state(ThreadState::default()));
        }
        // A main greenlet whose context is gone ran last.
        assert_eq!(old_main.state(), State::Running);
        swap_thread_state(saved);
    }

    #[test]
    fn default_thread_state_is_empty_until_used() {
        let saved = swap_thread_state(ThreadState::default());
        let st = swap_thread_state(ThreadState::default());
        assert!(st.is_empty());
        let _ = current::<()>();
        let st = swap_thread_state(ThreadState::default());
        assert!(!st.is_empty());
        swap_thread_state(saved);
    }
}
