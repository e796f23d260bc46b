//! Green TCP: `TcpListener` and `TcpStream`, shaped like std's.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::addr::{each_addr, ToSocketAddrs};
use super::sock::Sock;

/// A TCP stream between a local and a remote socket: `std::net::TcpStream`
/// whose blocking calls park the green thread instead of the worker.
///
/// A clone (from [`try_clone`](TcpStream::try_clone)) may be read in one
/// green thread while another green thread writes the original, on any
/// workers. From a plain OS thread every call blocks like std's.
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
pub struct TcpStream {
    inner: Sock<std::net::TcpStream>,
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
    /// Wraps a std stream. Its descriptor is switched to non-blocking mode
    /// underneath (std handles duplicated from it with `try_clone` share that
    /// mode); its read and write timeouts are kept and honoured.
    ///
    /// # Errors
    /// The OS's error if the mode or the timeouts cannot be read or set.
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
        Ok(TcpStream {
            inner: Sock::from_std(s)?,
        })
    }

    /// Converts back into a std stream: the same descriptor, in blocking
    /// mode unless [`set_nonblocking(true)`](TcpStream::set_nonblocking) was
    /// called, with the same timeouts.
    ///
    /// # Errors
    /// `Other` while clones of this stream (from
    /// [`try_clone`](TcpStream::try_clone)) are alive: they share the
    /// descriptor's blocking mode, and switching it would block their
    /// workers. Also the OS's error if the mode cannot be set.
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
        self.inner.into_std()
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

    /// Another handle to the same connection, owning a duplicate descriptor
    /// (`dup(2)`, as std). Timeouts and non-blocking mode are shared with the
    /// original, as between std's duplicates; dropping one handle closes only
    /// its own descriptor. Read one in a green thread while another writes
    /// the other (the chat server's pattern).
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors).
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
        Ok(TcpStream {
            inner: self.inner.try_clone()?,
        })
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
    let s = std::net::TcpStream::from(mio::net::TcpStream::connect(addr)?);
    let stream = TcpStream {
        inner: Sock::fresh(s),
    };
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
        let len = buf.len();
        self.inner.read_stream(len, |mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.inner.read_stream(len, |mut s| s.read_vectored(bufs))
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
        self.inner.write_stream(buf.len(), |mut s| s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.inner.write_stream(len, |mut s| s.write_vectored(bufs))
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
pub struct TcpListener {
    inner: Sock<std::net::TcpListener>,
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
        Ok(TcpListener {
            inner: Sock::from_std(l)?,
        })
    }

    /// Converts back into a std listener: the same descriptor, in blocking
    /// mode unless [`set_nonblocking(true)`](TcpListener::set_nonblocking)
    /// was called.
    ///
    /// # Errors
    /// `Other` while clones of this listener are alive (see
    /// [`TcpStream::into_std`]); the OS's error if the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let std_l: std::net::TcpListener = l.into_std().unwrap();
    /// assert_eq!(std_l.local_addr().unwrap(), addr);
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.inner.into_std()
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
        s.set_nonblocking(true)?;
        Ok((
            TcpStream {
                inner: Sock::fresh(s),
            },
            a,
        ))
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

    /// Another handle to the same listener, owning a duplicate descriptor
    /// (like [`TcpStream::try_clone`]). Green threads may accept on both.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors).
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// assert_eq!(l.local_addr().unwrap(), l2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.try_clone()?,
        })
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
        /// Hands over the descriptor (this handle's own: clones own
        /// duplicates). It stays in non-blocking mode; use `into_std` for a
        /// blocking std socket.
        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                self.inner.into_raw_fd()
            }
        }
        /// Hands over the descriptor (see `IntoRawFd`).
        impl From<$t> for OwnedFd {
            fn from(s: $t) -> OwnedFd {
                OwnedFd::from(s.inner.into_inner())
            }
        }
        /// Takes ownership of `fd` (see `From<OwnedFd>`).
        impl FromRawFd for $t {
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: the caller passes ownership of an open socket.
                Self::from(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }
        /// Takes ownership of a socket descriptor (see `From<std type>`).
        impl From<OwnedFd> for $t {
            fn from(fd: OwnedFd) -> Self {
                Self::from(<$std>::from(fd))
            }
        }
        /// Wraps a std socket like `from_std`. The conversion cannot fail on
        /// an open socket; on anything else (a closed or non-socket
        /// descriptor) the error surfaces from the first operation instead.
        impl From<$std> for $t {
            fn from(s: $std) -> Self {
                Self {
                    inner: super::sock::Sock::adopt(s),
                }
            }
        }
    };
}
fd_traits!(TcpStream, std::net::TcpStream);
fd_traits!(TcpListener, std::net::TcpListener);
pub(crate) use fd_traits;
