//! gevent's `StreamServer`: accept TCP connections and handle each in its
//! own green thread.
//!
//! A [`StreamServer`] owns a listener and a handler `Fn(TcpStream,
//! SocketAddr)`. Its accept loop runs as a green thread; every accepted
//! connection gets a new green thread running the handler (new green threads
//! are stealable, so idle workers pick connections up). Handlers are members
//! of a [`Group`], or of a [`Pool`] given with
//! [`with_pool`](StreamServer::with_pool) (gevent's `spawn=pool`), which caps
//! how many connections are handled at once: while the pool is full the
//! server stops accepting, and new connections wait in the kernel's backlog.
//!
//! Errors from `accept` never stop the server: running out of descriptors
//! (`EMFILE`, `ENFILE`) or memory (`ENOBUFS`, `ENOMEM`) is logged with `log`
//! and retried after a pause that doubles from 10 ms up to 1 s (accepting
//! at once again would spin, since the pending connection keeps the listener
//! readable); errors that belong to one failed connection (`ECONNABORTED`,
//! network errors) are logged at debug level and skipped. Only errors that
//! mean the listener itself is unusable (`EBADF`, `EINVAL`, `ENOTSOCK`)
//! end the accept loop; [`serve_forever`](StreamServer::serve_forever)
//! returns them.
//!
//! [`ServerHandle::stop`] stops accepting (closing the listener), waits up to
//! a grace period for the handlers to finish, then kills the rest.
//!
//! # Example: an echo server
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::time::Duration;
//! use greenhouse::net::TcpStream;
//! use greenhouse::server::StreamServer;
//!
//! greenhouse::run(|| {
//!     let server = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, _peer| {
//!         let mut out = stream.try_clone().unwrap();
//!         for line in BufReader::new(stream).lines() {
//!             let Ok(line) = line else { return };
//!             if writeln!(out, "{line}").is_err() {
//!                 return;
//!             }
//!         }
//!     })
//!     .unwrap();
//!     let server = server.start().unwrap();
//!     let mut c = TcpStream::connect(server.local_addr()).unwrap();
//!     writeln!(c, "hello").unwrap();
//!     let mut line = String::new();
//!     BufReader::new(&c).read_line(&mut line).unwrap();
//!     assert_eq!(line, "hello\n");
//!     server.stop(Duration::from_secs(1));
//! });
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::pool::{Group, Pool};
use crate::runtime::park::{KillUnwind, TimeoutUnwind};
use crate::sync::Event;
use crate::thread::JoinHandle;

/// First pause after an accept error caused by exhausted resources.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts while resources stay exhausted.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

type Handler = dyn Fn(TcpStream, SocketAddr) + Send + Sync + 'static;

/// Where handlers run: a set without bound, or the user's pool.
#[derive(Clone)]
enum Handlers {
    Group(Group),
    Pool(Pool),
}

impl Handlers {
    fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        match self {
            Handlers::Group(g) => drop(g.spawn(f)),
            Handlers::Pool(p) => drop(p.spawn(f)),
        }
    }
    fn wait_available(&self) {
        if let Handlers::Pool(p) = self {
            p.wait_available();
        }
    }
    fn join_timeout(&self, grace: Duration) -> bool {
        match self {
            Handlers::Group(g) => g.join_timeout(grace),
            Handlers::Pool(p) => p.join_timeout(grace),
        }
    }
    fn kill(&self) {
        match self {
            Handlers::Group(g) => g.kill(),
            Handlers::Pool(p) => p.kill(),
        }
    }
}

static NEXT_SERVER: AtomicU64 = AtomicU64::new(1);

crate::green_local! {
    /// The server whose handler the current green thread runs (0: none), so
    /// that `stop` called from a handler does not wait for itself.
    static HANDLING: std::cell::Cell<u64> = std::cell::Cell::new(0);
}

/// What a server and its handles share.
struct Shared {
    id: u64,
    addr: SocketAddr,
    state: Mutex<State>,
    /// Set once the server has stopped (by `stop`, or because the accept
    /// loop failed).
    stopped: Event,
}

struct State {
    /// The accept loop, while it runs.
    acceptor: Option<JoinHandle<()>>,
    /// `stop` was called (perhaps before `start`).
    stopping: bool,
    /// Why the accept loop ended on its own.
    error: Option<io::Error>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TCP server that runs a handler in a new green thread for each
/// connection (gevent's `StreamServer`). See the [module docs](self).
///
/// # Example
///
/// ```
/// use std::io::Read;
/// use greenhouse::server::StreamServer;
/// greenhouse::run(|| {
///     let server = StreamServer::bind("127.0.0.1:0", |mut s: greenhouse::net::TcpStream, _| {
///         let _ = std::io::Write::write_all(&mut s, b"hi\n");
///     })
///     .unwrap();
///     let handle = server.start().unwrap();
///     let mut c = greenhouse::net::TcpStream::connect(handle.local_addr()).unwrap();
///     let mut got = String::new();
///     c.read_to_string(&mut got).unwrap();
///     assert_eq!(got, "hi\n");
///     handle.stop(std::time::Duration::ZERO);
/// });
/// ```
pub struct StreamServer {
    listener: TcpListener,
    handler: Arc<Handler>,
    handlers: Handlers,
    shared: Arc<Shared>,
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("addr", &self.shared.addr)
            .field("pool", &matches!(self.handlers, Handlers::Pool(_)))
            .finish()
    }
}

impl StreamServer {
    /// Binds a listener to `addr` (as [`TcpListener::bind`]) and makes a
    /// server that runs `handler(stream, peer)` for each connection. Nothing
    /// is accepted before [`start`](StreamServer::start) or
    /// [`serve_forever`](StreamServer::serve_forever).
    ///
    /// # Errors
    /// As [`TcpListener::bind`]; also `getsockname`'s error.
    ///
    /// # Example
    ///
    /// ```
    /// let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<StreamServer>
    where
        A: ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        StreamServer::new(TcpListener::bind(addr)?, handler)
    }

    /// A server on an existing listener (gevent's `StreamServer(listener,
    /// handle)`).
    ///
    /// # Errors
    /// `getsockname`'s error, if the listener has no local address.
    ///
    /// # Example
    ///
    /// ```
    /// let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let server = greenhouse::server::StreamServer::new(l, |_s, _peer| {}).unwrap();
    /// assert_eq!(server.local_addr(), addr);
    /// ```
    pub fn new<F>(listener: TcpListener, handler: F) -> io::Result<StreamServer>
    where
        F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        let addr = listener.local_addr()?;
        Ok(StreamServer {
            listener,
            handler: Arc::new(handler),
            handlers: Handlers::Group(Group::new()),
            shared: Arc::new(Shared {
                id: NEXT_SERVER.fetch_add(1, Relaxed),
                addr,
                state: Mutex::new(State {
                    acceptor: None,
                    stopping: false,
                    error: None,
                }),
                stopped: Event::new(),
            }),
        })
    }

    /// Runs handlers in `pool` (gevent's `spawn=pool`): at most
    /// `pool.size()` connections are handled at once; while the pool is
    /// full the server does not accept, so further connections wait in the
    /// kernel's backlog. [`ServerHandle::stop`] joins and kills the pool's
    /// members — all of them, if the pool is shared with other work.
    ///
    /// # Example
    ///
    /// ```
    /// use greenhouse::{pool::Pool, server::StreamServer};
    /// let server = StreamServer::bind("127.0.0.1:0", |_s, _peer| {})
    ///     .unwrap()
    ///     .with_pool(Pool::new(100));
    /// # let _ = server;
    /// ```
    pub fn with_pool(mut self, pool: Pool) -> StreamServer {
        self.handlers = Handlers::Pool(pool);
        self
    }

    /// The address the server listens on.
    ///
    /// # Example
    ///
    /// ```
    /// let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
    /// assert!(server.local_addr().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A handle to stop the server later, taken before
    /// [`serve_forever`](StreamServer::serve_forever) (which consumes the
    /// server). A server stopped before it starts never accepts.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhouse::server::StreamServer;
    /// greenhouse::run(|| {
    ///     let server = StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
    ///     let handle = server.handle();
    ///     greenhouse::thread::spawn(move || {
    ///         greenhouse::thread::sleep(Duration::from_millis(10));
    ///         handle.stop(Duration::from_secs(1));
    ///     });
    ///     server.serve_forever().unwrap(); // returns once stopped
    /// });
    /// ```
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
            handlers: self.handlers.clone(),
        }
    }

    /// Starts the accept loop in a new green thread and returns at once.
    ///
    /// # Errors
    /// If the green thread cannot be created (no stack could be mapped).
    ///
    /// # Panics
    /// Outside a green thread (there is no runtime to run it on).
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
    ///     let handle = server.start().unwrap();
    ///     assert!(!handle.is_stopped());
    ///     handle.stop(std::time::Duration::ZERO);
    ///     assert!(handle.is_stopped());
    /// });
    /// ```
    pub fn start(self) -> io::Result<ServerHandle> {
        let handle = self.handle();
        let StreamServer {
            listener,
            handler,
            handlers,
            shared,
        } = self;
        let mut st = lock(&shared.state);
        if st.stopping {
            return Ok(handle);
        }
        let sh = shared.clone();
        let acceptor = crate::thread::Builder::new()
            .name(format!("StreamServer {}", shared.addr))
            .spawn(move || {
                let r = accept_loop(&sh, listener, &handler, &handlers);
                drop(handler);
                if let Err(e) = r {
                    let mut st = lock(&sh.state);
                    st.error = Some(e);
                    st.acceptor = None;
                    drop(st);
                    sh.stopped.set();
                }
            })?;
        st.acceptor = Some(acceptor);
        Ok(handle)
    }

    /// Starts the server and waits until it stops: until
    /// [`ServerHandle::stop`] (from a [`handle`](StreamServer::handle) taken
    /// before) has finished, or the accept loop fails.
    ///
    /// # Errors
    /// The error that ended the accept loop (the listener is unusable:
    /// `EBADF`, `EINVAL` …); as [`start`](StreamServer::start).
    ///
    /// # Panics
    /// Outside a green thread.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use greenhouse::server::StreamServer;
    /// greenhouse::run(|| {
    ///     let server = StreamServer::bind("127.0.0.1:0", |mut s: greenhouse::net::TcpStream, _| {
    ///         let _ = std::io::Write::write_all(&mut s, b"bye");
    ///     })
    ///     .unwrap();
    ///     let (addr, handle) = (server.local_addr(), server.handle());
    ///     greenhouse::thread::spawn(move || {
    ///         let mut c = greenhouse::net::TcpStream::connect(addr).unwrap();
    ///         let mut s = String::new();
    ///         c.read_to_string(&mut s).unwrap();
    ///         handle.stop(Duration::from_secs(1));
    ///         s
    ///     });
    ///     server.serve_forever().unwrap();
    /// });
    /// ```
    pub fn serve_forever(self) -> io::Result<()> {
        let handle = self.start()?;
        handle.shared.stopped.wait();
        let error = lock(&handle.shared.state).error.take();
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Errors after which the listener cannot accept again: the loop ends.
fn listener_is_unusable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT)
    )
}

/// Errors from exhausted resources: accepting again at once would spin (the
/// pending connection keeps the listener readable), so pause.
fn resources_exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn accept_loop(
    shared: &Shared,
    listener: TcpListener,
    handler: &Arc<Handler>,
    handlers: &Handlers,
) -> io::Result<()> {
    let addr = shared.addr;
    let mut backoff = MIN_BACKOFF;
    loop {
        handlers.wait_available();
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = MIN_BACKOFF;
                let h = handler.clone();
                let id = shared.id;
                spawn_handler(handlers, addr, move || {
                    HANDLING.with(|c| c.set(id));
                    h(stream, peer)
                });
            }
            Err(e) if listener_is_unusable(&e) => {
                log::error!(
                    "greenhouse: StreamServer {addr}: accept failed, the server stops: {e}"
                );
                return Err(e);
            }
            Err(e) if resources_exhausted(&e) => {
                log::warn!(
                    "greenhouse: StreamServer {addr}: accept failed: {e}; retrying in {} ms",
                    backoff.as_millis()
                );
                crate::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                // One connection failed before we got it (reset, network
                // error): nothing to pause for.
                log::debug!("greenhouse: StreamServer {addr}: accept failed: {e}");
            }
        }
    }
}

/// Spawns a handler. A spawn that fails (no stack can be mapped) drops that
/// connection and pauses, like an accept error, instead of ending the
/// server; cancellation of the accept loop itself passes through.
fn spawn_handler(handlers: &Handlers, addr: SocketAddr, f: impl FnOnce() + Send + 'static) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| handlers.spawn(f))) {
        if payload.is::<KillUnwind>() || payload.is::<TimeoutUnwind>() {
            resume_unwind(payload);
        }
        log::error!(
            "greenhouse: StreamServer {addr}: cannot start a green thread for a connection; \
             it is dropped"
        );
        crate::thread::sleep(MIN_BACKOFF);
    }
}

/// Controls a started [`StreamServer`]: its address, and
/// [`stop`](ServerHandle::stop). Clones control the same server; dropping
/// every handle does not stop it (it runs until stopped or until its
/// runtime ends).
///
/// # Example
///
/// ```
/// greenhouse::run(|| {
///     let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
///     let handle = server.start().unwrap();
///     let other = handle.clone();
///     other.stop(std::time::Duration::from_millis(100));
///     assert!(handle.is_stopped());
/// });
/// ```
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    handlers: Handlers,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.shared.addr)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    ///
    /// # Example
    ///
    /// ```
    /// greenhouse::run(|| {
    ///     let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
    ///     let addr = server.local_addr();
    ///     let handle = server.start().unwrap();
    ///     assert_eq!(handle.local_addr(), addr);
    ///     handle.stop(std::time::Duration::ZERO);
    /// });
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Whether the server has stopped (by [`stop`](ServerHandle::stop), or
    /// because its accept loop failed).
    ///
    /// # Example
    ///
    /// ```
    /// let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |_s, _peer| {}).unwrap();
    /// assert!(!server.handle().is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.is_set()
    }

    /// Stops the server (gevent's `stop(timeout)`): stops accepting and
    /// closes the listener at once (new connections are refused), waits up
    /// to `grace` for the running handlers to finish, then kills the rest
    /// and waits for them to unwind (a handler that never reaches a switch
    /// point delays this). Returns when the server has stopped; later calls
    /// return at once.
    ///
    /// Called from one of this server's own handlers it cannot wait for
    /// itself: it stops the server from a new green thread and returns at
    /// once (that handler is among those waited for, then killed).
    ///
    /// A cancellation point.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use greenhouse::server::StreamServer;
    /// greenhouse::run(|| {
    ///     let server = StreamServer::bind("127.0.0.1:0", |_s, _peer| {
    ///         greenhouse::thread::sleep(Duration::from_secs(60)); // a slow handler
    ///     })
    ///     .unwrap();
    ///     let handle = server.start().unwrap();
    ///     let _c = greenhouse::net::TcpStream::connect(handle.local_addr()).unwrap();
    ///     greenhouse::thread::sleep(Duration::from_millis(20)); // let it be accepted
    ///     let t = Instant::now();
    ///     handle.stop(Duration::from_millis(50)); // then killed
    ///     assert!(t.elapsed() < Duration::from_secs(30));
    ///     assert!(greenhouse::net::TcpStream::connect(handle.local_addr()).is_err());
    /// });
    /// ```
    pub fn stop(&self, grace: Duration) {
        if HANDLING.with(|c| c.get()) == self.shared.id {
            let me = self.clone();
            let _ = crate::thread::Builder::new()
                .name(format!("StreamServer {} stop", self.shared.addr))
                .spawn(move || {
                    HANDLING.with(|c| c.set(0));
                    me.stop(grace)
                });
            return;
        }
        let acceptor = {
            let mut st = lock(&self.shared.state);
            if st.stopping {
                drop(st);
                self.shared.stopped.wait();
                return;
            }
            st.stopping = true;
            st.acceptor.take()
        };
        // Killing the accept loop drops the listener it owns: the port
        // closes before the grace period starts.
        if let Some(a) = acceptor {
            a.kill();
            let _ = a.join();
        }
        if !self.handlers.join_timeout(grace) {
            self.handlers.kill();
        }
        self.shared.stopped.set();
    }
}
