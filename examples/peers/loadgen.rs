//! The one load generator every server is measured with: closed-loop
//! connections (each sends a request, waits for the whole response, sends
//! the next), driven by `mio` event loops on plain OS threads, so the load is
//! the same whichever contender serves it.
//!
//! Phases: connect every connection and make one round trip on each (so
//! each server has a task per connection parked in `read`), call `idle`
//! (the harness measures the server's memory then), then run the load for
//! `warmup + measure` and record the latency of each round trip completed
//! in the measurement window. Connections are closed with RST (`SO_LINGER`
//! 0) so repeated runs of 10,000 connections do not exhaust ephemeral ports
//! with TIME_WAIT.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::proto::{self, Proto};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent connections.
    pub conns: usize,
    /// Protocol.
    pub proto: Proto,
    /// Load generator OS threads (each drives its share of the connections).
    pub threads: usize,
    /// CPU to pin the generator threads to, if any.
    pub pin_cpu: Option<usize>,
    /// Load before the measurement window.
    pub warmup: Duration,
    /// The measurement window.
    pub measure: Duration,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Round trips completed in the measurement window.
    pub completed: u64,
    /// Round trips completed during the whole load, warm-up included.
    pub total: u64,
    /// Length of the window, seconds.
    pub secs: f64,
    /// Latency of each of those round trips, ns, ascending.
    pub latencies_ns: Vec<u64>,
    /// Connections that failed during the load.
    pub errors: u64,
    /// Time to connect every connection and make the first round trip.
    pub connect_secs: f64,
}

/// Longest time the connect phase may take before the run is declared failed.
const CONNECT_LIMIT: Duration = Duration::from_secs(120);
/// Connects in flight per generator thread (keeps the server's accept backlog from overflowing).
const CONNECTS_IN_FLIGHT: usize = 64;

struct Conn {
    s: TcpStream,
    rbuf: Vec<u8>,
    /// Bytes of the current request already written.
    written: usize,
    sent: Instant,
    want_write: bool,
    connected: bool,
    alive: bool,
}

/// Runs the load; `idle` is called once every connection is established and
/// idle, before the load starts.
///
/// # Errors
/// Connecting failed (refused, timed out, wrong first response).
pub fn run(spec: &LoadSpec, idle: impl FnOnce()) -> io::Result<LoadResult> {
    let threads = spec.threads.clamp(1, spec.conns.max(1));
    let barrier = Barrier::new(threads + 1);
    let started = Instant::now();
    let parts: Vec<io::Result<Part>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = spec.conns / threads + usize::from(t < spec.conns % threads);
                let barrier = &barrier;
                sc.spawn(move || thread_main(spec, n, barrier))
            })
            .collect();
        barrier.wait(); // every thread connected (or failed)
        let connect_secs = started.elapsed().as_secs_f64();
        idle();
        barrier.wait(); // load starts
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("load thread panicked")))
                    .map(|mut p| {
                        p.connect_secs = connect_secs;
                        p
                    })
            })
            .collect()
    });
    let mut out = LoadResult::default();
    for p in parts {
        let p = p?;
        out.completed += p.completed;
        out.total += p.total;
        out.errors += p.errors;
        out.latencies_ns.extend(p.latencies_ns);
        out.secs = spec.measure.as_secs_f64();
        out.connect_secs = p.connect_secs;
    }
    out.latencies_ns.sort_unstable();
    Ok(out)
}

type Part = LoadResult;

fn thread_main(spec: &LoadSpec, n: usize, barrier: &Barrier) -> io::Result<Part> {
    if let Some(cpu) = spec.pin_cpu {
        let _ = crate::osutil::pin_to_cpu(cpu);
    }
    let req = proto::request(spec.proto);
    let setup = Poll::new().and_then(|mut poll| {
        let mut events = Events::with_capacity(1024);
        let conns = connect_all(spec, n, &req, &mut poll, &mut events)?;
        Ok((poll, events, conns))
    });
    barrier.wait();
    barrier.wait();
    let (mut poll, mut events, mut conns) = setup?;
    let out = drive(spec, &req, &mut poll, &mut events, &mut conns);
    for c in &conns {
        set_linger_zero(&c.s);
    }
    out
}

fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a valid linger struct of the size passed; the fd is open
    // (owned by `s`, alive for the call).
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Writes what is left of the current request; asks for WRITABLE if the
/// socket is full.
fn continue_write(c: &mut Conn, req: &[u8], poll: &Poll, token: Token) -> io::Result<()> {
    while c.written < req.len() {
        match c.s.write(&req[c.written..]) {
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !c.want_write {
                    poll.registry().reregister(
                        &mut c.s,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    c.want_write = true;
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if c.want_write {
        poll.registry()
            .reregister(&mut c.s, token, Interest::READABLE)?;
        c.want_write = false;
    }
    Ok(())
}

fn send(c: &mut Conn, req: &[u8], now: Instant, poll: &Poll, token: Token) -> io::Result<()> {
    c.written = 0;
    c.sent = now;
    continue_write(c, req, poll, token)
}

/// Reads what has arrived; returns the length of a complete response at the
/// front of the buffer, if there is one.
fn read_response(c: &mut Conn, proto: Proto, req: &[u8]) -> io::Result<Option<usize>> {
    let mut tmp = [0u8; 2048];
    loop {
        match c.s.read(&mut tmp) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ))
            }
            Ok(n) => {
                c.rbuf.extend_from_slice(&tmp[..n]);
                // A short read took everything there was; with edge-triggered
                // epoll, the next arrival raises a new event.
                if n < tmp.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    proto::response_len(proto, req, &c.rbuf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn connect_all(
    spec: &LoadSpec,
    n: usize,
    req: &[u8],
    poll: &mut Poll,
    events: &mut Events,
) -> io::Result<Vec<Conn>> {
    let deadline = Instant::now() + CONNECT_LIMIT;
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let (mut in_flight, mut idle) = (0, 0);
    while idle < n {
        while conns.len() < n && in_flight < CONNECTS_IN_FLIGHT {
            let mut s = TcpStream::connect(spec.addr)?;
            let token = Token(conns.len());
            poll.registry()
                .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)?;
            conns.push(Conn {
                s,
                rbuf: Vec::with_capacity(256),
                written: 0,
                sent: Instant::now(),
                want_write: true,
                connected: false,
                alive: true,
            });
            in_flight += 1;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("only {idle} of {n} connections ready after {CONNECT_LIMIT:?}"),
            ));
        }
        poll.poll(events, Some(deadline - now))?;
        let now = Instant::now();
        for ev in events.iter() {
            let token = ev.token();
            let c = &mut conns[token.0];
            if !c.connected {
                if !ev.is_writable() && !ev.is_error() && !ev.is_write_closed() {
                    continue;
                }
                if let Some(e) = c.s.take_error()? {
                    return Err(e);
                }
                if let Err(e) = c.s.peer_addr() {
                    if e.kind() == io::ErrorKind::NotConnected {
                        continue; // spurious event: still connecting
                    }
                    return Err(e);
                }
                c.connected = true;
                c.s.set_nodelay(true)?;
                c.want_write = false;
                poll.registry()
                    .reregister(&mut c.s, token, Interest::READABLE)?;
                send(c, req, now, poll, token)?;
                continue;
            }
            if ev.is_writable() && c.want_write {
                continue_write(c, req, poll, token)?;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                if let Some(len) = read_response(c, spec.proto, req)? {
                    c.rbuf.drain(..len);
                    in_flight -= 1;
                    idle += 1;
                }
            }
        }
    }
    Ok(conns)
}

fn drive(
    spec: &LoadSpec,
    req: &[u8],
    poll: &mut Poll,
    events: &mut Events,
    conns: &mut [Conn],
) -> io::Result<Part> {
    let mut out = Part::default();
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.measure;
    for (i, c) in conns.iter_mut().enumerate() {
        send(c, req, start, poll, Token(i))?;
    }
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        poll.poll(events, Some(end - now))?;
        // One clock read per batch of events: the completion time of every
        // response in the batch and the send time of the requests it triggers.
        let now = Instant::now();
        for ev in events.iter() {
            let token = ev.token();
            let c = &mut conns[token.0];
            if !c.alive {
                continue;
            }
            let step = (|| -> io::Result<()> {
                if ev.is_writable() && c.want_write {
                    continue_write(c, req, poll, token)?;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    if let Some(len) = read_response(c, spec.proto, req)? {
                        c.rbuf.drain(..len);
                        out.total += 1;
                        if now >= measure_from && now < end {
                            out.completed += 1;
                            out.latencies_ns
                                .push(now.duration_since(c.sent).as_nanos() as u64);
                        }
                        send(c, req, now, poll, token)?;
                    }
                }
                Ok(())
            })();
            if let Err(e) = step {
                if out.errors == 0 {
                    eprintln!("peers: load connection failed: {e}");
                }
                out.errors += 1;
                c.alive = false;
                let _ = poll.registry().deregister(&mut c.s);
            }
        }
    }
    Ok(out)
}
