//! Socket readiness: file descriptors registered with a worker's `mio::Poll`
//! and the green threads waiting for them.
//!
//! A descriptor is registered (edge-triggered, readable + writable) with the
//! poll of the worker where a green thread first waits on it, and stays
//! registered until its [`IoSource`] is dropped. Green threads on any worker
//! may wait on it: readiness events unpark them through their `Unparker`.
//!
//! Readiness is a word `tick << 8 | bits`. An event ORs bits in and bumps the
//! tick; an operation that hit `WouldBlock` clears the bits only if the tick
//! it observed is unchanged, so an event that arrived in between is not lost
//! (tokio's scheme).
//!
//! Outside green threads the same operations wait with `poll(2)` on the one
//! descriptor, so every green I/O type also works from plain OS threads.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::park::{park_until, Unparker};
use super::task::WaitReason;
use super::worker::{local_ctx, Shared};

const READABLE: usize = 0b0001;
const WRITABLE: usize = 0b0010;
const READ_CLOSED: usize = 0b0100;
const WRITE_CLOSED: usize = 0b1000;
const ERROR: usize = 0b1_0000;
const BITS: usize = 0xff;

/// Which direction an operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
}

impl Interest {
    /// The readiness bits that let an operation of this kind proceed (an
    /// error or hang-up counts: the retried call then reports it).
    fn mask(self) -> usize {
        match self {
            Interest::Read => READABLE | READ_CLOSED | ERROR,
            Interest::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }
    fn poll_events(self) -> libc::c_short {
        match self {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        }
    }
}

/// Readiness and waiters of one registered descriptor.
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    readers: Mutex<Vec<Unparker>>,
    writers: Mutex<Vec<Unparker>>,
}

impl ScheduledIo {
    fn new() -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(0),
            readers: Mutex::new(Vec::new()),
            writers: Mutex::new(Vec::new()),
        }
    }

    fn set(&self, bits: usize) {
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |cur| {
            let tick = (cur >> 8).wrapping_add(1);
            Some((tick << 8) | (cur & BITS) | bits)
        });
        if bits & Interest::Read.mask() != 0 {
            for u in std::mem::take(&mut *self.readers.lock().unwrap_or_else(|e| e.into_inner())) {
                u.unpark();
            }
        }
        if bits & Interest::Write.mask() != 0 {
            for u in std::mem::take(&mut *self.writers.lock().unwrap_or_else(|e| e.into_inner())) {
                u.unpark();
            }
        }
    }

    fn waiters(&self, interest: Interest) -> &Mutex<Vec<Unparker>> {
        match interest {
            Interest::Read => &self.readers,
            Interest::Write => &self.writers,
        }
    }

    /// Clears the readiness an operation just found stale, unless an event
    /// came in since `observed` was read.
    fn clear(&self, observed: usize, interest: Interest) {
        let clear = interest.mask() & !(READ_CLOSED | WRITE_CLOSED | ERROR);
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |cur| {
            if cur >> 8 != observed >> 8 {
                None
            } else {
                Some(cur & !clear)
            }
        });
    }
}

/// A worker's table of registered descriptors; the index is the mio token.
#[derive(Default)]
pub(crate) struct IoSlab {
    inner: Mutex<SlabInner>,
}

#[derive(Default)]
struct SlabInner {
    entries: Vec<Option<Arc<ScheduledIo>>>,
    free: Vec<usize>,
}

impl IoSlab {
    /// Whether no descriptor is registered (the worker may skip polling).
    pub(crate) fn is_empty(&self) -> bool {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.entries.len() == s.free.len()
    }

    fn insert(&self, io: Arc<ScheduledIo>) -> usize {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match s.free.pop() {
            Some(i) => {
                s.entries[i] = Some(io);
                i
            }
            None => {
                s.entries.push(Some(io));
                s.entries.len() - 1
            }
        }
    }

    fn remove(&self, token: usize) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = s.entries.get_mut(token) {
            if slot.take().is_some() {
                s.free.push(token);
            }
        }
    }

    /// Applies one poll event. A token whose entry was removed (or reused)
    /// gets at worst a spurious wake-up, which waiters tolerate.
    pub(crate) fn dispatch(&self, ev: &mio::event::Event) {
        let io = {
            let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match s.entries.get(ev.token().0) {
                Some(Some(io)) => io.clone(),
                _ => return,
            }
        };
        let mut bits = 0;
        if ev.is_readable() {
            bits |= READABLE;
        }
        if ev.is_writable() {
            bits |= WRITABLE;
        }
        if ev.is_read_closed() {
            bits |= READ_CLOSED;
        }
        if ev.is_write_closed() {
            bits |= WRITE_CLOSED;
        }
        if ev.is_error() {
            bits |= ERROR;
        }
        io.set(bits);
    }
}

/// Where a descriptor is registered.
struct Registration {
    shared: Arc<Shared>,
    worker: usize,
    token: usize,
    io: Arc<ScheduledIo>,
}

/// A non-blocking descriptor that green threads (and OS threads) can wait on.
/// Owned by a socket type; must be dropped before the descriptor is closed.
pub(crate) struct IoSource {
    fd: RawFd,
    reg: OnceLock<Registration>,
    /// `deregister` ran: the descriptor is being closed; never register again.
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    gone: AtomicBool,
}

impl IoSource {
    /// Wraps `fd`, which the caller has set to non-blocking mode.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            reg: OnceLock::new(),
            gone: AtomicBool::new(false),
        }
    }

    /// Registers with the current worker's poll if not yet registered.
    /// Returns None outside green threads.
    fn registration(&self) -> io::Result<Option<&Registration>> {
        if let Some(r) = self.reg.get() {
            return Ok(Some(r));
        }
        if self.gone.load(Acquire) {
            return Ok(None);
        }
        let Some(ctx) = local_ctx() else {
            return Ok(None);
        };
        if super::park::current_task_on_own_stack().is_none() {
            return Ok(None);
        }
        let io = Arc::new(ScheduledIo::new());
        let w = &ctx.shared.workers[ctx.index];
        let token = w.io.insert(io.clone());
        if let Err(e) = w.registry.register(
            &mut mio::unix::SourceFd(&self.fd),
            mio::Token(token),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        ) {
            w.io.remove(token);
            return Err(e);
        }
        let reg = Registration {
            shared: ctx.shared.clone(),
            worker: ctx.index,
            token,
            io,
        };
        if let Err(reg) = self.reg.set(reg) {
            // Another green thread registered it first: undo ours.
            let w = &reg.shared.workers[reg.worker];
            let _ = w.registry.deregister(&mut mio::unix::SourceFd(&self.fd));
            w.io.remove(reg.token);
            // Re-register theirs: our deregister removed the fd from epoll.
            if let Some(theirs) = self.reg.get() {
                let tw = &theirs.shared.workers[theirs.worker];
                let _ = tw.registry.reregister(
                    &mut mio::unix::SourceFd(&self.fd),
                    mio::Token(theirs.token),
                    mio::Interest::READABLE | mio::Interest::WRITABLE,
                );
            }
        }
        Ok(self.reg.get())
    }

    /// Runs `op` (a non-blocking call on this descriptor) until it returns
    /// something other than `WouldBlock`, waiting for `interest` readiness in
    /// between. Past `deadline` returns `TimedOut` (std's kind for socket
    /// timeouts is `WouldBlock` on Unix; see `timed_out_kind`). A cancellation
    /// point.
    pub(crate) fn do_io<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let observed = self.reg.get().map(|r| r.io.readiness.load(Acquire));
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
            if let (Some(obs), Some(r)) = (observed, self.reg.get()) {
                r.io.clear(obs, interest);
            }
            if !self.wait(interest, deadline)? {
                return Err(timed_out());
            }
        }
    }

    /// Waits until the descriptor may be ready for `interest`. Returns
    /// Ok(false) if `deadline` passed first. A cancellation point.
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<bool> {
        match self.registration()? {
            Some(reg) => wait_green(reg, interest, deadline),
            None => wait_poll(self.fd, interest, deadline),
        }
    }
}

impl IoSource {
    /// Removes the descriptor from its poll now and wakes its waiters, for
    /// an owner that is about to close it while others may still hold this
    /// source (the monkey layer's `close`/`dup2` hooks, which see only fd
    /// numbers). Later waits fall back to `poll(2)`; dropping does nothing
    /// more.
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn deregister(&self) {
        if self.gone.swap(true, AcqRel) {
            return;
        }
        if let Some(reg) = self.reg.get() {
            let w = &reg.shared.workers[reg.worker];
            let _ = w.registry.deregister(&mut mio::unix::SourceFd(&self.fd));
            w.io.remove(reg.token);
            reg.io.set(ERROR);
        }
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        if self.gone.load(Acquire) {
            return;
        }
        if let Some(reg) = self.reg.get() {
            let w = &reg.shared.workers[reg.worker];
            let _ = w.registry.deregister(&mut mio::unix::SourceFd(&self.fd));
            w.io.remove(reg.token);
            // Wake anyone still waiting so they observe the close.
            reg.io.set(ERROR);
        }
    }
}

/// The error a timed-out socket operation returns: `WouldBlock`, exactly as
/// std's sockets report an expired `set_read_timeout` on Unix.
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "operation timed out")
}

fn wait_green(
    reg: &Registration,
    interest: Interest,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    let shared = &reg.shared;
    loop {
        if reg.io.readiness.load(Acquire) & interest.mask() != 0 {
            return Ok(true);
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Ok(false);
            }
        }
        reg.io
            .waiters(interest)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Unparker::current());
        if reg.io.readiness.load(Acquire) & interest.mask() != 0 {
            return Ok(true);
        }
        shared.io_waiting.fetch_add(1, SeqCst);
        struct Dec<'a>(&'a AtomicUsize);
        impl Drop for Dec<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, SeqCst);
            }
        }
        let _dec = Dec(&shared.io_waiting);
        park_until(deadline, WaitReason::Io);
    }
}

/// Waits with poll(2): for OS threads, and green code that may not switch.
fn wait_poll(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(false);
                }
                let ms = (d - now).as_millis().saturating_add(1);
                ms.min(i32::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events: interest.poll_events(),
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd array of length 1 for the call.
        let n = unsafe { crate::sys::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            return Ok(true);
        }
    }
}
