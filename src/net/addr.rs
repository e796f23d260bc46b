//! Address resolution that never blocks a worker.
//!
//! std's `ToSocketAddrs` calls `getaddrinfo` on the calling thread; on a
//! worker that would stall every green thread behind it. This trait has the
//! same shape and the same implementations, but numeric addresses are parsed
//! in place and host names are resolved on the blocking pool
//! ([`crate::thread::spawn_blocking`]) while the green thread parks.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Values that can be turned into socket addresses: `std::net::ToSocketAddrs`
/// for green threads. Implemented for the same types as std's trait
/// (`SocketAddr`, `(IpAddr, u16)`, `"host:port"`, `("host", port)`, slices…).
///
/// # Example
///
/// ```
/// use greenhouse::net::ToSocketAddrs;
/// let addrs: Vec<_> = "127.0.0.1:80".to_socket_addrs().unwrap().collect();
/// assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
/// greenhouse::run(|| {
///     // A name: resolved on the blocking pool while this green thread parks.
///     let local: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
///     assert!(!local.is_empty());
/// });
/// ```
pub trait ToSocketAddrs {
    /// The iterator over the resolved addresses.
    type Iter: Iterator<Item = SocketAddr>;

    /// Resolves to one or more socket addresses.
    ///
    /// # Errors
    /// `InvalidInput` for text that is neither an address nor `host:port`;
    /// the resolver's error for names that do not resolve.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

macro_rules! single {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {
            type Iter = std::option::IntoIter<SocketAddr>;
            fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
                Ok(Some(SocketAddr::from(*self)).into_iter())
            }
        }
    )*};
}

single!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

/// Resolves `host:port` on the blocking pool.
fn lookup(host: &str, port: u16) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let host = host.to_string();
    crate::thread::spawn_blocking(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(|it| it.collect::<Vec<_>>())
    })
    .map(Vec::into_iter)
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        let (host, port) = *self;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)].into_iter());
        }
        lookup(host, port)
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address");
        let (host, port) = self.rsplit_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().map_err(|_| invalid())?;
        (host, port).to_socket_addrs()
    }
}

impl ToSocketAddrs for String {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = std::iter::Cloned<std::slice::Iter<'a, SocketAddr>>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (**self).to_socket_addrs()
    }
}

/// Tries `f` on each address in turn; returns the first success or the last
/// error (std's behaviour for `connect` and `bind`).
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
