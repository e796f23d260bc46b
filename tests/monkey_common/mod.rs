//! Shared by the monkey-patching tests: plain std code (no greenhouse types)
//! and a guard that turns a hang into a failure.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on its own OS thread and fails the test if it has not finished
/// within `limit` (without the hooks, most proofs block their only worker
/// forever instead of failing).
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("did not finish within {limit:?}: a blocking call held the worker"),
    }
}

/// A one-worker runtime.
pub fn one_worker() -> greenhouse::runtime::Runtime {
    greenhouse::runtime::Runtime::builder()
        .workers(1)
        .build()
        .expect("runtime")
}

// ---- std-only code: what an unmodified program or crate does -------------

/// Echoes one line back, std only.
pub fn echo_line(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut w = stream;
    w.write_all(line.as_bytes())?;
    w.flush()
}

/// Sends a line and reads the echo, std only.
pub fn ask(addr: impl ToSocketAddrs, msg: &str) -> io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(format!("{msg}\n").as_bytes())?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

/// Accepts `n` connections and returns them, std only.
pub fn accept_n(listener: &TcpListener, n: usize) -> io::Result<Vec<TcpStream>> {
    listener.incoming().take(n).collect()
}

/// What std socket and sleep code observes on the calling thread; compared
/// between a plain thread and what libc alone would give.
#[derive(Debug, PartialEq, Eq)]
pub struct Observed {
    pub read_timeout_kind: io::ErrorKind,
    pub read_timeout_waited: bool,
    pub nonblocking_read_kind: io::ErrorKind,
    pub nonblocking_read_immediate: bool,
    pub accept_nonblocking_kind: io::ErrorKind,
    pub refused_kind: io::ErrorKind,
    pub echo: String,
    pub slept: bool,
    pub eof_read: usize,
}

/// Runs std socket and sleep code on this thread and records what it sees.
pub fn observe_std() -> Observed {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (mut server, _) = listener.accept().unwrap();

    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let e = (&client).read(&mut buf).unwrap_err();
    let read_timeout_kind = e.kind();
    let read_timeout_waited = t.elapsed() >= Duration::from_millis(45);

    client.set_read_timeout(None).unwrap();
    client.set_nonblocking(true).unwrap();
    let t = Instant::now();
    let e = (&client).read(&mut buf).unwrap_err();
    let nonblocking_read_kind = e.kind();
    let nonblocking_read_immediate = t.elapsed() < Duration::from_millis(500);
    client.set_nonblocking(false).unwrap();

    listener.set_nonblocking(true).unwrap();
    let accept_nonblocking_kind = listener.accept().unwrap_err().kind();
    listener.set_nonblocking(false).unwrap();

    // A port nobody listens on: bind one, note it, drop it.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused_kind = TcpStream::connect(free).unwrap_err().kind();

    server.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    (&client).read_exact(&mut got).unwrap();
    let echo = String::from_utf8_lossy(&got).into_owned();

    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    let slept = t.elapsed() >= Duration::from_millis(20);

    drop(server);
    let eof_read = (&client).read(&mut buf).unwrap();

    Observed {
        read_timeout_kind,
        read_timeout_waited,
        nonblocking_read_kind,
        nonblocking_read_immediate,
        accept_nonblocking_kind,
        refused_kind,
        echo,
        slept,
        eof_read,
    }
}

/// What libc alone gives for `observe_std` on Linux.
pub fn expected_std() -> Observed {
    Observed {
        read_timeout_kind: io::ErrorKind::WouldBlock,
        read_timeout_waited: true,
        nonblocking_read_kind: io::ErrorKind::WouldBlock,
        nonblocking_read_immediate: true,
        accept_nonblocking_kind: io::ErrorKind::WouldBlock,
        refused_kind: io::ErrorKind::ConnectionRefused,
        echo: "ping".into(),
        slept: true,
        eof_read: 0,
    }
}

/// Held by each test of a binary while it runs: the proofs measure overlap
/// on one worker, and on a 2-core machine they would otherwise compete with
/// each other (10,000 green threads next to 1,000 connections).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
