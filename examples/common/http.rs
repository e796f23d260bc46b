//! HTTP clients for the examples: ureq (with rustls for https) over either
//! std's sockets or greenhouse's.
//!
//! ureq is a blocking client, which is exactly what greenhouse wants: its
//! transport is pluggable, so [`green_agent`] plugs in a TCP connector built
//! on `greenhouse::net::TcpStream` (and a resolver that resolves names on the
//! blocking pool). ureq's own TLS connector then wraps that transport
//! unchanged. Every read and write ureq makes parks the green thread instead
//! of blocking the worker.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Weak};
use std::time::Duration;

use greenhouse::net::TcpStream;
use ureq::config::Config;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, RustlsConnector,
    ShutdownHandle, Transport,
};
use ureq::Agent;

/// Settings shared by both kinds of agent.
pub fn config(timeout: Option<Duration>) -> Config {
    Agent::config_builder()
        .timeout_global(timeout)
        .user_agent("greenhouse-downloader/0.1")
        .build()
}

/// An agent on std's blocking sockets (ureq's defaults).
pub fn std_agent(timeout: Option<Duration>) -> Agent {
    Agent::new_with_config(config(timeout))
}

/// An agent whose sockets are greenhouse's: use it from green threads.
pub fn green_agent(timeout: Option<Duration>) -> Agent {
    let connector = ().chain(GreenTcpConnector).chain(RustlsConnector::default());
    Agent::with_parts(config(timeout), connector, GreenResolver)
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
        let scheme = uri.scheme_str().unwrap_or("http");
        let host = uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri(format!("no host in {uri}")))?;
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        // Bracketed IPv6 literals come with their brackets.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut out = self.empty();
        for addr in (host, port).to_socket_addrs()?.take(16) {
            out.push(addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
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
