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
//! (tokio's scheme).
//!
//! Callers that may not switch — plain OS threads, code on a nested greenlet
//! stack, code running while its thread unwinds — wait with `poll(2)` on the
//! one descriptor instead: blocking the worker in `park` while the readiness
//! event can only come from that same worker's poll would never wake up.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::park::{current_task, current_task_on_own_stack, park_until, Unparker};
use super::task::WaitReason;
use super::worker::{local_ctx, Shared, WorkerCtx};

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
            wake_all(&self.readers);
        }
        if bits & Interest::Write.mask() != 0 {
            wake_all(&self.writers);
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

/// Unparks every waiter in `list`, keeping the list's allocation for the next
/// waits.
fn wake_all(list: &Mutex<Vec<Unparker>>) {
    let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
    for u in l.drain(..) {
        u.unpark();
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
    /// The current registration, if a green thread has waited on `fd`.
    /// Cloned out (one lock, one count) once per I/O call, never held across
    /// a park.
    reg: Mutex<Option<Arc<Registration>>>,
}

/// How the caller waits: parked through a registration with its worker's
/// poll, or blocked in `poll(2)`.
enum Waiter {
    Green(&'static WorkerCtx),
    Os,
}

fn waiter() -> Waiter {
    match local_ctx() {
        Some(ctx) if current_task_on_own_stack().is_some() && !std::thread::panicking() => {
            Waiter::Green(ctx)
        }
        _ => Waiter::Os,
    }
}

impl IoSource {
    /// Wraps `fd`, which the caller has set to non-blocking mode.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            reg: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<Registration>> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The registration green threads of `ctx`'s runtime wait through:
    /// the existing one, else a new one with `ctx`'s worker (replacing one
    /// with another runtime).
    fn registration(&self, ctx: &WorkerCtx) -> io::Result<Arc<Registration>> {
        let mut slot = self.reg.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &*slot {
            if Arc::ptr_eq(&r.shared, &ctx.shared) {
                return Ok(r.clone());
            }
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
        if let Some(old) = slot.take() {
            old.deregister(self.fd);
        }
        let reg = Arc::new(Registration {
            shared: ctx.shared.clone(),
            worker: ctx.index,
            token,
            io,
        });
        *slot = Some(reg.clone());
        Ok(reg)
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
            let observed = reg.as_ref().map(|r| r.io.readiness.load(Acquire));
            // A green thread of the registration's own runtime trusts the
            // readiness bits: clear means no event since the last
            // `WouldBlock`, so the call would fail again — park at once and
            // save that system call (one per wait; a third of the calls of
            // an echo round trip). Everyone else tries the call: their
            // events may come from a poll nobody runs.
            let doomed = match (&waiting, &reg, observed) {
                (Waiter::Green(ctx), Some(r), Some(obs)) => {
                    obs & interest.mask() == 0 && Arc::ptr_eq(&r.shared, &ctx.shared)
                }
                _ => false,
            };
            if !doomed {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(v) => {
                        if let (Some(obs), Some(r)) = (observed, &reg) {
                            if drained(&v) {
                                r.io.clear_drained(obs, interest);
                            }
                        }
                        return Ok(v);
                    }
                    Err(e) => return Err(e),
                }
                if let (Some(obs), Some(r)) = (observed, &reg) {
                    r.io.clear(obs, interest);
                }
            }
            let ready = match waiting {
                Waiter::Green(ctx) => {
                    let r = self.registration(ctx)?;
                    let ready = wait_green(&r, interest, deadline);
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
            Waiter::Green(ctx) => match self.registration(ctx) {
                Ok(r) => Ok(wait_green(&r, interest, deadline)),
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
        let reg = self.reg.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(reg) = reg {
            reg.deregister(self.fd);
        }
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        let slot = self.reg.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(reg) = slot.take() {
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
/// deadlock detector knows an outside event may still wake it.
pub(crate) struct IoWaitScope(Option<Arc<Shared>>);

impl IoWaitScope {
    pub(crate) fn enter() -> IoWaitScope {
        let shared = current_task().map(|t| t.shared.clone());
        if let Some(s) = &shared {
            s.io_waiting.fetch_add(1, SeqCst);
        }
        IoWaitScope(shared)
    }
}

impl Drop for IoWaitScope {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.io_waiting.fetch_sub(1, SeqCst);
        }
    }
}

/// Parks until the registration reports `interest` readiness. Returns false
/// if `deadline` passed first.
fn wait_green(reg: &Registration, interest: Interest, deadline: Option<Instant>) -> bool {
    /// Removes this green thread from the waiter list when it stops waiting
    /// (woken, timed out, or unwinding from a kill): waits that time out
    /// again and again must not pile up entries.
    struct Listed<'a> {
        list: &'a Mutex<Vec<Unparker>>,
        me: Unparker,
    }
    impl Drop for Listed<'_> {
        fn drop(&mut self) {
            let mut l = self.list.lock().unwrap_or_else(|e| e.into_inner());
            l.retain(|u| !u.same_as(&self.me));
        }
    }
    let list = reg.io.waiters(interest);
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
        let me = listed
            .get_or_insert_with(|| Listed {
                list,
                me: Unparker::current(),
            })
            .me
            .clone();
        {
            let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
            if !l.iter().any(|u| u.same_as(&me)) {
                l.push(me);
            }
        }
        if reg.io.ready(interest) {
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
}
