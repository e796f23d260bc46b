//! Run: `cargo run --release --example chat-load -- --addr 127.0.0.1:7890 --clients 2000 --messages 50`
//! against a running `chat-server` (either mode).
//!
//! N clients (green threads, of course) connect, take nicknames and join
//! rooms of `--room-size`; once all are in, each sends M messages, as fast
//! as the server takes them. Every client checks that it received every
//! message of its room, each sender's in the order sent, and that all
//! members of a room saw the room's messages in one and the same order.
//! Reported: connect time, messages/s, p50/p99 delivery latency, and the
//! server's peak RSS and thread count (from /proc; the server is found by
//! its listening port, or given with `--server-pid`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use greenhouse::net::TcpStream;
use greenhouse::sync::{Barrier, Semaphore};

#[allow(dead_code)]
#[path = "common/procstat.rs"]
mod procstat;

/// Load generator for chat-server.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-load")]
pub struct LoadConfig {
    /// The server.
    #[arg(long, default_value = "127.0.0.1:7890")]
    pub addr: SocketAddr,
    /// Number of clients.
    #[arg(long, default_value_t = 2000)]
    pub clients: usize,
    /// Messages each client sends.
    #[arg(long, default_value_t = 50)]
    pub messages: usize,
    /// Clients per room.
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    /// The server's process id (default: found from the listening port).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// At most this many connects in flight (a burst larger than the
    /// server's listen backlog of 128 gets SYNs dropped or answered with
    /// SYN cookies, and connect time then measures TCP's 1 s retry).
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Time until every client was connected and in its room.
    pub connect: Duration,
    /// Time from the first message sent to the last one delivered.
    pub messages: Duration,
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered (each message reaches every member of its room,
    /// the sender too).
    pub delivered: u64,
    /// Delivery latency percentiles.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Rooms whose members all saw all messages in one order.
    pub rooms_ok: usize,
    /// Rooms.
    pub rooms: usize,
    /// Problems found (missing or reordered messages, errors).
    pub problems: Vec<String>,
    /// The server's peak RSS and threads, if it could be watched.
    pub server: Option<(u32, procstat::Peaks)>,
}

/// What one client saw.
struct Seen {
    room: usize,
    /// Hash of the sequence of (sender, seq) received, in order.
    order: u64,
    count: u64,
    latencies: Vec<u32>,
    problem: Option<String>,
}

/// Finds the pid of the process listening on `addr` (Linux /proc).
pub fn find_listener_pid(addr: SocketAddr) -> Option<u32> {
    let port = format!("{:04X}", addr.port());
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 9 && f[1].ends_with(&format!(":{port}")) && f[3] == "0A")
            .then(|| f[9].to_string())
    })?;
    let target = format!("socket:[{inode}]");
    for p in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                return Some(pid);
            }
        }
    }
    None
}

/// Runs the load (inside a greenhouse runtime) and reports.
///
/// # Errors
/// Only set-up errors; client failures are `problems`.
pub fn run_load(cfg: &LoadConfig) -> io::Result<Report> {
    let pid = cfg.server_pid.or_else(|| find_listener_pid(cfg.addr));
    let sampler = pid.map(|p| procstat::PeakSampler::start(Some(p), Duration::from_millis(20)));
    let cfg = cfg.clone();
    let clock = Instant::now();
    let joined = Arc::new(Barrier::new(cfg.clients + 1));
    let connecting = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let results: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let spawn_all = {
        let (joined, results, cfg) = (joined.clone(), results.clone(), cfg.clone());
        move || -> Vec<greenhouse::thread::JoinHandle<()>> {
            (0..cfg.clients)
                .map(|i| {
                    let (joined, results, cfg) = (joined.clone(), results.clone(), cfg.clone());
                    let connecting = connecting.clone();
                    greenhouse::thread::Builder::new()
                        .name(format!("client-{i}"))
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            let seen = client(i, &cfg, &joined, &connecting, clock);
                            results.lock().unwrap().push(seen);
                        })
                        .expect("spawn a client")
                })
                .collect()
        }
    };
    let start = Instant::now();
    let handles = spawn_all();
    let limit = Duration::from_secs(cfg.timeout);
    // All connected and in their rooms: the clients start sending now.
    let in_time = greenhouse::time::timeout(limit, || joined.wait()).is_ok();
    let connect = start.elapsed();
    let send_start = Instant::now();
    let mut problems = Vec::new();
    if !in_time {
        problems.push(format!("clients not all joined after {limit:?}"));
        for h in &handles {
            h.kill();
        }
    }
    for h in handles {
        if let Err(e) = h.join() {
            problems.push(format!("a client failed: {e}"));
        }
    }
    let messages = send_start.elapsed();
    let server = pid.zip(sampler.map(|s| s.finish()));

    let seen = std::mem::take(&mut *results.lock().unwrap());
    let rooms = cfg.clients.div_ceil(cfg.room_size);
    let mut orders: HashMap<usize, Vec<u64>> = HashMap::new();
    let mut latencies = Vec::new();
    let mut delivered = 0;
    for s in &seen {
        if let Some(p) = &s.problem {
            problems.push(p.clone());
        }
        orders.entry(s.room).or_default().push(s.order);
        latencies.extend_from_slice(&s.latencies);
        delivered += s.count;
    }
    let mut rooms_ok = 0;
    for r in 0..rooms {
        match orders.get(&r) {
            Some(o) if o.windows(2).all(|w| w[0] == w[1]) && o.len() == room_members(&cfg, r) => {
                rooms_ok += 1
            }
            Some(_) => problems.push(format!("room r{r}: members saw different orders")),
            None => problems.push(format!("room r{r}: no member finished")),
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&us| Duration::from_micros(us.into()))
    };
    Ok(Report {
        connect,
        messages,
        sent: (cfg.clients * cfg.messages) as u64,
        delivered,
        p50: pct(0.50),
        p99: pct(0.99),
        rooms_ok,
        rooms,
        problems,
        server,
    })
}

fn room_members(cfg: &LoadConfig, room: usize) -> usize {
    (cfg.clients - room * cfg.room_size).min(cfg.room_size)
}

/// One client: join, wait for everyone, send and receive, check.
fn client(
    i: usize,
    cfg: &LoadConfig,
    joined: &Barrier,
    connecting: &Semaphore,
    clock: Instant,
) -> Seen {
    let room = i / cfg.room_size;
    let mut seen = Seen {
        room,
        order: 0,
        count: 0,
        latencies: Vec::with_capacity(cfg.messages * cfg.room_size),
        problem: None,
    };
    let fail = |seen: &mut Seen, e: String| {
        seen.problem.get_or_insert(format!("client c{i}: {e}"));
    };
    let me = format!("c{i}");
    let joined_line = format!("* {me} joined r{room}\n");
    // Connect, take the nick and join the room (a few connects at a time).
    let setup = || -> Result<(TcpStream, BufReader<TcpStream>), String> {
        let _permit = connecting.acquire();
        let stream = TcpStream::connect(cfg.addr).map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(cfg.timeout)));
        let _ = stream.set_nodelay(true);
        let mut w = stream.try_clone().map_err(|e| format!("clone: {e}"))?;
        let mut r = BufReader::new(stream);
        // Nick and room in one write.
        w.write_all(format!("{me}\n/join r{room}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    return Err(format!("disconnected while joining (last: {line:?})"))
                }
                Ok(_) if line == joined_line => return Ok((w, r)),
                Ok(_) => {}
            }
        }
    };
    let setup = setup();
    joined.wait();
    let (mut w, mut r) = match setup {
        Ok(v) => v,
        Err(e) => {
            fail(&mut seen, e);
            return seen;
        }
    };
    let mut line = String::new();

    // The sender runs beside this thread, which reads.
    let (n, members) = (cfg.messages, room_members(cfg, room));
    let sender = greenhouse::thread::spawn(move || -> io::Result<()> {
        for seq in 0..n {
            let ts = clock.elapsed().as_micros();
            w.write_all(format!("m {i} {seq} {ts}\n").as_bytes())?;
        }
        Ok(())
    });
    let expect = (n * members) as u64;
    let mut next_seq: HashMap<usize, usize> = HashMap::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let prefix = format!("[r{room}] ");
    while seen.count < expect {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let e = format!("lost after {} of {expect} messages", seen.count);
                fail(&mut seen, e);
                break;
            }
            Ok(_) => {}
        }
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue; // notices
        };
        let Some((_, body)) = rest.split_once(": ") else {
            continue;
        };
        let f: Vec<&str> = body.split_whitespace().collect();
        let parsed = (f.len() == 4 && f[0] == "m")
            .then(|| {
                Some((
                    f[1].parse::<usize>().ok()?,
                    f[2].parse::<usize>().ok()?,
                    f[3].parse::<u128>().ok()?,
                ))
            })
            .flatten();
        let Some((from, seq, ts)) = parsed else {
            fail(&mut seen, format!("garbled line {line:?}"));
            continue;
        };
        let want = next_seq.entry(from).or_insert(0);
        if seq != *want {
            fail(
                &mut seen,
                format!("from c{from}: got #{seq}, expected #{want}"),
            );
        }
        *want = seq + 1;
        (from, seq).hash(&mut hasher);
        let now = clock.elapsed().as_micros();
        seen.latencies
            .push(now.saturating_sub(ts).min(u32::MAX as u128) as u32);
        seen.count += 1;
    }
    seen.order = hasher.finish();
    match sender.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => fail(&mut seen, format!("send: {e}")),
        Err(e) => fail(&mut seen, format!("sender: {e}")),
    }
    seen
}

/// Prints the report.
pub fn print_report(cfg: &LoadConfig, r: &Report, out: &mut impl Write) -> io::Result<()> {
    let secs = r.messages.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "{} clients in rooms of {}, {} messages each: {} sent, {} delivered",
        cfg.clients, cfg.room_size, cfg.messages, r.sent, r.delivered
    )?;
    writeln!(out, "connect + join:  {:.2} s", r.connect.as_secs_f64())?;
    writeln!(
        out,
        "messages:        {:.2} s, {:.0} sent/s, {:.0} delivered/s",
        secs,
        r.sent as f64 / secs,
        r.delivered as f64 / secs
    )?;
    writeln!(
        out,
        "latency:         p50 {:.1} ms, p99 {:.1} ms",
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3
    )?;
    writeln!(out, "ordering:        {}/{} rooms ok", r.rooms_ok, r.rooms)?;
    match &r.server {
        Some((pid, p)) => writeln!(
            out,
            "server pid {pid}: peak RSS {}, peak threads {}",
            procstat::human_bytes(p.rss),
            p.threads
        )?,
        None => writeln!(out, "server: not found in /proc (pass --server-pid)")?,
    }
    for p in r.problems.iter().take(10) {
        writeln!(out, "PROBLEM: {p}")?;
    }
    Ok(())
}

fn main() {
    let cfg = LoadConfig::parse();
    if cfg.clients == 0 || cfg.room_size == 0 {
        eprintln!("chat-load: --clients and --room-size must be at least 1");
        std::process::exit(2);
    }
    let c = cfg.clone();
    let report = greenhouse::run(move || run_load(&c));
    match report {
        Ok(r) => {
            print_report(&cfg, &r, &mut io::stdout()).unwrap();
            if !r.problems.is_empty() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("chat-load: {e}");
            std::process::exit(2);
        }
    }
}
