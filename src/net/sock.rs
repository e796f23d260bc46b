//! The part every green socket shares: the std socket (non-blocking
//! underneath), its readiness registration, and the user's view of its
//! blocking mode and timeouts.
//!
//! # Clones duplicate the descriptor
//!
//! `try_clone` duplicates the descriptor (`dup(2)`, exactly as std does), so
//! every clone owns its own descriptor: `as_raw_fd` numbers differ,
//! `into_raw_fd` always hands over a descriptor the caller alone owns, and
//! dropping one clone closes only its own descriptor (the connection stays
//! up while any clone lives). Each clone registers its own descriptor with
//! the poll of the worker it first waits on, so a reader and a writer on
//! different workers never share a waiter list.
//!
//! What std keeps per socket or per open file description — timeouts
//! (`SO_RCVTIMEO`/`SO_SNDTIMEO`) and non-blocking mode (`O_NONBLOCK`) — is
//! shared between clones here too ([`Settings`] behind an `Arc`): setting a
//! timeout on one clone sets it on all, as with std.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::io::{Interest, IoSource};

/// The std socket types greenhouse wraps.
pub(crate) trait StdSocket: AsRawFd + IntoRawFd + Sized {
    /// std's `try_clone`: a duplicate descriptor.
    fn try_clone_std(&self) -> io::Result<Self>;
    /// std's `set_nonblocking` (`O_NONBLOCK` on the open file description).
    fn set_nonblocking_std(&self, on: bool) -> io::Result<()>;
    /// The socket's own `SO_RCVTIMEO`/`SO_SNDTIMEO` (listeners have none).
    fn timeouts_std(&self) -> io::Result<(Option<Duration>, Option<Duration>)> {
        Ok((None, None))
    }
    fn set_read_timeout_std(&self, _d: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn set_write_timeout_std(&self, _d: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! std_socket {
    ($t:ty) => {
        impl StdSocket for $t {
            fn try_clone_std(&self) -> io::Result<Self> {
                self.try_clone()
            }
            fn set_nonblocking_std(&self, on: bool) -> io::Result<()> {
                self.set_nonblocking(on)
            }
        }
    };
    ($t:ty, timeouts) => {
        impl StdSocket for $t {
            fn try_clone_std(&self) -> io::Result<Self> {
                self.try_clone()
            }
            fn set_nonblocking_std(&self, on: bool) -> io::Result<()> {
                self.set_nonblocking(on)
            }
            fn timeouts_std(&self) -> io::Result<(Option<Duration>, Option<Duration>)> {
                Ok((self.read_timeout()?, self.write_timeout()?))
            }
            fn set_read_timeout_std(&self, d: Option<Duration>) -> io::Result<()> {
                self.set_read_timeout(d)
            }
            fn set_write_timeout_std(&self, d: Option<Duration>) -> io::Result<()> {
                self.set_write_timeout(d)
            }
        }
    };
}

std_socket!(std::net::TcpListener);
std_socket!(std::net::TcpStream, timeouts);
std_socket!(std::net::UdpSocket, timeouts);
std_socket!(std::os::unix::net::UnixListener);
std_socket!(std::os::unix::net::UnixStream, timeouts);
std_socket!(std::os::unix::net::UnixDatagram, timeouts);

/// The user's view of a socket's blocking behaviour, shared by its clones.
pub(crate) struct Settings {
    /// Nanoseconds; 0 = no timeout (std rejects zero durations).
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// The user asked for non-blocking mode: operations return WouldBlock
    /// instead of parking.
    nonblocking: AtomicBool,
}

/// A std socket in non-blocking mode plus what greenhouse needs to make its
/// operations park instead of failing with `WouldBlock`.
pub(crate) struct Sock<S: StdSocket> {
    // Declared first: dropped (deregistered) before `sock` closes the fd.
    src: IoSource,
    pub(crate) sock: S,
    settings: Arc<Settings>,
}

impl<S: StdSocket> Sock<S> {
    /// Wraps a std socket, switching its descriptor to non-blocking mode and
    /// adopting the timeouts it already has (as std would honour them).
    pub(crate) fn from_std(sock: S) -> io::Result<Sock<S>> {
        sock.set_nonblocking_std(true)?;
        sock.timeouts_std()?;
        Ok(Sock::adopt(sock))
    }

    /// [`Sock::from_std`] for infallible conversions (`From`): setting
    /// `O_NONBLOCK` or reading the timeouts only fails on a descriptor that
    /// is not an open socket, and then every later operation reports the
    /// OS's error itself.
    pub(crate) fn adopt(sock: S) -> Sock<S> {
        let _ = sock.set_nonblocking_std(true);
        let (r, w) = sock.timeouts_std().unwrap_or((None, None));
        Sock::with_settings(
            sock,
            Arc::new(Settings {
                read_timeout: AtomicU64::new(to_nanos(r)),
                write_timeout: AtomicU64::new(to_nanos(w)),
                nonblocking: AtomicBool::new(false),
            }),
        )
    }

    /// Wraps a socket the caller has already made non-blocking and that has
    /// no timeouts (fresh from `socket`/`accept`).
    pub(crate) fn fresh(sock: S) -> Sock<S> {
        Sock::with_settings(
            sock,
            Arc::new(Settings {
                read_timeout: AtomicU64::new(0),
                write_timeout: AtomicU64::new(0),
                nonblocking: AtomicBool::new(false),
            }),
        )
    }

    fn with_settings(sock: S, settings: Arc<Settings>) -> Sock<S> {
        Sock {
            src: IoSource::new(sock.as_raw_fd()),
            sock,
            settings,
        }
    }

    /// A clone owning a duplicate descriptor and sharing the settings.
    pub(crate) fn try_clone(&self) -> io::Result<Sock<S>> {
        Ok(Sock::with_settings(
            self.sock.try_clone_std()?,
            self.settings.clone(),
        ))
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
        if self.settings.nonblocking.load(Relaxed) {
            return op(&self.sock);
        }
        let deadline = Self::deadline(&self.settings.read_timeout);
        self.src.do_io(Interest::Read, deadline, || op(&self.sock))
    }

    /// Runs a write-side operation, parking until the socket is writable.
    pub(crate) fn write<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.settings.nonblocking.load(Relaxed) {
            return op(&self.sock);
        }
        let deadline = Self::deadline(&self.settings.write_timeout);
        self.src.do_io(Interest::Write, deadline, || op(&self.sock))
    }

    /// A stream read into `len` bytes of buffer: as [`read`](Sock::read),
    /// and a short read (0 < n < len) marks the socket drained, so the next
    /// read parks without a failing system call.
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.settings.nonblocking.load(Relaxed) {
            return op(&self.sock);
        }
        let deadline = Self::deadline(&self.settings.read_timeout);
        self.src.do_io_drained(
            Interest::Read,
            deadline,
            || op(&self.sock),
            |&n| n > 0 && n < len,
        )
    }

    /// A stream write of `len` bytes: as [`write`](Sock::write), and a short
    /// write marks the socket full.
    pub(crate) fn write_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.settings.nonblocking.load(Relaxed) {
            return op(&self.sock);
        }
        let deadline = Self::deadline(&self.settings.write_timeout);
        self.src
            .do_io_drained(Interest::Write, deadline, || op(&self.sock), |&n| n < len)
    }

    /// Runs `op` until it stops returning `WouldBlock`, waiting for
    /// writability, until `deadline` (how connect waits for the handshake).
    pub(crate) fn write_until<R>(
        &self,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.src.do_io(Interest::Write, deadline, op)
    }

    /// Sets the read timeout here and on the socket itself (so the socket
    /// keeps it if converted back to std's type).
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.sock.set_read_timeout_std(d)?;
        self.settings.read_timeout.store(to_nanos(d), Relaxed);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.sock.set_write_timeout_std(d)?;
        self.settings.write_timeout.store(to_nanos(d), Relaxed);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        from_nanos(self.settings.read_timeout.load(Relaxed))
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        from_nanos(self.settings.write_timeout.load(Relaxed))
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        self.settings.nonblocking.load(Relaxed)
    }

    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.settings.nonblocking.store(on, Relaxed);
    }

    /// Deregisters and returns the std socket in the mode the user set
    /// (blocking unless `set_nonblocking(true)`).
    ///
    /// # Errors
    /// While clones of this socket exist: switching the open file
    /// description they share to blocking mode would block their workers.
    pub(crate) fn into_std(self) -> io::Result<S> {
        if Arc::strong_count(&self.settings) > 1 {
            return Err(io::Error::other(
                "greenhouse: cannot convert a socket into std's type while clones of it \
                 (try_clone) are alive: they share the descriptor's blocking mode",
            ));
        }
        let nonblocking = self.settings.nonblocking.load(Relaxed);
        let sock = self.into_inner();
        sock.set_nonblocking_std(nonblocking)?;
        Ok(sock)
    }

    /// Deregisters and returns the std socket, still open and non-blocking.
    pub(crate) fn into_inner(self) -> S {
        let Sock { src, sock, .. } = self;
        drop(src);
        sock
    }

    /// Deregisters and hands over the descriptor (still non-blocking).
    pub(crate) fn into_raw_fd(self) -> RawFd {
        self.into_inner().into_raw_fd()
    }
}

fn check_timeout(d: Option<Duration>) -> io::Result<()> {
    if d == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

fn to_nanos(d: Option<Duration>) -> u64 {
    match d {
        None => 0,
        Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
    }
}

fn from_nanos(ns: u64) -> Option<Duration> {
    match ns {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}
