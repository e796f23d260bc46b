//! Green TCP: `TcpListener` and `TcpStream`, shaped like std's.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::addr::{each_addr, ToSocketAddrs};
use super::sock::{dup_fd, Sock};

/// A TCP stream between a local and a remote socket: `std::net::TcpStream`
/// whose blocking calls park the green thread instead of the worker.
///
/// Clones (from [`try_clone`](TcpStream::try_clone)) share the socket: one
/// green thread may read while another writes, on any workers. From a plain
/// OS thread every call blocks like std's.
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// use greenhouse::net::{TcpListener, TcpStream};
/// greenhouse::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = greenhouse::thread::spawn(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         s.read_exact(&mut buf).unwrap();
///         s.write_all(&buf).unwrap();
///     });
///     let mut c = TcpStream::connect(addr).unwrap();
///     c.write_all(b"hello").unwrap();
///     let mut back = [0; 5];
///     c.read_exact(&mut back).unwrap();
///     assert_eq!(&back, b"hello");
///     server.join().unwrap();
/// });
/// ```
#[derive(Clone)]
pub struct TcpStream {
    inner: Arc<Sock<std::net::TcpStream>>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.sock.local_addr().ok())
            .field("peer", &self.inner.sock.peer_addr().ok())
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl TcpStream {
    fn from_nonblocking_std(s: std::net::TcpStream) -> TcpStream {
        TcpStream {
            inner: Arc::new(Sock::new(s)),
        }
    }

    /// Wraps a std stream, switching it to non-blocking mode underneath.
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let g = greenhouse::net::TcpStream::from_std(s).unwrap();
    /// assert!(g.peer_addr().is_ok());
    /// ```
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        Ok(TcpStream::from_nonblocking_std(s))
    }

    /// Converts back into a std stream (a duplicate descriptor, in blocking
    /// mode unless non-blocking mode was set here).
    ///
    /// # Errors
    /// `Other` while other clones of this stream exist (switching the shared
    /// descriptor to blocking mode would stall them), or the OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let g = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s: std::net::TcpStream = g.into_std().unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        if Arc::strong_count(&self.inner) > 1 {
            return Err(io::Error::other(
                "greenhouse: cannot convert a TcpStream into std's while clones of it exist",
            ));
        }
        let fd = dup_fd(self.inner.sock.as_raw_fd(), self.inner.is_nonblocking())?;
        Ok(std::net::TcpStream::from(fd))
    }

    /// Opens a connection to `addr` (std's `TcpStream::connect`): each
    /// resolved address is tried in turn. Names resolve on the blocking pool.
    ///
    /// # Errors
    /// The last address's error (`ConnectionRefused`, …), or `InvalidInput`
    /// if `addr` resolves to nothing.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| connect_one(a, None))
    }

    /// Opens a connection to one address with a time limit (std's
    /// `connect_timeout`).
    ///
    /// # Errors
    /// `TimedOut` when the limit passes first; `InvalidInput` for a zero
    /// timeout; the connection's error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_secs(1));
    /// assert!(s.is_ok());
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        connect_one(*addr, Instant::now().checked_add(timeout))
    }

    /// The remote address.
    ///
    /// # Errors
    /// `NotConnected` if the peer is gone.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// Shuts down the read half, the write half, or both (the peer then
    /// reads end-of-file).
    ///
    /// # Errors
    /// The OS's error (`NotConnected` …).
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = l.accept().unwrap();
    /// c.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(s.read(&mut [0; 8]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.sock.shutdown(how)
    }

    /// Another handle to the same socket. Unlike std's (a duplicated
    /// descriptor), clones share one descriptor, closed when the last clone
    /// is dropped; timeouts and non-blocking mode are shared, as they are
    /// between std's duplicates.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let reader = s.try_clone().unwrap();
    /// assert_eq!(reader.peer_addr().unwrap(), s.peer_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(self.clone())
    }

    /// Limits how long a read parks; past it, reads fail with `WouldBlock`
    /// (what std returns on Unix). `None` waits forever.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = s.read(&mut [0; 1]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Limits how long a write parks (see [`set_read_timeout`](TcpStream::set_read_timeout)).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert!(s.write_timeout().unwrap().is_some());
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(dur)
    }

    /// The read timeout.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.read_timeout())
    }

    /// The write timeout.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// Receives data without removing it from the queue.
    ///
    /// # Errors
    /// As [`Read::read`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Write;
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// c.write_all(b"hi").unwrap();
    /// let mut buf = [0; 2];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 2);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.sock.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.sock.nodelay()
    }

    /// Sets the IP time-to-live.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_ttl(60).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 60);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.sock.set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.sock.ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.sock.take_error()
    }

    /// In non-blocking mode, reads and writes that would wait return
    /// `WouldBlock` at once instead of parking (std's meaning).
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!(s.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

fn connect_one(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    // mio makes a non-blocking socket and starts the connection.
    let ms = mio::net::TcpStream::connect(addr)?;
    // SAFETY: `into_raw_fd` hands over sole ownership of an open socket.
    let s = unsafe { std::net::TcpStream::from_raw_fd(ms.into_raw_fd()) };
    let stream = TcpStream::from_nonblocking_std(s);
    let r = stream.inner.write_until(deadline, || {
        if let Some(e) = stream.inner.sock.take_error()? {
            return Err(e);
        }
        match stream.inner.sock.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => Err(e),
        }
    });
    match r {
        Ok(()) => Ok(stream),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        )),
        Err(e) => Err(e),
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.inner.read(|mut s| s.read_vectored(bufs))
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|mut s| s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write(|mut s| s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TCP server socket: `std::net::TcpListener` whose `accept` parks the
/// green thread.
///
/// # Example
///
/// ```
/// use greenhouse::net::{TcpListener, TcpStream};
/// greenhouse::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     let c = greenhouse::thread::spawn(move || TcpStream::connect(addr).unwrap());
///     let (_s, peer) = l.accept().unwrap();
///     assert_eq!(peer, c.join().unwrap().local_addr().unwrap());
/// });
/// ```
#[derive(Clone)]
pub struct TcpListener {
    inner: Arc<Sock<std::net::TcpListener>>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.sock.local_addr().ok())
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl TcpListener {
    /// Binds to `addr` and listens (std's `TcpListener::bind`: `SO_REUSEADDR`,
    /// backlog 128). Port 0 picks a free port.
    ///
    /// # Errors
    /// `AddrInUse`, `PermissionDenied`, `InvalidInput`… as std.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let l = each_addr(addr, std::net::TcpListener::bind)?;
        TcpListener::from_std(l)
    }

    /// Wraps a std listener, switching it to non-blocking mode underneath.
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = greenhouse::net::TcpListener::from_std(std_l).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        Ok(TcpListener {
            inner: Arc::new(Sock::new(l)),
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors, …).
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.inner.read(|l| l.accept())?;
        Ok((TcpStream::from_std(s)?, a))
    }

    /// An endless iterator over accepted connections (std's `incoming`).
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = greenhouse::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let first = l.incoming().next().unwrap().unwrap();
    /// assert!(first.peer_addr().is_ok());
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// Another handle to the same listener (shared, like
    /// [`TcpStream::try_clone`]).
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// assert_eq!(l.local_addr().unwrap(), l2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(self.clone())
    }

    /// Sets the IP time-to-live of accepted sockets.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(100).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 100);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.sock.set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.sock.ttl()
    }

    /// Takes the pending socket error, if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.sock.take_error()
    }

    /// In non-blocking mode `accept` returns `WouldBlock` instead of parking.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_nonblocking(true).unwrap();
    /// assert_eq!(l.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// The iterator returned by [`TcpListener::incoming`].
///
/// # Example
///
/// ```
/// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut it = l.incoming();
/// # let _ = &mut it;
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

macro_rules! fd_traits {
    ($t:ty, $std:ty) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.sock.as_raw_fd()
            }
        }
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.sock.as_fd()
            }
        }
        /// Returns a descriptor the caller owns: this one if no clone
        /// shares it, else a duplicate. Its mode stays non-blocking.
        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                match Arc::try_unwrap(self.inner) {
                    // The registration is dropped with the rest of `sock`
                    // (deregistering the still-open descriptor); the
                    // descriptor itself is handed over, not closed.
                    Ok(sock) => sock.into_inner().into_raw_fd(),
                    Err(shared) => shared
                        .sock
                        .as_fd()
                        .try_clone_to_owned()
                        .map(OwnedFd::into_raw_fd)
                        .unwrap_or(-1),
                }
            }
        }
        /// Takes ownership of `fd` and switches it to non-blocking mode
        /// underneath.
        impl FromRawFd for $t {
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: the caller passes ownership of an open socket.
                let s = unsafe { <$std>::from_raw_fd(fd) };
                let _ = s.set_nonblocking(true);
                Self {
                    inner: Arc::new(Sock::new(s)),
                }
            }
        }
        impl From<$std> for $t {
            /// Wraps a std socket (switching it to non-blocking mode
            /// underneath; see also `from_std`, which reports a failure).
            fn from(s: $std) -> Self {
                let _ = s.set_nonblocking(true);
                Self {
                    inner: Arc::new(Sock::new(s)),
                }
            }
        }
    };
}

fd_traits!(TcpStream, std::net::TcpStream);
fd_traits!(TcpListener, std::net::TcpListener);
pub(crate) use fd_traits;
