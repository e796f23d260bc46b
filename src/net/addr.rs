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

/// std's resolver (`getaddrinfo`), collected.
fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
}

/// Resolves `host:port`: on the blocking pool when called from a green
/// thread (the worker runs other green threads meanwhile), directly on a
/// plain OS thread (which may block anyway).
fn lookup(host: &str, port: u16) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    lookup_with(host, port, getaddrinfo)
}

fn lookup_with(
    host: &str,
    port: u16,
    resolve: fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    if crate::runtime::park::current_task().is_none() {
        return resolve(host, port).map(Vec::into_iter);
    }
    let host = host.to_string();
    crate::thread::spawn_blocking(move || resolve(&host, port)).map(Vec::into_iter)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver_thread_name(_: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let name = std::thread::current().name().unwrap_or("").to_string();
        if name == "greenhouse-blocking" {
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        } else {
            Err(io::Error::other(format!("resolved on thread '{name}'")))
        }
    }

    #[test]
    fn names_resolve_on_the_blocking_pool_from_green_threads() {
        let rt = crate::runtime::Runtime::builder()
            .workers(1)
            .build()
            .unwrap();
        let got = rt.run(|| {
            lookup_with("example.invalid", 7, resolver_thread_name).map(|a| a.collect::<Vec<_>>())
        });
        assert_eq!(got.unwrap(), [SocketAddr::from(([127, 0, 0, 1], 7))]);
    }

    #[test]
    fn os_threads_resolve_in_place() {
        let err = lookup_with("example.invalid", 7, resolver_thread_name).unwrap_err();
        assert!(err.to_string().contains("resolved on thread"), "{err}");
    }

    #[test]
    fn numeric_addresses_never_reach_the_resolver() {
        let v: Vec<_> = "[::1]:80".to_socket_addrs().unwrap().collect();
        assert_eq!(v, ["[::1]:80".parse::<SocketAddr>().unwrap()]);
        let v: Vec<_> = ("10.1.2.3", 9).to_socket_addrs().unwrap().collect();
        assert_eq!(v, [SocketAddr::from(([10, 1, 2, 3], 9))]);
        let e = "no-port".to_socket_addrs().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = "host:notaport".to_socket_addrs().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
