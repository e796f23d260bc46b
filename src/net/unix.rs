//! Green Unix-domain sockets, shaped like `std::os::unix::net`.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::sock::Sock;
use super::tcp::fd_traits;

/// A Unix stream socket: `std::os::unix::net::UnixStream` whose blocking
/// calls park the green thread. Clones share the socket.
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = greenhouse::net::unix::UnixStream::pair().unwrap();
/// a.write_all(b"hi").unwrap();
/// let mut buf = [0; 2];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// ```
#[derive(Clone)]
pub struct UnixStream {
    inner: Arc<Sock<std::os::unix::net::UnixStream>>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl UnixStream {
    fn wrap(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        Ok(UnixStream {
            inner: Arc::new(Sock::new(s)),
        })
    }

    /// Connects to the socket at `path`.
    ///
    /// # Errors
    /// `NotFound`, `ConnectionRefused`, … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("s.sock");
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// let c = greenhouse::net::unix::UnixStream::connect(&path).unwrap();
    /// let (_s, _) = l.accept().unwrap();
    /// drop(c);
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let ms = mio::net::UnixStream::connect(path)?;
        // SAFETY: `into_raw_fd` hands over sole ownership of an open socket.
        let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(ms.into_raw_fd()) };
        let stream = UnixStream {
            inner: Arc::new(Sock::new(s)),
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

    /// A connected pair of sockets.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().is_ok() && b.local_addr().is_ok());
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::wrap(a)?, UnixStream::wrap(b)?))
    }

    /// Wraps a std socket, switching it to non-blocking mode underneath.
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let g = greenhouse::net::unix::UnixStream::from_std(a).unwrap();
    /// assert!(g.local_addr().is_ok());
    /// ```
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::wrap(s)
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// Another handle to the same socket (shared).
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// # let _ = a2;
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(self.clone())
    }

    /// Shuts down one or both halves.
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
    /// assert_eq!(b.read(&mut [0; 4]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.sock.shutdown(how)
    }

    /// Limits how long a read parks (`WouldBlock` past it).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// assert_eq!(a.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Limits how long a write parks.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
    /// a.set_write_timeout(None).unwrap();
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(dur)
    }

    /// In non-blocking mode, operations that would wait return `WouldBlock`.
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

    /// Takes the pending socket error, if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixStream::pair().unwrap();
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
        self.inner.read(|mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.inner.read(|mut s| s.read_vectored(bufs))
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
        self.inner.write(|mut s| s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write(|mut s| s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A Unix stream server socket whose `accept` parks the green thread.
///
/// # Example
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-doc-l-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("l.sock");
/// let _ = std::fs::remove_file(&path);
/// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
/// assert!(l.local_addr().unwrap().as_pathname().is_some());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct UnixListener {
    inner: Arc<Sock<std::os::unix::net::UnixListener>>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl UnixListener {
    /// Binds to `path` and listens.
    ///
    /// # Errors
    /// `AddrInUse` if the path exists, … as std.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-b-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// drop(l);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Wraps a std listener, switching it to non-blocking mode underneath.
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-f-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let g = greenhouse::net::unix::UnixListener::from_std(l).unwrap();
    /// drop(g);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_std(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        Ok(UnixListener {
            inner: Arc::new(Sock::new(l)),
        })
    }

    /// Waits for a connection.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-a-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// let _c = greenhouse::net::unix::UnixStream::connect(&path).unwrap();
    /// let (s, _addr) = l.accept().unwrap();
    /// # drop(s);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.inner.read(|l| l.accept())?;
        Ok((UnixStream::wrap(s)?, a))
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-la-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// In non-blocking mode `accept` returns `WouldBlock` instead of parking.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-nb-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenhouse::net::unix::UnixListener::bind(&path).unwrap();
    /// l.set_nonblocking(true).unwrap();
    /// assert_eq!(l.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// A Unix datagram socket whose receives park the green thread.
///
/// # Example
///
/// ```
/// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
/// a.send(b"dgram").unwrap();
/// let mut buf = [0; 8];
/// assert_eq!(b.recv(&mut buf).unwrap(), 5);
/// ```
#[derive(Clone)]
pub struct UnixDatagram {
    inner: Arc<Sock<std::os::unix::net::UnixDatagram>>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl UnixDatagram {
    fn wrap(s: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        s.set_nonblocking(true)?;
        Ok(UnixDatagram {
            inner: Arc::new(Sock::new(s)),
        })
    }

    /// Binds to `path`.
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-d-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let d = greenhouse::net::unix::UnixDatagram::bind(&path).unwrap();
    /// drop(d);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let d = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// assert!(d.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// # let _ = (a, b);
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::wrap(a)?, UnixDatagram::wrap(b)?))
    }

    /// Sets the default peer.
    ///
    /// # Errors
    /// As std.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-dc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let server = greenhouse::net::unix::UnixDatagram::bind(&path).unwrap();
    /// let c = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// c.connect(&path).unwrap();
    /// c.send(b"x").unwrap();
    /// assert_eq!(server.recv(&mut [0; 4]).unwrap(), 1);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.sock.connect(path)
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.send(b"abc").unwrap(), 3);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| s.send(buf))
    }

    /// Receives from the connected peer.
    ///
    /// # Errors
    /// `WouldBlock` past the read timeout; the OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"abc").unwrap();
    /// assert_eq!(b.recv(&mut [0; 8]).unwrap(), 3);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.recv(buf))
    }

    /// Sends to the socket at `path`.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gh-doc-st-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let server = greenhouse::net::unix::UnixDatagram::bind(&path).unwrap();
    /// let c = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// c.send_to(b"hey", &path).unwrap();
    /// let (n, _from) = server.recv_from(&mut [0; 8]).unwrap();
    /// assert_eq!(n, 3);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.write(|s| s.send_to(buf, path))
    }

    /// Receives a datagram and the sender's address.
    ///
    /// # Errors
    /// `WouldBlock` past the read timeout; the OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"x").unwrap();
    /// assert_eq!(b.recv_from(&mut [0; 4]).unwrap().0, 1);
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.recv_from(buf))
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let d = greenhouse::net::unix::UnixDatagram::unbound().unwrap();
    /// assert!(d.local_addr().is_ok());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// Limits how long a receive parks (`WouldBlock` past it).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// assert_eq!(a.recv(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
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
    /// let (a, _b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.set_write_timeout(None).unwrap();
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(dur)
    }

    /// In non-blocking mode, operations that would wait return `WouldBlock`.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = greenhouse::net::unix::UnixDatagram::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// assert_eq!(a.recv(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

fd_traits!(UnixStream, std::os::unix::net::UnixStream);
fd_traits!(UnixListener, std::os::unix::net::UnixListener);
fd_traits!(UnixDatagram, std::os::unix::net::UnixDatagram);
