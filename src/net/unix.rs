//! Green Unix-domain sockets, shaped like `std::os::unix::net`:
//! [`UnixStream`], [`UnixListener`] and [`UnixDatagram`], with std's methods
//! and error kinds; waits park the green thread, and from a plain OS thread
//! they block like std's.
//!
//! # Example
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use greenhouse::net::unix::{UnixListener, UnixStream};
//! greenhouse::run(|| {
//!     let dir = std::env::temp_dir().join(format!("gh-unix-doc-{}", std::process::id()));
//!     std::fs::create_dir_all(&dir).unwrap();
//!     let path = dir.join("echo.sock");
//!     let listener = UnixListener::bind(&path).unwrap();
//!     let server = greenhouse::thread::spawn(move || {
//!         let (stream, _) = listener.accept().unwrap();
//!         let mut out = stream.try_clone().unwrap();
//!         for line in BufReader::new(stream).lines() {
//!             writeln!(out, "echo: {}", line.unwrap()).unwrap();
//!         }
//!     });
//!     let mut c = UnixStream::connect(&path).unwrap();
//!     writeln!(c, "hello").unwrap();
//!     let mut line = String::new();
//!     BufReader::new(&c).read_line(&mut line).unwrap();
//!     assert_eq!(line, "echo: hello\n");
//!     drop(c);
//!     server.join().unwrap();
//!     std::fs::remove_dir_all(&dir).unwrap();
//! });
//! ```

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::sock::Sock;
use super::tcp::fd_traits;

/// A Unix-domain stream socket: `std::os::unix::net::UnixStream` whose
/// blocking calls park the green thread instead of the worker.
///
/// A clone (from [`try_clone`](UnixStream::try_clone)) may be read in one green
/// thread while another writes, on any workers.
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// greenhouse::run(|| {
///     let (mut a, mut b) = greenhouse::net::unix::UnixStream::pair().unwrap();
///     let t = greenhouse::thread::spawn(move || {
///         let mut buf = [0; 4];
///         b.read_exact(&mut buf).unwrap();
///         b.write_all(&buf).unwrap();
///     });
///     a.write_all(b"ping").unwrap();
///     let mut buf = [0; 4];
///     a.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
///     t.join().unwrap();
/// });
/// ```
pub struct UnixStream {
    inner: Sock<std::os::unix::net::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .field("peer", &self.inner.sock.peer_addr().ok())
            .finish()
    }
}

/// Starts a connection with `start` and waits for it. `EAGAIN` from a
/// non-blocking Unix `connect` means the listener's backlog is full (no
/// connection is in progress): retry after a short, growing sleep, as a
/// blocking `connect` would wait.
fn connect_with(start: impl Fn() -> io::Result<mio::net::UnixStream>) -> io::Result<UnixStream> {
    let mut backoff = Duration::from_micros(50);
    let s = loop {
        match start() {
            Ok(s) => break std::os::unix::net::UnixStream::from(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    };
    let stream = UnixStream {
        inner: Sock::fresh(s),
    };
    stream.inner.write_until(None, || {
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
    })?;
    Ok(stream)
}

impl UnixStream {
    /// Connects to the socket at `path`. While the listener's backlog is full
    /// the green thread waits (sleeping briefly between attempts), as std's
    /// blocking `connect` does.
    ///
    /// # Errors
    /// `NotFound` for no socket at `path`, `ConnectionRefused` when nothing
    /// listens there, … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// let s = greenhouse::net::unix::UnixStream::connect(&path).unwrap();
    /// assert_eq!(s.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        connect_with(|| mio::net::UnixStream::connect(path))
    }

    /// Connects to the socket at `addr` (a path or, on Linux, an abstract
    /// name). See [`connect`](UnixStream::connect).
    ///
    /// # Errors
    /// As [`connect`](UnixStream::connect).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// let s = greenhouse::net::unix::UnixStream::connect_addr(&addr).unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        connect_with(|| mio::net::UnixStream::connect_addr(addr))
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` …).
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut a, mut b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.write_all(b"x").unwrap();
    /// let mut buf = [0; 1];
    /// b.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"x");
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a std socket. Its descriptor is switched to non-blocking mode
    /// underneath; its timeouts are kept and honoured.
    ///
    /// # Errors
    /// The OS's error if the mode or the timeouts cannot be read or set.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let g = greenhouse::net::unix::UnixStream::from_std(a).unwrap();
    /// assert!(g.peer_addr().is_ok());
    /// ```
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: Sock::from_std(s)?,
        })
    }

    /// Converts back into a std socket: the same descriptor, in blocking mode
    /// unless [`set_nonblocking(true)`](UnixStream::set_nonblocking) was called,
    /// with the same timeouts.
    ///
    /// # Errors
    /// `Other` while clones of this socket are alive (see
    /// [`TcpStream::into_std`](super::TcpStream::into_std)); the OS's error if
    /// the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// let s: std::os::unix::net::UnixStream = a.into_std().unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        self.inner.into_std()
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The OS's error (`NotConnected` …).
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// Another handle to the same connection, owning a duplicate descriptor (as
    /// std; see [`TcpStream::try_clone`](super::TcpStream::try_clone)).
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors).
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// drop(a);
    /// assert!(a2.peer_addr().is_ok()); // still connected through the clone
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: self.inner.try_clone()?,
        })
    }

    /// Shuts down the read half, the write half, or both; a green thread
    /// parked reading this socket (in any clone) wakes up and reads end-of-file.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, mut b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0; 8]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.sock.shutdown(how)
    }

    /// Limits how long a read parks; past it, reads fail with `WouldBlock`
    /// (std's kind on Unix). `None` waits forever. Shared with clones.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(std::time::Duration::from_millis(10))).unwrap();
    /// assert_eq!(a.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Limits how long a write parks (see
    /// [`set_read_timeout`](UnixStream::set_read_timeout)).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.set_write_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), Some(std::time::Duration::from_secs(2)));
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
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
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
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// In non-blocking mode, reads and writes that would wait return
    /// `WouldBlock` at once instead of parking. Shared with clones.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// assert_eq!(a.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.sock.take_error()
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.inner.read_stream(len, |mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.inner.read_stream(len, |mut s| s.read_vectored(bufs))
    }
}

impl Write for UnixStream {
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

impl Write for &UnixStream {
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

/// A Unix-domain listening socket: `std::os::unix::net::UnixListener` whose
/// `accept` parks the green thread.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("sock");
/// # let _ = std::fs::remove_file(&path);
/// greenhouse::run(move || {
///     let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
///     let p = path.clone();
///     let c = greenhouse::thread::spawn(move || greenhouse::net::unix::UnixStream::connect(p).unwrap());
///     let (s, _) = l.accept().unwrap();
///     assert!(s.local_addr().unwrap().as_pathname().is_some());
///     c.join().unwrap();
/// });
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct UnixListener {
    inner: Sock<std::os::unix::net::UnixListener>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .finish()
    }
}

impl UnixListener {
    /// Creates a socket file at `path` and listens on it (std's `bind`; the
    /// file is not removed when the listener is dropped).
    ///
    /// # Errors
    /// `AddrInUse` when `path` exists, … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Listens on `addr` (a path or, on Linux, an abstract name).
    ///
    /// # Errors
    /// As [`bind`](UnixListener::bind).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind_addr(addr)?)
    }

    /// Wraps a std listener, switching its descriptor to non-blocking mode
    /// underneath.
    ///
    /// # Errors
    /// The OS's error if the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let std_l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::from_std(std_l).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: Sock::from_std(l)?,
        })
    }

    /// Converts back into a std listener (see
    /// [`UnixStream::into_std`]).
    ///
    /// # Errors
    /// As [`UnixStream::into_std`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// let std_l: std::os::unix::net::UnixListener = l.into_std().unwrap();
    /// assert!(std_l.local_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.inner.into_std()
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors, …); `WouldBlock` in
    /// non-blocking mode.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// let _c = greenhouse::net::unix::UnixStream::connect_addr(&addr).unwrap();
    /// let (s, peer) = l.accept().unwrap();
    /// assert!(peer.is_unnamed());
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.inner.read(|l| l.accept())?;
        s.set_nonblocking(true)?;
        Ok((
            UnixStream {
                inner: Sock::fresh(s),
            },
            a,
        ))
    }

    /// An endless iterator over accepted connections.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// let _c = greenhouse::net::unix::UnixStream::connect_addr(&addr).unwrap();
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
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// Another handle to the same listener, owning a duplicate descriptor.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// assert!(l2.local_addr().is_ok());
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: self.inner.try_clone()?,
        })
    }

    /// Takes the pending socket error, if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
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
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
    /// l.set_nonblocking(true).unwrap();
    /// assert_eq!(l.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// The iterator returned by [`UnixListener::incoming`].
///
/// # Example
///
/// ```
/// use std::os::linux::net::SocketAddrExt;
/// let name = format!("greenhouse-doc-{}", std::process::id());
/// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
/// let l = greenhouse::net::unix::UnixListener::bind_addr(&addr).unwrap();
/// let _c = greenhouse::net::unix::UnixStream::connect_addr(&addr).unwrap();
/// for s in l.incoming().take(1) {
///     assert!(s.unwrap().peer_addr().is_ok());
/// }
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A Unix-domain datagram socket: `std::os::unix::net::UnixDatagram` whose
/// receives park the green thread.
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
///     let t = greenhouse::thread::spawn(move || {
///         let mut buf = [0; 16];
///         let n = b.recv(&mut buf).unwrap();
///         buf[..n].to_vec()
///     });
///     a.send(b"datagram").unwrap();
///     assert_eq!(t.join().unwrap(), b"datagram");
/// });
/// ```
pub struct UnixDatagram {
    inner: Sock<std::os::unix::net::UnixDatagram>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.inner.sock.as_raw_fd())
            .field("local", &self.inner.sock.local_addr().ok())
            .finish()
    }
}

impl UnixDatagram {
    /// Creates a socket file at `path` and binds to it.
    ///
    /// # Errors
    /// `AddrInUse` when `path` exists, … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let s = greenhouse::net::unix::UnixDatagram::bind(&path).unwrap();
    /// assert_eq!(s.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// Binds to `addr` (a path or, on Linux, an abstract name).
    ///
    /// # Errors
    /// As [`bind`](UnixDatagram::bind).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let s = greenhouse::net::unix::UnixDatagram::bind_addr(&addr).unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// assert!(s.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"x").unwrap();
    /// assert_eq!(b.recv(&mut [0; 4]).unwrap(), 1);
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a std socket (switching its descriptor to non-blocking mode
    /// underneath; its timeouts are kept and honoured).
    ///
    /// # Errors
    /// The OS's error if the mode or the timeouts cannot be read or set.
    ///
    /// # Example
    ///
    /// ```
    /// let std_s = std::os::unix::net::UnixDatagram::unbound().unwrap();
    /// let s = greenhouse::net::unix::UnixDatagram::from_std(std_s).unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn from_std(s: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Sock::from_std(s)?,
        })
    }

    /// Converts back into a std socket (see [`UnixStream::into_std`]).
    ///
    /// # Errors
    /// As [`UnixStream::into_std`].
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// let std_a: std::os::unix::net::UnixDatagram = a.into_std().unwrap();
    /// std_a.send(b"x").unwrap();
    /// assert_eq!(b.recv(&mut [0; 4]).unwrap(), 1);
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        self.inner.into_std()
    }

    /// Connects to the socket at `path`: the default destination of
    /// [`send`](UnixDatagram::send) and the only source of
    /// [`recv`](UnixDatagram::recv).
    ///
    /// # Errors
    /// The OS's error (`NotFound`, `ConnectionRefused` …).
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let server = greenhouse::net::unix::UnixDatagram::bind(&path).unwrap();
    /// let c = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// c.connect(&path).unwrap();
    /// c.send(b"hi").unwrap();
    /// assert_eq!(server.recv(&mut [0; 4]).unwrap(), 2);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.sock.connect(path)
    }

    /// Connects to `addr` (see [`connect`](UnixDatagram::connect)).
    ///
    /// # Errors
    /// As [`connect`](UnixDatagram::connect).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let server = greenhouse::net::unix::UnixDatagram::bind_addr(&addr).unwrap();
    /// let c = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// c.connect_addr(&addr).unwrap();
    /// c.send(b"hi").unwrap();
    /// assert_eq!(server.recv(&mut [0; 4]).unwrap(), 2);
    /// ```
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.sock.connect_addr(addr)
    }

    /// Sends one datagram to the connected socket; parks while the peer's
    /// queue is full.
    ///
    /// # Errors
    /// `NotConnected` before [`connect`](UnixDatagram::connect); `WouldBlock`
    /// past the write timeout; the OS's error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.send(b"abc").unwrap(), 3);
    /// # let _ = b;
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| s.send(buf))
    }

    /// Receives one datagram; parks until one arrives.
    ///
    /// # Errors
    /// `WouldBlock` past the read timeout or in non-blocking mode; the OS's
    /// error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"abc").unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 3);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_op(|s| s.recv(buf), || 0)
    }

    /// Sends one datagram to the socket at `path`.
    ///
    /// # Errors
    /// The OS's error (`NotFound` …); `WouldBlock` past the write timeout.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let server = greenhouse::net::unix::UnixDatagram::bind(&path).unwrap();
    /// let c = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// c.send_to(b"hi", &path).unwrap();
    /// assert_eq!(server.recv(&mut [0; 4]).unwrap(), 2);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.write(|s| s.send_to(buf, path))
    }

    /// Sends one datagram to `addr`.
    ///
    /// # Errors
    /// As [`send_to`](UnixDatagram::send_to).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("greenhouse-doc-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let server = greenhouse::net::unix::UnixDatagram::bind_addr(&addr).unwrap();
    /// let c = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// c.send_to_addr(b"hi", &addr).unwrap();
    /// assert_eq!(server.recv(&mut [0; 4]).unwrap(), 2);
    /// ```
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.inner.write(|s| s.send_to_addr(buf, addr))
    }

    /// Receives one datagram and the address it came from.
    ///
    /// # Errors
    /// As [`recv`](UnixDatagram::recv).
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"abc").unwrap();
    /// let (n, from) = b.recv_from(&mut [0; 8]).unwrap();
    /// assert_eq!(n, 3);
    /// assert!(from.is_unnamed());
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_op(|s| s.recv_from(buf), || (0, unnamed()))
    }

    /// A receive that, like std's blocking one, returns an empty datagram
    /// once the read side is shut down: the kernel answers a non-blocking
    /// receive with `EAGAIN` for ever then (and `poll` says readable).
    fn recv_op<R>(
        &self,
        mut op: impl FnMut(&std::os::unix::net::UnixDatagram) -> io::Result<R>,
        shut: impl Fn() -> R,
    ) -> io::Result<R> {
        if self.inner.is_nonblocking() {
            return op(&self.inner.sock);
        }
        self.inner.read(|s| match op(s) {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && crate::runtime::io::read_hung_up(s.as_raw_fd()) =>
            {
                Ok(shut())
            }
            r => r,
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// # let _ = b;
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// `NotConnected` before [`connect`](UnixDatagram::connect).
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// Another handle to the same socket, owning a duplicate descriptor.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors).
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// a2.send(b"x").unwrap();
    /// assert_eq!(b.recv(&mut [0; 4]).unwrap(), 1);
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: self.inner.try_clone()?,
        })
    }

    /// Shuts down the read half, the write half, or both; a green thread parked
    /// in `recv` wakes up and reads an empty datagram.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// b.shutdown(std::net::Shutdown::Read).unwrap();
    /// assert_eq!(b.recv(&mut [0; 4]).unwrap(), 0);
    /// # let _ = a;
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.sock.shutdown(how)
    }

    /// Limits how long a receive parks; past it, it fails with `WouldBlock`.
    /// Shared with clones.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// b.set_read_timeout(Some(std::time::Duration::from_millis(10))).unwrap();
    /// assert_eq!(b.recv(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # let _ = a;
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Limits how long a send parks.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert!(a.write_timeout().unwrap().is_some());
    /// # let _ = b;
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
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
    /// # let _ = b;
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
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// # let _ = b;
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// In non-blocking mode, receives and sends that would wait return
    /// `WouldBlock` at once. Shared with clones.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// b.set_nonblocking(true).unwrap();
    /// assert_eq!(b.recv(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # let _ = a;
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error, if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// # let _ = b;
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.sock.take_error()
    }
}

/// The address of an unnamed socket (what std reports for a shut-down
/// datagram socket's empty receive).
fn unnamed() -> SocketAddr {
    SocketAddr::from_pathname("").expect("an empty path is a valid unnamed address")
}

fd_traits!(UnixStream, std::os::unix::net::UnixStream);
fd_traits!(UnixListener, std::os::unix::net::UnixListener);
fd_traits!(UnixDatagram, std::os::unix::net::UnixDatagram);
