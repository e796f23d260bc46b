//! Green UDP: `UdpSocket`, shaped like std's.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::addr::{each_addr, ToSocketAddrs};
use super::sock::Sock;
use super::tcp::fd_traits;

/// A UDP socket: `std::net::UdpSocket` whose receives (and sends into a full
/// buffer) park the green thread instead of the worker.
///
/// # Example: the seeds' UDP echo
///
/// ```
/// use greenhouse::net::UdpSocket;
/// greenhouse::run(|| {
///     let server = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let addr = server.local_addr().unwrap();
///     let echo = greenhouse::thread::spawn(move || {
///         let mut buf = [0; 64];
///         let (n, from) = server.recv_from(&mut buf).unwrap();
///         server.send_to(&buf[..n], from).unwrap();
///     });
///     let client = UdpSocket::bind("127.0.0.1:0").unwrap();
///     client.send_to(b"ping", addr).unwrap();
///     let mut buf = [0; 64];
///     let (n, from) = client.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], addr));
///     echo.join().unwrap();
/// });
/// ```
pub struct UdpSocket {
    inner: Sock<std::net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.inner.sock.local_addr().ok())
            .field("fd", &self.inner.sock.as_raw_fd())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to `addr` (std's `UdpSocket::bind`); each resolved address is
    /// tried in turn. Port 0 picks a free port.
    ///
    /// # Errors
    /// `AddrInUse`, `PermissionDenied`, … as std; `InvalidInput` if `addr`
    /// resolves to nothing.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let s = each_addr(addr, std::net::UdpSocket::bind)?;
        Ok(UdpSocket {
            inner: Sock::from_std(s)?,
        })
    }

    /// Wraps a std socket. Its descriptor is switched to non-blocking mode
    /// underneath; its read and write timeouts are kept and honoured.
    ///
    /// # Errors
    /// The OS's error if the mode or the timeouts cannot be read or set.
    ///
    /// # Example
    ///
    /// ```
    /// let std_s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s = greenhouse::net::UdpSocket::from_std(std_s).unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Sock::from_std(s)?,
        })
    }

    /// Converts back into a std socket: the same descriptor, in blocking mode
    /// unless [`set_nonblocking(true)`](UdpSocket::set_nonblocking) was called,
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
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = s.local_addr().unwrap();
    /// let std_s: std::net::UdpSocket = s.into_std().unwrap();
    /// assert_eq!(std_s.local_addr().unwrap(), addr);
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.inner.into_std()
    }

    /// Receives one datagram and the address it came from; parks until one
    /// arrives (or the read timeout passes).
    ///
    /// # Errors
    /// `WouldBlock` when the read timeout passes (std's kind on Unix) or in
    /// non-blocking mode; the OS's error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let c = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// c.send_to(b"hi", s.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(s.recv_from(&mut buf).unwrap(), (2, c.local_addr().unwrap()));
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from) but leaves the datagram queued.
    ///
    /// # Errors
    /// As [`recv_from`](UdpSocket::recv_from).
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.send_to(b"hi", s.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(s.peek_from(&mut buf).unwrap().0, 2);
    /// assert_eq!(s.recv_from(&mut buf).unwrap().0, 2); // still there
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.peek_from(buf))
    }

    /// Sends one datagram to `addr` (the first address it resolves to; names
    /// resolve on the blocking pool).
    ///
    /// # Errors
    /// `InvalidInput` if `addr` resolves to nothing; `WouldBlock` past the write
    /// timeout; the OS's error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.send_to(b"hello", s.local_addr().unwrap()).unwrap(), 5);
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.inner.write(|s| s.send_to(buf, to))
    }

    /// Sets the default destination of [`send`](UdpSocket::send) and the only
    /// source [`recv`](UdpSocket::recv) accepts.
    ///
    /// # Errors
    /// The last address's error; `InvalidInput` if `addr` resolves to nothing.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), s.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.inner.sock.connect(a))
    }

    /// Sends one datagram to the connected address.
    ///
    /// # Errors
    /// `NotConnected` before [`connect`](UdpSocket::connect); `WouldBlock` past
    /// the write timeout; `ConnectionRefused` after an earlier datagram was
    /// refused; the OS's error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.send(b"abc").unwrap(), 3);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| s.send(buf))
    }

    /// Receives one datagram from the connected address.
    ///
    /// # Errors
    /// `WouldBlock` past the read timeout or in non-blocking mode;
    /// `ConnectionRefused` when an earlier datagram was refused by the peer; the
    /// OS's error otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// s.send(b"abc").unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(s.recv(&mut buf).unwrap(), 3);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv) but leaves the datagram queued.
    ///
    /// # Errors
    /// As [`recv`](UdpSocket::recv).
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// s.send(b"abc").unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 3);
    /// assert_eq!(s.recv(&mut buf).unwrap(), 3);
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
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// The connected address.
    ///
    /// # Errors
    /// `NotConnected` before [`connect`](UdpSocket::connect).
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    /// Another handle to the same socket, owning a duplicate descriptor (as
    /// std; see [`TcpStream::try_clone`](super::TcpStream::try_clone)): one
    /// green thread may receive while another sends.
    ///
    /// # Errors
    /// The OS's error (`EMFILE` when out of descriptors).
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s2 = s.try_clone().unwrap();
    /// assert_eq!(s2.local_addr().unwrap(), s.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.try_clone()?,
        })
    }

    /// Limits how long a receive parks; past it, it fails with `WouldBlock`
    /// (std's kind on Unix). `None` waits forever. Shared with clones.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(std::time::Duration::from_millis(10))).unwrap();
    /// let err = s.recv_from(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Limits how long a send parks (see
    /// [`set_read_timeout`](UdpSocket::set_read_timeout)).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(std::time::Duration::from_secs(1)));
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
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
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
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// Sets `SO_BROADCAST`: whether datagrams may be sent to a broadcast address.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_broadcast(true).unwrap();
    /// assert_eq!(s.broadcast().unwrap(), true);
    /// ```
    pub fn set_broadcast(&self, v: bool) -> io::Result<()> {
        self.inner.sock.set_broadcast(v)
    }

    /// `SO_BROADCAST`: whether datagrams may be sent to a broadcast address (see [`set_broadcast`](UdpSocket::set_broadcast)).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let _current: bool = s.broadcast().unwrap();
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.sock.broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`: whether IPv4 multicast datagrams sent here loop back to local sockets.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_multicast_loop_v4(false).unwrap();
    /// assert_eq!(s.multicast_loop_v4().unwrap(), false);
    /// ```
    pub fn set_multicast_loop_v4(&self, v: bool) -> io::Result<()> {
        self.inner.sock.set_multicast_loop_v4(v)
    }

    /// `IP_MULTICAST_LOOP`: whether IPv4 multicast datagrams sent here loop back to local sockets (see [`set_multicast_loop_v4`](UdpSocket::set_multicast_loop_v4)).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let _current: bool = s.multicast_loop_v4().unwrap();
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.sock.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`: the time-to-live of outgoing IPv4 multicast datagrams.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_multicast_ttl_v4(4).unwrap();
    /// assert_eq!(s.multicast_ttl_v4().unwrap(), 4);
    /// ```
    pub fn set_multicast_ttl_v4(&self, v: u32) -> io::Result<()> {
        self.inner.sock.set_multicast_ttl_v4(v)
    }

    /// `IP_MULTICAST_TTL`: the time-to-live of outgoing IPv4 multicast datagrams (see [`set_multicast_ttl_v4`](UdpSocket::set_multicast_ttl_v4)).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let _current: u32 = s.multicast_ttl_v4().unwrap();
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.sock.multicast_ttl_v4()
    }

    /// Sets `IP_TTL`: the time-to-live of outgoing datagrams.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_ttl(60).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 60);
    /// ```
    pub fn set_ttl(&self, v: u32) -> io::Result<()> {
        self.inner.sock.set_ttl(v)
    }

    /// `IP_TTL`: the time-to-live of outgoing datagrams (see [`set_ttl`](UdpSocket::set_ttl)).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let _current: u32 = s.ttl().unwrap();
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.sock.ttl()
    }

    /// Sets `IPV6_MULTICAST_LOOP`: whether IPv6 multicast datagrams sent here
    /// loop back to local sockets.
    ///
    /// # Errors
    /// The OS's error (this is an IPv6 option).
    ///
    /// # Example
    ///
    /// ```
    /// if let Ok(s) = greenhouse::net::UdpSocket::bind("[::1]:0") {
    ///     s.set_multicast_loop_v6(false).unwrap();
    ///     assert!(!s.multicast_loop_v6().unwrap());
    /// }
    /// ```
    pub fn set_multicast_loop_v6(&self, v: bool) -> io::Result<()> {
        self.inner.sock.set_multicast_loop_v6(v)
    }

    /// Whether IPv6 multicast datagrams loop back (see
    /// [`set_multicast_loop_v6`](UdpSocket::set_multicast_loop_v6)).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// if let Ok(s) = greenhouse::net::UdpSocket::bind("[::1]:0") {
    ///     assert!(s.multicast_loop_v6().unwrap());
    /// }
    /// ```
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.sock.multicast_loop_v6()
    }

    /// Joins an IPv4 multicast group on `interface` (`0.0.0.0`: the default).
    ///
    /// # Errors
    /// The OS's error (`InvalidInput` for a non-multicast group, …).
    ///
    /// # Example
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let s = greenhouse::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    /// let not_multicast = Ipv4Addr::new(10, 0, 0, 1);
    /// assert!(s.join_multicast_v4(&not_multicast, &Ipv4Addr::UNSPECIFIED).is_err());
    /// ```
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.sock.join_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group (see
    /// [`join_multicast_v4`](UdpSocket::join_multicast_v4)).
    ///
    /// # Errors
    /// The OS's error (`AddrNotAvailable` when not a member, …).
    ///
    /// # Example
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let s = greenhouse::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    /// let group = Ipv4Addr::new(239, 255, 0, 1);
    /// assert!(s.leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED).is_err()); // never joined
    /// ```
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.sock.leave_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group on interface number `interface` (0: the
    /// default).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(s) = greenhouse::net::UdpSocket::bind("[::1]:0") {
    ///     // Not a multicast address: refused.
    ///     assert!(s.join_multicast_v6(&Ipv6Addr::LOCALHOST, 0).is_err());
    /// }
    /// ```
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.sock.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group (see
    /// [`join_multicast_v6`](UdpSocket::join_multicast_v6)).
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(s) = greenhouse::net::UdpSocket::bind("[::1]:0") {
    ///     let group: Ipv6Addr = "ff02::1:3".parse().unwrap();
    ///     assert!(s.leave_multicast_v6(&group, 0).is_err()); // never joined
    /// }
    /// ```
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.sock.leave_multicast_v6(multiaddr, interface)
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// The OS's error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.sock.take_error()
    }

    /// In non-blocking mode, receives and sends that would wait return
    /// `WouldBlock` at once instead of parking (std's meaning). Shared with clones.
    ///
    /// # Errors
    /// Never fails; the `Result` mirrors std.
    ///
    /// # Example
    ///
    /// ```
    /// let s = greenhouse::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let err = s.recv_from(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }
}

fd_traits!(UdpSocket, std::net::UdpSocket);
