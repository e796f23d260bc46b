//! HTTP clients for the examples: ureq (with rustls for https) over either
//! std's sockets or greenhouse's.
//!
//! Three agents: [`std_agent`] is ureq as it comes (for OS threads);
//! [`green_agent`] plugs greenhouse's sockets into ureq; [`patched_agent`]
//! is ureq's own std transport again, for green threads in a process that
//! called `greenhouse::monkey::patch_all` — only its resolver differs.
//!
//! ureq is a blocking client, which is exactly what greenhouse wants: its
//! transport is pluggable, so [`green_agent`] plugs in a TCP connector built
//! on `greenhouse::net::TcpStream` (and a resolver that resolves names on the
//! blocking pool). ureq's own TLS connector then wraps that transport
//! unchanged. Every read and write ureq makes parks the green thread instead
//! of blocking the worker.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use greenhouse::net::TcpStream;
use ureq::config::Config;
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, ShutdownHandle, Transport,
};
use ureq::Agent;

/// Settings shared by every kind of agent: a time limit per request
/// (redirects included) and, for https, the certificates to trust instead
/// of the built-in (Mozilla) roots.
pub fn config(timeout: Option<Duration>, roots: Option<&RootCerts>) -> Config {
    let mut b = Agent::config_builder()
        .timeout_global(timeout)
        .user_agent("greenhouse-downloader/0.1");
    if let Some(roots) = roots {
        b = b.tls_config(TlsConfig::builder().root_certs(roots.clone()).build());
    }
    b.build()
}

/// The certificates in a PEM file, to trust as roots (`--ca-cert`).
///
/// # Errors
/// If the file cannot be read, is not PEM, or holds no certificate.
pub fn load_roots(path: &Path) -> io::Result<RootCerts> {
    let named = |e: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    };
    let pem = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut certs = Vec::new();
    for item in parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| named(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(named("no PEM certificate in the file".into()));
    }
    Ok(RootCerts::from(certs))
}

/// An agent on std's blocking sockets (ureq's defaults).
pub fn std_agent(timeout: Option<Duration>, roots: Option<&RootCerts>) -> Agent {
    Agent::new_with_config(config(timeout, roots))
}

/// An agent whose sockets are greenhouse's: use it from green threads.
pub fn green_agent(timeout: Option<Duration>, roots: Option<&RootCerts>) -> Agent {
    let connector = ().chain(GreenTcpConnector).chain(RustlsConnector::default());
    Agent::with_parts(config(timeout, roots), connector, GreenResolver)
}

/// ureq's own transport on `std::net::TcpStream` (its `DefaultConnector`,
/// as in [`std_agent`]), for green threads after
/// `greenhouse::monkey::patch_all`: the hooks make its socket calls park.
///
/// Only the resolver differs: with a time limit set, ureq's default
/// resolver runs `getaddrinfo` on a new OS thread and waits for it on a
/// `std::sync::mpsc` channel — a `futex` wait no hook sees, which would
/// block the worker (and start an OS thread per request). [`StdResolver`]
/// calls std's `ToSocketAddrs` in place instead: `getaddrinfo` is patched
/// (it runs on the blocking pool while the green thread parks).
pub fn patched_agent(timeout: Option<Duration>, roots: Option<&RootCerts>) -> Agent {
    Agent::with_parts(config(timeout, roots), DefaultConnector::new(), StdResolver)
}

/// The host and port a URL connects to (the scheme's default port if none).
fn host_port(uri: &ureq::http::Uri) -> Result<(&str, u16), ureq::Error> {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri
        .host()
        .ok_or_else(|| ureq::Error::BadUri(format!("no host in {uri}")))?;
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    // Bracketed IPv6 literals come with their brackets.
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

/// ureq's list of at most 16 addresses, or `HostNotFound`.
fn addr_list(
    r: &impl Resolver,
    addrs: impl Iterator<Item = SocketAddr>,
) -> Result<ResolvedSocketAddrs, ureq::Error> {
    let mut out = r.empty();
    for addr in addrs.take(16) {
        out.push(addr);
    }
    if out.is_empty() {
        return Err(ureq::Error::HostNotFound);
    }
    Ok(out)
}

/// Resolves host names with `greenhouse::net::ToSocketAddrs` (on the
/// blocking pool, while the green thread parks); ureq's default resolver
/// would call `getaddrinfo` on the worker, or wait on an std channel.
#[derive(Debug)]
pub struct GreenResolver;

impl Resolver for GreenResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        use greenhouse::net::ToSocketAddrs;
        addr_list(self, host_port(uri)?.to_socket_addrs()?)
    }
}

/// Resolves host names with std's `ToSocketAddrs`, in place, whatever the
/// time limit (`getaddrinfo` keeps its own time-outs): see
/// [`patched_agent`].
#[derive(Debug)]
pub struct StdResolver;

impl Resolver for StdResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        use std::net::ToSocketAddrs;
        addr_list(self, host_port(uri)?.to_socket_addrs()?)
    }
}

/// Opens TCP connections with `greenhouse::net::TcpStream`.
#[derive(Debug)]
pub struct GreenTcpConnector;

impl<In: Transport> Connector<In> for GreenTcpConnector {
    type Out = Either<In, GreenTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            return Ok(chained.map(Either::A));
        }
        let limit = details.timeout.not_zero().map(|d| *d);
        let mut last = None;
        for addr in details.addrs.iter() {
            let r = match limit {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(*addr),
            };
            match r {
                Ok(s) => {
                    if details.config.no_delay() {
                        s.set_nodelay(true)?;
                    }
                    let sock = Arc::new(GreenSock(s));
                    let weak: Weak<dyn ShutdownHandle> =
                        Arc::downgrade(&sock) as Weak<dyn ShutdownHandle>;
                    (details.register_shutdown)(weak)?;
                    let buffers = LazyBuffers::new(
                        details.config.input_buffer_size(),
                        details.config.output_buffer_size(),
                    );
                    return Ok(Some(Either::B(GreenTransport { sock, buffers })));
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    last = Some(ureq::Error::Timeout(details.timeout.reason))
                }
                Err(e) => last = Some(e.into()),
            }
        }
        Err(last.unwrap_or(ureq::Error::HostNotFound))
    }
}

/// A green socket, shut down through ureq's `Agent::shutdown`.
pub struct GreenSock(TcpStream);

impl ShutdownHandle for GreenSock {
    fn shutdown(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// ureq's transport over a green socket.
pub struct GreenTransport {
    sock: Arc<GreenSock>,
    buffers: LazyBuffers,
}

impl fmt::Debug for GreenTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenTransport")
            .field("peer", &self.sock.0.peer_addr().ok())
            .finish()
    }
}

/// Maps a socket error to ureq's: a time-out (greenhouse, like std on Unix,
/// reports an expired socket time-out as `WouldBlock`) becomes
/// `Error::Timeout` with ureq's reason.
fn map_io(e: io::Error, timeout: &NextTimeout) -> ureq::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ureq::Error::Timeout(timeout.reason),
        _ => e.into(),
    }
}

impl Transport for GreenTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        self.sock
            .0
            .set_write_timeout(timeout.not_zero().map(|d| *d))?;
        let output = &self.buffers.output()[..amount];
        (&self.sock.0)
            .write_all(output)
            .map_err(|e| map_io(e, &timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        self.sock
            .0
            .set_read_timeout(timeout.not_zero().map(|d| *d))?;
        let input = self.buffers.input_append_buf();
        let n = loop {
            match (&self.sock.0).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| map_io(e, &timeout))?,
            }
        };
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open means: nothing to read and no EOF/error pending.
        let s = &self.sock.0;
        if s.set_nonblocking(true).is_err() {
            return false;
        }
        let open =
            matches!((&*s).read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).is_ok() && open
    }
}
