//! What every hook shares: deciding whether the caller is a green thread
//! the hooks may switch, errno, cancellation, and the non-blocking retry loop
//! around the runtime's fd readiness.

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_int;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use super::fds::FdState;
use super::real;
use crate::runtime::io::Interest;
use crate::runtime::park::{
    current_task, current_task_on_own_stack, with_timeouts, KillUnwind, TimeoutUnwind,
};

thread_local! {
    /// This OS thread's hook state, one thread-local (each access to one is
    /// a `__tls_get_addr` call in a library crate).
    pub(super) static HOOK_TLS: HookTls = const {
        HookTls {
            in_hook: Cell::new(false),
            unpatched_here: Cell::new(0),
        }
    };
}

/// See `HOOK_TLS`.
pub(super) struct HookTls {
    /// Hook code (not a parked call) is running on this OS thread: a hooked
    /// function reached from it passes straight through. Never set while a
    /// green thread is switched out.
    in_hook: Cell<bool>,
    /// `unpatched` sections open on this OS thread, in any green thread.
    pub(super) unpatched_here: Cell<u32>,
}

crate::green_local! {
    /// `unpatched` sections open in this green thread (or OS thread).
    pub(super) static UNPATCHED: Cell<u32> = Cell::new(0);
}

/// Bumped whenever a green call sets or clears `O_NONBLOCK` around one
/// system call, so that a plain thread whose blocking call on the same
/// descriptor hit that window can tell its `EAGAIN` was not its own.
pub(super) static TOGGLE_GEN: AtomicU64 = AtomicU64::new(0);

/// Whether the caller is a green thread on its own stack that the hooks may
/// switch away from: patched (checked by the caller), not in an `unpatched`
/// section, not unwinding, not already inside hook code. The common "not a
/// green thread at all" answer is one thread-local load, inlined into every
/// hook; the rest is out of line.
#[inline(always)]
pub(super) fn may_switch() -> bool {
    current_task().is_some() && may_switch_in_task()
}

#[inline(never)]
fn may_switch_in_task() -> bool {
    if current_task_on_own_stack().is_none() {
        return false;
    }
    let (in_hook, unpatched_here) = HOOK_TLS.with(|h| (h.in_hook.get(), h.unpatched_here.get()));
    if in_hook || std::thread::panicking() {
        return false;
    }
    if unpatched_here != 0 && UNPATCHED.with(|u| u.get()) != 0 {
        return false;
    }
    true
}

/// Runs `f` — a system call on the real descriptor — as hook code: anything it
/// reaches that is hooked passes through. (`f` does not unwind: it only calls
/// libc.)
#[inline]
pub(super) fn syscall<R>(f: impl FnOnce() -> R) -> R {
    HOOK_TLS.with(|h| {
        let prev = h.in_hook.replace(true);
        let r = f();
        h.in_hook.set(prev);
        r
    })
}

pub(super) fn errno() -> c_int {
    // SAFETY: __errno_location returns this OS thread's errno slot.
    unsafe { *libc::__errno_location() }
}

pub(super) fn set_errno(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e }
}

/// How a green wait inside a hook ended early: the green thread was killed,
/// or a `timeout` scope around it expired. Hooks cannot unwind through the C
/// frames that called them, so they fail the call instead and leave the
/// cancellation for the green thread's next greenhouse blocking point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cancelled {
    Killed,
    TimedOut,
}

impl Cancelled {
    /// The errno a hooked call reports: `ECANCELED` for a kill, `ETIMEDOUT`
    /// for an expired time limit.
    pub(super) fn errno(self) -> c_int {
        match self {
            Cancelled::Killed => libc::ECANCELED,
            Cancelled::TimedOut => libc::ETIMEDOUT,
        }
    }
}

/// Runs `f` (which may park), turning the runtime's cancellation unwinds into
/// [`Cancelled`]. A kill stays pending by itself (the task's flag); an expired
/// `timeout` scope is re-armed so it fires again at the next blocking point
/// and still reaches its `timeout` call.
pub(super) fn catch_cancel<R>(f: impl FnOnce() -> R) -> Result<R, Cancelled> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(p) => Err(classify_unwind(p)),
    }
}

fn classify_unwind(p: Box<dyn Any + Send>) -> Cancelled {
    if p.is::<KillUnwind>() {
        return Cancelled::Killed;
    }
    match p.downcast::<TimeoutUnwind>() {
        Ok(t) => {
            let id = t.id;
            with_timeouts(|ts| {
                for s in ts.scopes.iter_mut().filter(|s| s.id == id) {
                    s.fired = false;
                }
            });
            Cancelled::TimedOut
        }
        // Not a cancellation: a bug in greenhouse. Unwinding further would
        // cross the C ABI; `resume_unwind` there aborts with the message.
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A deadline `timeout` from now, if any.
pub(super) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// The outcome of a green call, as a C function returns it.
pub(super) enum Outcome {
    Done(isize),
    Failed(c_int),
}

impl Outcome {
    /// The C return value, setting errno on this OS thread on failure.
    pub(super) fn ret(self) -> isize {
        match self {
            Outcome::Done(n) => n,
            Outcome::Failed(e) => {
                set_errno(e);
                -1
            }
        }
    }
}

/// Calls `attempt` (the call made non-blocking; returns -1 with errno set on
/// failure) until it does not fail with `EAGAIN`, parking on `interest`
/// readiness of `fd` in between, up to `deadline` (then `EAGAIN`, as a
/// blocking socket reports an expired `SO_RCVTIMEO`/`SO_SNDTIMEO`). A
/// descriptor closed meanwhile reports `EBADF`.
pub(super) fn retry(
    fd: &FdState,
    interest: Interest,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> isize,
) -> Outcome {
    let r = catch_cancel(|| {
        fd.source.do_io(interest, deadline, || {
            if fd.closed.load(Acquire) {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            let n = syscall(&mut attempt);
            if n < 0 {
                Err(io::Error::from_raw_os_error(errno()))
            } else {
                Ok(n)
            }
        })
    });
    match r {
        Ok(Ok(n)) => Outcome::Done(n),
        Ok(Err(e)) => Outcome::Failed(e.raw_os_error().unwrap_or(libc::EAGAIN)),
        Err(c) => Outcome::Failed(c.errno()),
    }
}

/// Runs `call` with `O_NONBLOCK` set on `fd` in the kernel (for the calls that
/// have no per-call non-blocking flag: `accept`, `connect`, `sendfile`,
/// `splice`), then clears it again — the user asked for a blocking
/// descriptor. Concurrent green callers share one setting: the first sets,
/// the last clears.
pub(super) fn with_nonblock(fd: &FdState, call: impl FnOnce() -> isize) -> isize {
    set_fionbio(fd, true);
    let r = syscall(call);
    let e = errno();
    set_fionbio(fd, false);
    set_errno(e);
    r
}

fn set_fionbio(fd: &FdState, on: bool) {
    let mut n = fd.toggles.lock().unwrap_or_else(|e| e.into_inner());
    let change = if on {
        *n += 1;
        *n == 1
    } else {
        *n -= 1;
        *n == 0
    };
    if change {
        TOGGLE_GEN.fetch_add(1, SeqCst);
        fd.toggling.store(*n, SeqCst);
        let mut v: c_int = on as c_int;
        // SAFETY: FIONBIO reads one c_int.
        unsafe { real::ioctl(fd.fd, libc::FIONBIO, &mut v as *mut c_int as usize) };
    }
}
