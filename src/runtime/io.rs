//! Socket readiness: file descriptors registered with a worker's `mio::Poll`
//! and the green threads waiting for them.
//!
//! A descriptor is registered (edge-triggered, readable + writable) with the
//! poll of the worker where a green thread first has to wait on it, and stays
//! registered until its [`IoSource`] is dropped. Green threads on any worker
//! of that runtime may wait on it: readiness events unpark them through their
//! `Unparker`. If a green thread of *another* runtime waits on it (a socket
//! that outlived the runtime it was first used in), the descriptor moves its
//! registration to that runtime.
//!
//! Readiness is a word `tick << 8 | bits`. An event ORs bits in and bumps the
//! tick; an operation that hit `WouldBlock` clears the bits only if the tick
//! it observed is unchanged, so an event that arrived in between is not lost
//! (tokio's scheme). Two more bits say that a waiter list is non-empty: an
//! event locks a list only when its bit is set, and a waiter that sets the
//! bit learns from the same atomic operation whether readiness came in
//! meanwhile (so no wake-up is lost between listing and parking).
//!
//! Callers that may not switch — plain OS threads, code on a nested greenlet
//! stack, code running while its thread unwinds — wait with `poll(2)` on the
//! one descriptor instead: blocking the worker in `park` while the readiness
//! event can only come from that same worker's poll would never wake up.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::park::{current_task, current_task_on_own_stack, park_until, Unparker};
use super::task::{Task, WaitReason};
use super::worker::{local_ctx, Shared, WorkerCtx};

const READABLE: usize = 0b0001;
const WRITABLE: usize = 0b0010;
const READ_CLOSED: usize = 0b0100;
const WRITE_CLOSED: usize = 0b1000;
const ERROR: usize = 0b1_0000;
/// `readers` is non-empty (changed only under its lock).
const READ_WAITERS: usize = 0b10_0000;
/// `writers` is non-empty (changed only under its lock).
const WRITE_WAITERS: usize = 0b100_0000;
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
    /// The bit that says this direction's waiter list is non-empty.
    fn waiters_bit(self) -> usize {
        match self {
            Interest::Read => READ_WAITERS,
            Interest::Write => WRITE_WAITERS,
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
        let prev = match self.readiness.fetch_update(AcqRel, Acquire, |cur| {
            let tick = (cur >> 8).wrapping_add(1);
            Some((tick << 8) | (cur & BITS) | bits)
        }) {
            Ok(prev) | Err(prev) => prev,
        };
        // A list whose bit was clear had no waiter when the bits went in; a
        // waiter listing itself later sees them when it sets the bit.
        for interest in [Interest::Read, Interest::Write] {
            if bits & interest.mask() != 0 && prev & interest.waiters_bit() != 0 {
                self.wake_all(interest);
            }
        }
    }

    /// Unparks every waiter for `interest`, keeping the list's allocation
    /// for the next waits.
    fn wake_all(&self, interest: Interest) {
        let mut l = self
            .waiters(interest)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.readiness.fetch_and(!interest.waiters_bit(), AcqRel);
        for u in l.drain(..) {
            u.unpark();
        }
    }

    /// Lists the running green thread `me` as waiting for `interest`
    /// (once). Returns true if readiness for it is already set: then the
    /// caller must not park.
    fn listen(&self, interest: Interest, me: *const Task) -> bool {
        let mut l = self
            .waiters(interest)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !l.iter().any(|u| is_task(u, me)) {
            l.push(Unparker::current());
        }
        let prev = self.readiness.fetch_or(interest.waiters_bit(), AcqRel);
        prev & interest.mask() != 0
    }

    /// Takes `me` off the waiter list for `interest`, if it is still there.
    fn unlisten(&self, interest: Interest, me: *const Task) {
        // Clear bit: a wake-up emptied the list after we were listed (we
        // cannot have listed ourselves again since): nothing to remove.
        if self.readiness.load(Acquire) & interest.waiters_bit() == 0 {
            return;
        }
        let mut l = self
            .waiters(interest)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        l.retain(|u| !is_task(u, me));
        if l.is_empty() {
            self.readiness.fetch_and(!interest.waiters_bit(), AcqRel);
        }
    }

    fn waiters(&self, interest: Interest) -> &Mutex<Vec<Unparker>> {
        match interest {
            Interest::Read => &self.readers,
            Interest::Write => &self.writers,
        }
    }

    /// Clears the readiness an operation just found stale (the OS said
    /// `WouldBlock`, so any error or hang-up it had was consumed too), unless
    /// an event came in since `observed` was read.
    fn clear(&self, observed: usize, interest: Interest) {
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |cur| {
            if cur >> 8 != observed >> 8 {
                None
            } else {
                Some(cur & !interest.mask())
            }
        });
    }

    /// After a call that came up short (it drained the receive buffer or
    /// filled the send buffer): clears only the plain readable/writable bit,
    /// unless an event came in since `observed`. Hang-up and error bits stay
    /// set — they are final, and edge-triggered epoll will not report them
    /// again, so the next read must still see end-of-file at once.
    fn clear_drained(&self, observed: usize, interest: Interest) {
        let bit = match interest {
            Interest::Read => READABLE,
            Interest::Write => WRITABLE,
        };
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |cur| {
            if cur >> 8 != observed >> 8 {
                None
            } else {
                Some(cur & !bit)
            }
        });
    }

    /// Whether the last event says an operation of this kind may proceed.
    fn ready(&self, interest: Interest) -> bool {
        self.readiness.load(Acquire) & interest.mask() != 0
    }
}

/// Whether `u` wakes the green thread `t` (compared by address only).
fn is_task(u: &Unparker, t: *const Task) -> bool {
    matches!(u, Unparker::Green(r) if std::ptr::eq(&**r, t))
}

/// A worker's table of registered descriptors (the index is the mio token),
/// and its count of green threads waiting on I/O.
#[derive(Default)]
pub(crate) struct IoSlab {
    inner: Mutex<SlabInner>,
    /// Registered descriptors. Only the owner worker inserts (a green thread
    /// registers with its own worker's poll), so the owner's relaxed read is
    /// exact; a removal seen late costs one extra poll.
    len: AtomicUsize,
    /// Green threads of this worker parked on I/O (see [`IoWaitScope`]).
    /// Written only by the worker's own thread — a green thread never
    /// changes OS thread — so a load and a store, no locked instruction.
    waiting: AtomicUsize,
}

#[derive(Default)]
struct SlabInner {
    entries: Vec<Option<Arc<Registration>>>,
    free: Vec<usize>,
}

impl IoSlab {
    /// Whether no descriptor is registered (the worker may skip polling).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Relaxed) == 0
    }

    /// Adds the registration `make` builds for the token it is given.
    fn insert(&self, make: impl FnOnce(usize) -> Arc<Registration>) -> Arc<Registration> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.len.fetch_add(1, Relaxed);
        let token = match s.free.pop() {
            Some(i) => i,
            None => {
                s.entries.push(None);
                s.entries.len() - 1
            }
        };
        let reg = make(token);
        s.entries[token] = Some(reg.clone());
        reg
    }

    fn remove(&self, token: usize) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = s.entries.get_mut(token) {
            if slot.take().is_some() {
                s.free.push(token);
                self.len.fetch_sub(1, Relaxed);
            }
        }
    }

    /// Applies a batch of poll events (skipping `skip`, the waker's token),
    /// under one lock of the table. A token whose entry was removed (or
    /// reused) gets at worst a spurious wake-up, which waiters tolerate.
    pub(crate) fn dispatch(&self, events: &mio::Events, skip: mio::Token) {
        if events.is_empty() {
            return;
        }
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for ev in events.iter() {
            if ev.token() == skip {
                continue;
            }
            let Some(Some(reg)) = s.entries.get(ev.token().0) else {
                continue;
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
            // Waking under the table's lock is fine: unparking never
            // touches a table, and only registrations and drops contend.
            reg.io.set(bits);
        }
    }
}

/// Green threads parked on I/O in `shared`'s runtime now (the deadlock
/// detector leaves them alone: an outside event may wake them).
pub(crate) fn io_waiting(shared: &Shared) -> usize {
    shared
        .workers
        .iter()
        .map(|w| w.io.waiting.load(SeqCst))
        .sum()
}

/// Where a descriptor is registered, and its readiness and waiters (one
/// allocation: every I/O call reads both).
struct Registration {
    io: ScheduledIo,
    shared: Arc<Shared>,
    worker: usize,
    token: usize,
}

impl Registration {
    /// Removes `fd` (still open) from the worker's poll and wakes whoever
    /// waits through this registration, so they look again.
    fn deregister(&self, fd: RawFd) {
        let w = &self.shared.workers[self.worker];
        let _ = w.registry.deregister(&mut mio::unix::SourceFd(&fd));
        w.io.remove(self.token);
        self.io.set(ERROR);
    }
}

/// A non-blocking descriptor that green threads (and OS threads) can wait on.
/// Owned by a socket type; must be dropped before the descriptor is closed.
pub(crate) struct IoSource {
    fd: RawFd,
    /// The current registration (null until a green thread has waited on
    /// `fd`): one of those in `regs`. Read with one load on every I/O
    /// call, no lock and no reference count.
    current: AtomicPtr<Registration>,
    /// Every registration this source has had, the current one last. Also
    /// serialises changes of `current`. Kept until the source drops, so a
    /// `&Registration` read from `current` stays valid for as long as the
    /// `&self` it came through. More than one only when the descriptor
    /// moved between runtimes or was deregistered by the monkey layer's
    /// `close`/`dup2` hooks — rare, and bounded by how often the user does
    /// that with one socket.
    regs: Mutex<Vec<Arc<Registration>>>,
}

/// How the caller waits: parked through a registration with its worker's
/// poll, or blocked in `poll(2)`.
enum Waiter {
    /// The running green thread, on its own stack, and its worker.
    Green(&'static WorkerCtx, &'static Task),
    Os,
}

fn waiter() -> Waiter {
    match (local_ctx(), current_task_on_own_stack()) {
        (Some(ctx), Some(task)) if !std::thread::panicking() => Waiter::Green(ctx, task),
        _ => Waiter::Os,
    }
}

impl IoSource {
    /// Wraps `fd`, which the caller has set to non-blocking mode.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            current: AtomicPtr::new(std::ptr::null_mut()),
            regs: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    fn current(&self) -> Option<&Registration> {
        let p = self.current.load(Acquire);
        // SAFETY: a non-null `current` points to a registration that
        // `self.regs` holds a reference to, published (Release) after it was
        // built; `regs` only grows until `self` drops, and the returned
        // reference borrows `self`.
        unsafe { p.as_ref() }
    }

    /// The registration green threads of `ctx`'s runtime wait through:
    /// the existing one, else a new one with `ctx`'s worker (replacing one
    /// with another runtime).
    fn registration(&self, ctx: &WorkerCtx) -> io::Result<&Registration> {
        if let Some(r) = self.current() {
            if Arc::ptr_eq(&r.shared, &ctx.shared) {
                return Ok(r);
            }
        }
        let mut regs = self.regs.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current();
        if let Some(r) = old {
            if Arc::ptr_eq(&r.shared, &ctx.shared) {
                return Ok(r); // registered meanwhile
            }
        }
        let w = &ctx.shared.workers[ctx.index];
        let reg = w.io.insert(|token| {
            Arc::new(Registration {
                io: ScheduledIo::new(),
                shared: ctx.shared.clone(),
                worker: ctx.index,
                token,
            })
        });
        if let Err(e) = w.registry.register(
            &mut mio::unix::SourceFd(&self.fd),
            mio::Token(reg.token),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        ) {
            w.io.remove(reg.token);
            return Err(e);
        }
        if let Some(old) = old {
            old.deregister(self.fd);
        }
        let p = Arc::as_ptr(&reg) as *mut Registration;
        regs.push(reg);
        self.current.store(p, Release);
        // SAFETY: `p` is a registration `regs` now holds (see `current`).
        Ok(unsafe { &*p })
    }

    /// Runs `op` (a non-blocking call on this descriptor) until it returns
    /// something other than `WouldBlock`, waiting for `interest` readiness in
    /// between. Past `deadline` returns [`timed_out`]. A cancellation point.
    pub(crate) fn do_io<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.do_io_drained(interest, deadline, op, |_| false)
    }

    /// [`do_io`](IoSource::do_io) for stream reads and writes: when
    /// `drained(&result)` says the call came up short (a read that did not
    /// fill its buffer, a write that did not take all of it), the socket is
    /// known to be drained (full), so its readable (writable) bit is cleared
    /// and the next call parks without trying; hang-up and error bits stay,
    /// so end-of-file after a short read is still seen at once.
    pub(crate) fn do_io_drained<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let waiting = waiter();
        let mut reg = self.current();
        loop {
            let observed = reg.map(|r| r.io.readiness.load(Acquire));
            // A green thread of the registration's own runtime trusts the
            // readiness bits: clear means no event since the last
            // `WouldBlock`, so the call would fail again — park at once and
            // save that system call (one per wait; a third of the calls of
            // an echo round trip). Everyone else tries the call: their
            // events may come from a poll nobody runs.
            let doomed = match (&waiting, reg, observed) {
                (Waiter::Green(ctx, _), Some(r), Some(obs)) => {
                    obs & interest.mask() == 0 && Arc::ptr_eq(&r.shared, &ctx.shared)
                }
                _ => false,
            };
            if !doomed {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(v) => {
                        if let (Some(obs), Some(r)) = (observed, reg) {
                            if drained(&v) {
                                r.io.clear_drained(obs, interest);
                            }
                        }
                        return Ok(v);
                    }
                    Err(e) => return Err(e),
                }
                if let (Some(obs), Some(r)) = (observed, reg) {
                    r.io.clear(obs, interest);
                }
            }
            let ready = match waiting {
                Waiter::Green(ctx, me) => {
                    let r = self.registration(ctx)?;
                    let ready = wait_green(r, me, interest, deadline);
                    reg = Some(r);
                    ready
                }
                Waiter::Os => wait_poll(self.fd, interest, deadline)?,
            };
            if !ready {
                return Err(timed_out());
            }
        }
    }

    /// Waits until the descriptor may be ready for `interest`. Returns
    /// Ok(false) if `deadline` passed first. A cancellation point.
    ///
    /// A descriptor epoll refuses (`EPERM`: a regular file) is always ready,
    /// as `poll(2)` reports it.
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<bool> {
        match waiter() {
            Waiter::Green(ctx, me) => match self.registration(ctx) {
                Ok(r) => Ok(wait_green(r, me, interest, deadline)),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(true),
                Err(e) => Err(e),
            },
            Waiter::Os => wait_poll(self.fd, interest, deadline),
        }
    }
}

impl IoSource {
    /// Removes the descriptor from its poll now and wakes its waiters, for
    /// an owner that is about to close it while others may still hold this
    /// source: the monkey layer's `close`/`dup2` hooks, which see only fd
    /// numbers. A later wait registers anew (and fails if the descriptor is
    /// gone).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn deregister(&self) {
        let _regs = self.regs.lock().unwrap_or_else(|e| e.into_inner());
        let p = self.current.swap(std::ptr::null_mut(), AcqRel);
        // SAFETY: as in `current`; the registration stays in `regs`.
        if let Some(reg) = unsafe { p.as_ref() } {
            reg.deregister(self.fd);
        }
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        if let Some(reg) = self.current() {
            reg.deregister(self.fd);
        }
    }
}

/// The error a timed-out socket operation returns: `WouldBlock`, exactly as
/// std's sockets report an expired `set_read_timeout` on Unix.
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, "operation timed out")
}

/// Counts the calling green thread as waiting on I/O while alive, so the
/// deadlock detector knows an outside event may still wake it. The count is
/// its worker's ([`IoSlab::waiting`]): entered and left on the green
/// thread's own OS thread, so no locked instruction and no cache line shared
/// between workers.
pub(crate) struct IoWaitScope(bool);

/// The I/O waiter count of the running green thread's worker.
fn with_waiting_count(f: impl FnOnce(&AtomicUsize)) -> bool {
    match current_task() {
        Some(t) => {
            let w = &t.shared.workers[t.owner.load(Relaxed)];
            f(&w.io.waiting);
            true
        }
        None => false,
    }
}

impl IoWaitScope {
    pub(crate) fn enter() -> IoWaitScope {
        IoWaitScope(with_waiting_count(|n| {
            n.store(n.load(Relaxed) + 1, Release);
        }))
    }
}

impl Drop for IoWaitScope {
    fn drop(&mut self) {
        if self.0 {
            // Same green thread, hence same worker and OS thread, as `enter`.
            with_waiting_count(|n| n.store(n.load(Relaxed) - 1, Release));
        }
    }
}

/// Parks until the registration reports `interest` readiness. Returns false
/// if `deadline` passed first. `me` is the running green thread, on its own
/// stack.
fn wait_green(
    reg: &Registration,
    me: &Task,
    interest: Interest,
    deadline: Option<Instant>,
) -> bool {
    /// Takes this green thread off the waiter list when it stops waiting
    /// (woken, timed out, or unwinding from a kill): waits that time out
    /// again and again must not pile up entries.
    struct Listed<'a> {
        io: &'a ScheduledIo,
        interest: Interest,
        me: *const Task,
    }
    impl Drop for Listed<'_> {
        fn drop(&mut self) {
            self.io.unlisten(self.interest, self.me);
        }
    }
    let mut listed: Option<Listed<'_>> = None;
    let mut scope: Option<IoWaitScope> = None;
    loop {
        if reg.io.ready(interest) {
            return true;
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return false;
            }
        }
        listed.get_or_insert(Listed {
            io: &reg.io,
            interest,
            me,
        });
        if reg.io.listen(interest, me) {
            return true;
        }
        scope.get_or_insert_with(IoWaitScope::enter);
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
        if poll_once(fd, interest, timeout_ms)? {
            return Ok(true);
        }
    }
}

/// One `poll(2)` on `fd`: whether it reported readiness (or an error or
/// hang-up) within `timeout_ms` (-1: no limit). `EINTR` counts as not ready.
pub(crate) fn poll_once(
    fd: RawFd,
    interest: Interest,
    timeout_ms: libc::c_int,
) -> io::Result<bool> {
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
            return Ok(false);
        }
        return Err(e);
    }
    if n > 0 && pfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(n > 0)
}

/// Whether `fd`'s read side is shut down or hung up (`POLLRDHUP`/`POLLHUP`
/// without waiting). Datagram sockets need it: after `shutdown(Read)` their
/// non-blocking receives fail with `EAGAIN` for ever, while a blocking
/// receive (std's) returns 0.
pub(crate) fn read_hung_up(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd array of length 1 for the call.
    let n = unsafe { crate::sys::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn waits_that_time_out_leave_no_waiter_entries_behind() {
        let rt = crate::runtime::Runtime::builder()
            .workers(1)
            .build()
            .unwrap();
        let left = rt.run(|| {
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let src = IoSource::new(a.as_raw_fd());
            for _ in 0..50 {
                let deadline = Instant::now() + Duration::from_millis(1);
                let r = src.do_io(Interest::Read, Some(deadline), || (&a).read(&mut [0; 1]));
                assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
            }
            let reg = src.current().expect("registered by the first wait");
            let n = reg.io.readers.lock().unwrap().len();
            drop(src); // deregisters before `a` closes
            n
        });
        assert_eq!(left, 0);
    }

    #[test]
    fn a_registration_moves_to_the_runtime_that_waits() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let a = std::sync::Arc::new(a);
        let src = std::sync::Arc::new(IoSource::new(a.as_raw_fd()));
        for _ in 0..2 {
            let (a, src) = (a.clone(), src.clone());
            let mut w = b.try_clone().unwrap();
            let rt = crate::runtime::Runtime::builder()
                .workers(1)
                .build()
                .unwrap();
            rt.run(move || {
                let reader = crate::thread::spawn(move || {
                    let mut buf = [0; 1];
                    src.do_io(Interest::Read, None, || (&*a).read(&mut buf))
                });
                crate::thread::yield_now();
                std::io::Write::write_all(&mut w, b"x").unwrap();
                assert_eq!(reader.join().unwrap().unwrap(), 1);
            });
        }
    }

    /// `current` hands out plain references to registrations (no lock, no
    /// count): sound only because a replaced registration stays in `regs`
    /// until the source drops. A registration read before the move must
    /// still be the live, readable object after two moves.
    #[test]
    fn replaced_registrations_stay_alive_until_the_source_drops() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let src = std::sync::Arc::new(IoSource::new(a.as_raw_fd()));
        let mut seen: Vec<usize> = Vec::new();
        for _ in 0..3 {
            let src2 = src.clone();
            let rt = crate::runtime::Runtime::builder()
                .workers(1)
                .build()
                .unwrap();
            let p = rt.run(move || {
                let deadline = Instant::now() + Duration::from_millis(1);
                assert!(!src2.wait(Interest::Read, Some(deadline)).unwrap());
                src2.current().unwrap() as *const Registration as usize
            });
            seen.push(p);
        }
        let regs = src.regs.lock().unwrap();
        assert_eq!(regs.len(), 3, "one registration per runtime, all kept");
        for (r, p) in regs.iter().zip(&seen) {
            assert_eq!(Arc::as_ptr(r) as usize, *p);
            // Replaced ones were deregistered (their waiters woken with
            // ERROR), the last one is the current.
            assert_eq!(
                r.io.ready(Interest::Read),
                !std::ptr::eq(&**r, src.current().unwrap())
            );
        }
        drop(regs);
        drop(src); // deregisters before `a` closes
    }
}
