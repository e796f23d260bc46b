//! The tiny abstraction that lets one handler run on green threads or on OS
//! threads: a [`Mode`] names a socket type, a listener type and how to spawn
//! and sleep. Handler code is written once against `std::io::Read`/`Write`
//! and these traits, then instantiated with [`Green`] (greenhouse) or
//! [`Threads`] (std, the OS-thread twin). The two impls differ only in the
//! `use` lines: that is greenhouse's promise.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

/// A connected byte stream: what a handler needs beyond `Read + Write`.
pub trait Conn: Read + Write + Send + Sync + Sized + 'static {
    /// Another handle to the same socket (for a separate reader and writer).
    fn try_clone(&self) -> io::Result<Self>;
    /// As `TcpStream::set_read_timeout`.
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()>;
    /// As `TcpStream::set_write_timeout`.
    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()>;
    /// As `TcpStream::shutdown`.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// As `TcpStream::peer_addr`.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// As `TcpStream::set_nodelay`.
    fn set_nodelay(&self, on: bool) -> io::Result<()>;
}

/// A listening socket.
pub trait Listen: Send + Sync + Sized + 'static {
    /// The connections it accepts.
    type Conn: Conn;
    /// As `TcpListener::bind`.
    fn bind(addr: SocketAddr) -> io::Result<Self>;
    /// As `TcpListener::accept`.
    fn accept(&self) -> io::Result<(Self::Conn, SocketAddr)>;
    /// As `TcpListener::local_addr`.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A spawned thread of either kind, to be joined.
pub enum Task {
    /// An OS thread.
    Os(std::thread::JoinHandle<()>),
    /// A green thread.
    Green(greenhouse::thread::JoinHandle<()>),
}

impl Task {
    /// Waits for the thread; `Err` with a message if it panicked or was killed.
    pub fn join(self) -> Result<(), String> {
        match self {
            Task::Os(h) => h.join().map_err(|_| "thread panicked".to_string()),
            Task::Green(h) => h.join().map_err(|e| e.to_string()),
        }
    }
}

/// How a program runs its concurrent work: [`Green`] or [`Threads`].
pub trait Mode: Send + Sync + 'static {
    /// Listener type (and through it, the stream type).
    type Listener: Listen<Conn = Self::Stream>;
    /// Stream type.
    type Stream: Conn;
    /// The mode's name on the command line.
    const NAME: &'static str;
    /// Runs `f` where this mode's threads can be spawned (for green threads:
    /// inside a greenhouse runtime) and returns its value.
    fn enter<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T;
    /// Spawns `f` as a thread of this mode.
    fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<Task>;
    /// Sleeps the current thread of this mode.
    fn sleep(d: Duration);
    /// Connects a stream.
    fn connect(addr: SocketAddr) -> io::Result<Self::Stream>;
}

/// Green threads on a greenhouse runtime (one worker per core).
pub struct Green;

/// One OS thread per task: the twin that shows what greenhouse replaces.
pub struct Threads;

impl Conn for greenhouse::net::TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        greenhouse::net::TcpStream::try_clone(self)
    }
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        greenhouse::net::TcpStream::set_read_timeout(self, d)
    }
    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        greenhouse::net::TcpStream::set_write_timeout(self, d)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        greenhouse::net::TcpStream::shutdown(self, how)
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        greenhouse::net::TcpStream::peer_addr(self)
    }
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        greenhouse::net::TcpStream::set_nodelay(self, on)
    }
}

impl Conn for std::net::TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::net::TcpStream::try_clone(self)
    }
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, d)
    }
    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, d)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::net::TcpStream::shutdown(self, how)
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        std::net::TcpStream::peer_addr(self)
    }
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        std::net::TcpStream::set_nodelay(self, on)
    }
}

impl Listen for greenhouse::net::TcpListener {
    type Conn = greenhouse::net::TcpStream;
    fn bind(addr: SocketAddr) -> io::Result<Self> {
        greenhouse::net::TcpListener::bind(addr)
    }
    fn accept(&self) -> io::Result<(Self::Conn, SocketAddr)> {
        greenhouse::net::TcpListener::accept(self)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        greenhouse::net::TcpListener::local_addr(self)
    }
}

impl Listen for std::net::TcpListener {
    type Conn = std::net::TcpStream;
    fn bind(addr: SocketAddr) -> io::Result<Self> {
        std::net::TcpListener::bind(addr)
    }
    fn accept(&self) -> io::Result<(Self::Conn, SocketAddr)> {
        std::net::TcpListener::accept(self)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        std::net::TcpListener::local_addr(self)
    }
}

impl Mode for Green {
    type Listener = greenhouse::net::TcpListener;
    type Stream = greenhouse::net::TcpStream;
    const NAME: &'static str = "green";
    fn enter<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        greenhouse::run(f)
    }
    fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<Task> {
        greenhouse::thread::Builder::new()
            .name(name.to_string())
            .spawn(f)
            .map(Task::Green)
    }
    fn sleep(d: Duration) {
        greenhouse::thread::sleep(d)
    }
    fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        greenhouse::net::TcpStream::connect(addr)
    }
}

impl Mode for Threads {
    type Listener = std::net::TcpListener;
    type Stream = std::net::TcpStream;
    const NAME: &'static str = "threads";
    fn enter<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        f()
    }
    fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<Task> {
        // Small stacks, as a server with thousands of threads would use.
        std::thread::Builder::new()
            .name(name.to_string())
            .stack_size(256 * 1024)
            .spawn(f)
            .map(Task::Os)
    }
    fn sleep(d: Duration) {
        std::thread::sleep(d)
    }
    fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        std::net::TcpStream::connect(addr)
    }
}
