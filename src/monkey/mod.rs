//! Monkey patching: unmodified blocking code — `std::net`,
//! `std::thread::sleep`, third-party clients built on them — yields inside
//! green threads (gevent's `monkey.patch_all()`; Linux, feature `monkey`).
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::{Duration, Instant};
//!
//! greenhouse::monkey::patch_all().unwrap();
//! let start = Instant::now();
//! greenhouse::run(|| {
//!     // Plain std code, no greenhouse types: each sleep parks only its
//!     // own green thread.
//!     let sleepers: Vec<_> = (0..100)
//!         .map(|_| greenhouse::thread::spawn(|| std::thread::sleep(Duration::from_millis(200))))
//!         .collect();
//!     // And std sockets wait the same way.
//!     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = greenhouse::thread::spawn(move || {
//!         let (mut s, _) = listener.accept().unwrap();
//!         let mut buf = [0; 5];
//!         s.read_exact(&mut buf).unwrap();
//!         s.write_all(&buf).unwrap();
//!     });
//!     let mut c = std::net::TcpStream::connect(addr).unwrap();
//!     c.write_all(b"hello").unwrap();
//!     let mut back = [0; 5];
//!     c.read_exact(&mut back).unwrap();
//!     assert_eq!(&back, b"hello");
//!     server.join().unwrap();
//!     for s in sleepers {
//!         s.join().unwrap();
//!     }
//! });
//! // A hundred 200 ms sleeps overlapped.
//! assert!(start.elapsed() < Duration::from_secs(5));
//! ```
//!
//! # How
//!
//! With the `monkey` feature the crate defines the libc functions that std
//! and C libraries call — `recv`, `send`, `connect`, `accept4`, `poll`,
//! `clock_nanosleep`, … — under libc's names. A definition in the executable
//! comes first in the dynamic linker's lookup, so it replaces libc's for the
//! whole process: for Rust code linked into the binary, and for shared C
//! libraries that call those functions. Each hook finds libc's own
//! definition with `dlsym(RTLD_NEXT, …)`.
//!
//! Every hook is inert until [`patch_all`] is called: it calls libc's
//! function and nothing else (a relaxed load and an indirect call, measured
//! in BENCHMARKS.md). After `patch_all`, a hooked call made **in a green
//! thread** on a descriptor the user keeps **blocking** is made without
//! blocking; if it would block, the green thread parks until the descriptor
//! is ready (or the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO` expires) and tries
//! again, then returns exactly what the blocking call returns, errno
//! included. Everywhere else — plain OS threads, [`unpatched`] sections,
//! descriptors set non-blocking by the user, regular files — the call is
//! libc's.
//!
//! # What is patched
//!
//! | calls | in a green thread |
//! |---|---|
//! | `sleep`, `usleep`, `nanosleep`, `clock_nanosleep` (relative and absolute, realtime/monotonic/boottime clocks) | park until the deadline (`std::thread::sleep`) |
//! | `read`, `readv`, `recv`, `recvfrom`, `recvmsg` | sockets: `MSG_DONTWAIT`, park on `EAGAIN`; pipes, FIFOs, terminals, eventfds: `RWF_NOWAIT` or wait for `poll` readiness |
//! | `write`, `writev`, `send`, `sendto`, `sendmsg` | as reads; stream sockets and pipes write the whole buffer, as blocking writes do |
//! | `accept`, `accept4`, `connect` | park until a connection / the outcome; `connect` timing out on `SO_SNDTIMEO` reports `EINPROGRESS` like the kernel |
//! | `sendfile`, `sendfile64`, `splice` | what `std::io::copy` uses between files, sockets and pipes on Linux |
//! | `poll`, `ppoll`, `select`, `pselect`, `epoll_wait`, `epoll_pwait` (no signal mask) | park until a descriptor may be ready or the timeout |
//! | `getaddrinfo` (`ToSocketAddrs`) | runs on the blocking pool |
//! | `socket`, `socketpair`, `pipe`, `pipe2`, `accept*`, `close`, `dup`, `dup2`, `dup3`, `fcntl`, `ioctl(FIONBIO)`, `setsockopt` | bookkeeping, in every thread: blocking mode and socket timeouts the user set are kept; `close`/`dup2` over a descriptor drop its readiness interest and wake its waiters with `EBADF` |
//!
//! So inside green threads these stop blocking the OS thread:
//! `std::thread::sleep`, `std::net::{TcpStream, TcpListener, UdpSocket}`,
//! `std::os::unix::net::*`, name resolution, pipes to child processes, and
//! crates built on them (blocking HTTP clients such as ureq, database and
//! Redis clients).
//!
//! # What is not
//!
//! - **CPU loops.** Nothing preempts a green thread; call
//!   [`crate::thread::yield_now`] or move the work to
//!   [`crate::thread::spawn_blocking`].
//! - **Regular-file I/O** (`read`/`write` on files, `copy_file_range`): the
//!   kernel has no readiness for files; it passes through. Use the blocking
//!   pool for slow disks.
//! - **Standard output and error** (fds 1 and 2): std's `Stdout`/`Stderr`
//!   locks are re-entrant per OS thread, so switching inside a `println!`
//!   would let another green thread on the same worker into the same
//!   buffer. Writes to them block as usual (briefly, unless the reader
//!   stalls).
//! - **`std::sync` locks held across a patched call.** `Mutex`, `RwLock`,
//!   `Condvar` wait with the `futex` system call, which no hook sees: a green
//!   thread that parks while holding one makes any other green thread on the
//!   same worker that wants it block the whole worker — a deadlock. Use
//!   greenhouse's sync types in green code (gevent patches `threading` for
//!   the same reason).
//! - **Calls that don't go through libc's exported symbols**: C libraries
//!   that make raw system calls (or call libc's internal aliases — libc's own
//!   resolver does), code compiled with `_FORTIFY_SOURCE` that calls
//!   `__read_chk`/`__recv_chk`, a statically linked libc (musl targets), and
//!   io_uring. Greenhouse linked into a shared library loaded after libc
//!   does not interpose either; [`patch_all`] detects that and fails.
//! - **Process and file-system waits**: `waitpid` (`Child::wait`), `flock`,
//!   opening a FIFO, `recvmmsg`/`sendmmsg`, `accept` on a descriptor created
//!   before `patch_all` whose mode changed through a raw syscall.
//! - **Signals**: a green sleep or wait is not cut short by a signal (the
//!   worker's own wait absorbs `EINTR`); calls with a signal mask (`ppoll`,
//!   `pselect`, `epoll_pwait`) pass through.
//!
//! # Cancellation
//!
//! A green thread killed, or whose [`crate::time::timeout`] expires, while
//! parked in a patched call cannot unwind through the C frames that called
//! the hook (that is undefined behaviour, and aborts in practice). The call
//! fails instead — `ECANCELED` for a kill, `ETIMEDOUT` for a time limit
//! (`io::ErrorKind::TimedOut`); a sleep just ends — and the cancellation
//! stays pending: every further patched call fails the same way at once,
//! and the next greenhouse blocking point (a join, a greenhouse sleep, a
//! channel) unwinds as usual. Code that retries forever on errors, like a CPU
//! loop, cannot be stopped.
//!
//! # Patch early
//!
//! Call [`patch_all`] at the start of `main`, before creating threads,
//! sockets or runtimes. Descriptors opened earlier work (the hooks learn
//! their mode and timeouts from the kernel when a green thread first uses
//! them), but a mode changed later through a raw system call is not seen.
//! There is no unpatching: gevent has none either. For one section that must
//! really block (say, to time a blocking call), use [`unpatched`].
//!
//! # How this differs from gevent
//!
//! - gevent rebinds Python module attributes (`socket.socket`,
//!   `time.sleep`); only code that looks them up after patching is affected.
//!   greenhouse replaces the C functions themselves: every caller in the
//!   process is covered at once — std, third-party crates and dynamically
//!   linked C libraries — whether patched before or after they were loaded.
//! - The hooks act only in green threads; OS threads keep libc's behaviour
//!   (gevent patches the whole interpreter, threads included: a patched
//!   `threading` makes them greenlets).
//! - gevent leaves sockets in non-blocking mode; greenhouse never changes a
//!   descriptor's mode for longer than one system call, so descriptors
//!   shared with plain threads or child processes keep theirs.
//! - The feature is compiled in only when asked for (feature `monkey`, off
//!   by default) and does nothing until `patch_all` — gevent's module is
//!   always importable.
//! - Cancellation cannot unwind through a patched call (see above); in
//!   gevent `GreenletExit` propagates through Python frames.

mod fds;
mod green;
mod hook;
mod real;

use std::ffi::c_void;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::*};

/// Set once by `patch_all`; read (relaxed) at the top of every hook.
static PATCHED: AtomicBool = AtomicBool::new(false);

/// Turns the hooks on for the whole process (gevent's
/// `monkey.patch_all()`): from now on, blocking libc calls made by green
/// threads park the green thread instead of the OS thread. Calling it again
/// does nothing.
///
/// Call it early: see the [module docs](self) for what is patched and what
/// is not.
///
/// # Errors
/// [`io::ErrorKind::Unsupported`] if greenhouse's definitions are not the
/// ones the process uses (greenhouse linked into a shared library loaded
/// after libc, or a libc without dynamic symbol lookup); nothing is patched
/// then.
///
/// # Example
///
/// ```
/// greenhouse::monkey::patch_all().unwrap();
/// greenhouse::monkey::patch_all().unwrap(); // harmless
/// assert!(greenhouse::monkey::is_patched());
/// ```
pub fn patch_all() -> io::Result<()> {
    if PATCHED.load(Acquire) {
        return Ok(());
    }
    // The process must resolve the hooked names to our definitions, with
    // libc's behind them.
    let ours = hook::probe as *const c_void;
    // SAFETY: dlsym with a NUL-terminated name.
    let seen = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"recv".as_ptr()) } as *const c_void;
    let next = real::next_definition(c"recv");
    if seen != ours || next.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "greenhouse::monkey: the process does not use greenhouse's libc hooks \
             (greenhouse must be linked into the executable, against a dynamic libc)",
        ));
    }
    PATCHED.store(true, Release);
    Ok(())
}

/// Whether [`patch_all`] has been called.
///
/// # Example
///
/// ```
/// greenhouse::monkey::patch_all().unwrap();
/// assert!(greenhouse::monkey::is_patched());
/// ```
pub fn is_patched() -> bool {
    PATCHED.load(Acquire)
}

/// Runs `f` with the hooks off for the calling green thread (or OS thread):
/// its blocking calls block the OS thread, exactly as without
/// [`patch_all`]. Other green threads are not affected, even those that run
/// on the same worker while `f` waits on a greenhouse primitive.
/// Bookkeeping (descriptor modes, timeouts, `close`) carries on.
///
/// # Panics
/// If `f` panics (the panic is resumed after the section is closed).
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// greenhouse::monkey::patch_all().unwrap();
/// greenhouse::run(|| {
///     let start = Instant::now();
///     // Really blocks the worker for 10 ms.
///     greenhouse::monkey::unpatched(|| std::thread::sleep(Duration::from_millis(10)));
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn unpatched<R>(f: impl FnOnce() -> R) -> R {
    struct Section;
    impl Drop for Section {
        fn drop(&mut self) {
            green::UNPATCHED.with(|u| u.set(u.get() - 1));
            green::HOOK_TLS.with(|h| h.unpatched_here.set(h.unpatched_here.get() - 1));
        }
    }
    green::UNPATCHED.with(|u| u.set(u.get() + 1));
    green::HOOK_TLS.with(|h| h.unpatched_here.set(h.unpatched_here.get() + 1));
    let _section = Section;
    f()
}
