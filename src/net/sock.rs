//! The part every green socket shares: the std socket (non-blocking
//! underneath), its readiness registration, the user's timeouts and
//! non-blocking mode.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::runtime::io::{Interest, IoSource};

/// A std socket in non-blocking mode plus what greenhouse needs to make its
/// operations park instead of failing with `WouldBlock`. Clones of a green
/// socket share one `Sock` (through an `Arc`), so one green thread can read
/// while another writes, on any workers.
pub(crate) struct Sock<S: AsRawFd> {
    // Declared first: dropped (deregistered) before `sock` closes the fd.
    src: IoSource,
    pub(crate) sock: S,
    /// Nanoseconds; 0 = no timeout (std rejects zero durations).
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// The user asked for non-blocking mode: operations return WouldBlock
    /// instead of parking.
    nonblocking: AtomicBool,
}

impl<S: AsRawFd> Sock<S> {
    /// Wraps `sock`, which must already be in non-blocking mode.
    pub(crate) fn new(sock: S) -> Sock<S> {
        Sock {
            src: IoSource::new(sock.as_raw_fd()),
            sock,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
        }
    }

    fn deadline(slot: &AtomicU64) -> Option<Instant> {
        match slot.load(Relaxed) {
            0 => None,
            ns => Instant::now().checked_add(Duration::from_nanos(ns)),
        }
    }

    /// Runs a read-side operation, parking until the socket is readable
    /// (honouring the read timeout and non-blocking mode).
    pub(crate) fn read<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.nonblocking.load(Relaxed) {
            return op(&self.sock);
        }
        let deadline = Self::deadline(&self.read_timeout);
        self.src.do_io(Interest::Read, deadline, || op(&self.sock))
    }

    /// Runs a write-side operation, parking until the socket is writable.
    pub(crate) fn write<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.nonblocking.load(Relaxed) {
            return op(&self.sock);
        }
        let deadline = Self::deadline(&self.write_timeout);
        self.src.do_io(Interest::Write, deadline, || op(&self.sock))
    }

    /// Runs `op` until it stops returning `WouldBlock`, waiting for
    /// writability, until `deadline` (used by connect).
    pub(crate) fn write_until<R>(
        &self,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.src.do_io(Interest::Write, deadline, op)
    }

    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        set_timeout(&self.read_timeout, d)
    }

    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        set_timeout(&self.write_timeout, d)
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        get_timeout(&self.read_timeout)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        get_timeout(&self.write_timeout)
    }

    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Relaxed);
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Relaxed)
    }

    /// Deregisters and returns the std socket, still open.
    pub(crate) fn into_inner(self) -> S {
        let Sock { src, sock, .. } = self;
        drop(src);
        sock
    }
}

fn set_timeout(slot: &AtomicU64, d: Option<Duration>) -> io::Result<()> {
    let ns = match d {
        None => 0,
        Some(d) if d.is_zero() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ))
        }
        Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
    };
    slot.store(ns, Relaxed);
    Ok(())
}

fn get_timeout(slot: &AtomicU64) -> Option<Duration> {
    match slot.load(Relaxed) {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

/// A duplicate of `fd` in blocking or non-blocking mode, owned by the caller:
/// how green sockets convert back to std ones.
pub(crate) fn dup_fd(
    fd: std::os::fd::RawFd,
    nonblocking: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{BorrowedFd, OwnedFd};
    // SAFETY: `fd` is open for the duration of this call (borrowed from a
    // live green socket).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned: OwnedFd = borrowed.try_clone_to_owned()?;
    set_nonblocking_fd(owned.as_raw_fd(), nonblocking)?;
    Ok(owned)
}

pub(crate) fn set_nonblocking_fd(fd: std::os::fd::RawFd, on: bool) -> io::Result<()> {
    let mut nb: libc::c_int = on as libc::c_int;
    // SAFETY: FIONBIO takes a pointer to an int, valid for the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONBIO, &mut nb) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
