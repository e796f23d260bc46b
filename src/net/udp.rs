//! Green UDP: `UdpSocket`, shaped like std's.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::addr::{each_addr, ToSocketAddrs};
use super::sock::Sock;
use super::tcp::fd_traits;

/// A UDP socket: `std::net::UdpSocket` whose receives (and sends) park the
/// green thread instead of the worker.
///
/// # Example
///
/// ```
/// use greenhouse::net::UdpSocket;
/// greenhouse::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// });
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    inner: Arc<Sock<std::net::UdpSocket>>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.inner.sock.local_addr().ok())
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// As std's `UdpSocket::bind`.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let s = each_addr(addr, std::net::UdpSocket::bind)?;
        UdpSocket::from_std(s)
    }

    /// Wraps a std socket, switching it to non-blocking mode underneath.
    ///
    /// # Errors
    /// If the mode cannot be set.
    ///
    /// # Example
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let g = greenhouse::net::UdpSocket::from_std(s).unwrap();
    /// assert!(g.local_addr().is_ok());
    /// ```
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket {
            inner: Arc::new(Sock::new(s)),
        })
    }

    /// Receives one datagram and its sender's address.
    ///
    /// # Errors
    /// `WouldBlock` past the read timeout; the OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 4];
    /// assert_eq!(a.recv_from(&mut buf).unwrap().0, 1);
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), leaving the datagram queued.
    ///
    /// # Errors
    /// As `recv_from`.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 4];
    /// assert_eq!(a.peek_from(&mut buf).unwrap().0, 1);
    /// assert_eq!(a.recv_from(&mut buf).unwrap().0, 1);
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.peek_from(buf))
    }

    /// Sends one datagram to `addr` (its first resolved address).
    ///
    /// # Errors
    /// `InvalidInput` if `addr` resolves to nothing; the OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.send_to(b"abc", a.local_addr().unwrap()).unwrap(), 3);
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.inner.write(|s| s.send_to(buf, to))
    }

    /// Sets the default peer: `send` and `recv` then use it, and datagrams
    /// from others are dropped.
    ///
    /// # Errors
    /// As std's `connect`.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.inner.sock.connect(a))
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    /// `NotConnected` without a peer; the OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.send(b"hi").unwrap(), 2);
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
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(a.recv(&mut buf).unwrap(), 2);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv), leaving the datagram queued.
    ///
    /// # Errors
    /// As `recv`.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"hi").unwrap();
    /// assert_eq!(a.peek(&mut [0; 8]).unwrap(), 2);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(a.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// `NotConnected` without a peer.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// Another handle to the same socket (shared, like
    /// [`TcpStream::try_clone`](super::TcpStream::try_clone)).
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = a.try_clone().unwrap();
    /// assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(self.clone())
    }

    /// Limits how long a receive parks; past it, `WouldBlock` (as std on
    /// Unix). `None` waits forever.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// assert_eq!(a.recv_from(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
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
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert!(a.write_timeout().unwrap().is_some());
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(dur)
    }

    /// The receive timeout.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.read_timeout())
    }

    /// The send timeout.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_broadcast(true).unwrap();
    /// assert!(a.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.sock.set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(!a.broadcast().unwrap());
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.sock.broadcast()
    }

    /// Sets the IP time-to-live.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_ttl(42).unwrap();
    /// assert_eq!(a.ttl().unwrap(), 42);
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
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(a.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.sock.ttl()
    }

    /// Joins an IPv4 multicast group on `interface`.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    /// let a = greenhouse::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    /// a.join_multicast_v4(&Ipv4Addr::new(239, 1, 2, 3), &Ipv4Addr::UNSPECIFIED).unwrap();
    /// ```
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.sock.join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    /// let a = greenhouse::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    /// let g = Ipv4Addr::new(239, 1, 2, 3);
    /// a.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED).unwrap();
    /// a.leave_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED).unwrap();
    /// ```
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.sock.leave_multicast_v4(group, interface)
    }

    /// Takes the pending socket error, if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.sock.take_error()
    }

    /// In non-blocking mode, operations that would wait return `WouldBlock`.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let a = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// assert_eq!(a.recv_from(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

fd_traits!(UdpSocket, std::net::UdpSocket);
