//! TCP echo over loopback: 100 connections x 10,000 round trips of 64 bytes,
//! greenhouse on 1 and 2 workers against one OS thread per connection
//! (std::net), side by side in one run. Prints throughput (round trips per
//! second over the whole run) and the latency of single round trips (p50,
//! p99, over every round trip of every connection), median of the rounds.
//!
//! `cargo bench --bench net` (a plain binary: criterion measures one
//! closure's time and cannot give a p99 across 100 connections).
//! Environment: GH_NET_CONNS (100), GH_NET_TRIPS (10000), GH_NET_ROUNDS (3),
//! GH_NET_ONLY (run only the variants whose name contains it, for profiling).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;

const MSG: usize = 64;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One client's run: round-trip latencies in nanoseconds.
fn client_loop<S: Read + Write>(mut s: S, trips: usize) -> Vec<u32> {
    let mut lat = Vec::with_capacity(trips);
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    for _ in 0..trips {
        let t = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
        lat.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }
    lat
}

/// The server side of one connection: echo whatever arrives until EOF, as
/// an echo server does (one read into a buffer, one write of what came).
fn echo_loop<S: Read + Write>(mut s: S) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// One variant: its name and how to run it once.
type Variant = (&'static str, Box<dyn Fn() -> Sample>);

struct Sample {
    wall: Duration,
    lat: Vec<u32>,
}

/// CPU time (user + system) the whole process has used: on a shared
/// machine, CPU per round trip says more about efficiency than wall time
/// (a runtime with 1-2 OS threads gets a smaller share of contended cores
/// than 200 threads, and every preemption of a worker stalls all of its
/// connections at once).
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the rusage we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn greenhouse_run(workers: usize, conns: usize, trips: usize) -> Sample {
    let rt = Runtime::builder().workers(workers).build().unwrap();
    rt.run(move || {
        use greenhouse::net::TcpStream;
        let server = greenhouse::server::StreamServer::bind("127.0.0.1:0", |s: TcpStream, _| {
            s.set_nodelay(true).unwrap();
            echo_loop(s)
        })
        .unwrap()
        .start()
        .unwrap();
        let addr = server.local_addr();
        let ready = Arc::new(greenhouse::sync::Barrier::new(conns + 1));
        let clients: Vec<_> = (0..conns)
            .map(|_| {
                let ready = ready.clone();
                greenhouse::thread::spawn(move || {
                    let s = TcpStream::connect(addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    ready.wait();
                    client_loop(s, trips)
                })
            })
            .collect();
        ready.wait();
        let t = Instant::now();
        let mut lat = Vec::with_capacity(conns * trips);
        for c in clients {
            lat.extend(c.join().unwrap());
        }
        let wall = t.elapsed();
        server.stop(Duration::from_secs(1));
        Sample { wall, lat }
    })
}

fn std_threads_run(conns: usize, trips: usize) -> Sample {
    use std::net::{TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    let acceptor = std::thread::spawn(move || {
        let mut servers = Vec::new();
        for _ in 0..conns {
            let (s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            servers.push(std::thread::spawn(move || echo_loop(s)));
        }
        for s in servers {
            s.join().unwrap();
        }
    });
    let ready = Arc::new(std::sync::Barrier::new(conns + 1));
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                ready.wait();
                client_loop(s, trips)
            })
        })
        .collect();
    ready.wait();
    let t = Instant::now();
    let mut lat = Vec::with_capacity(conns * trips);
    for c in clients {
        lat.extend(c.join().unwrap());
    }
    let wall = t.elapsed();
    acceptor.join().unwrap();
    Sample { wall, lat }
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_nanos(sorted[i] as u64)
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // cargo bench passes "--bench"; a filter argument is not supported.
    let conns = env("GH_NET_CONNS", 100);
    let trips = env("GH_NET_TRIPS", 10_000);
    let rounds = env("GH_NET_ROUNDS", 3).max(1);
    let variants: [Variant; 3] = [
        (
            "greenhouse, 1 worker",
            Box::new(move || greenhouse_run(1, conns, trips)),
        ),
        (
            "greenhouse, 2 workers",
            Box::new(move || greenhouse_run(2, conns, trips)),
        ),
        (
            "std::net, thread per connection",
            Box::new(move || std_threads_run(conns, trips)),
        ),
    ];
    let only = std::env::var("GH_NET_ONLY").unwrap_or_default();
    let variants: Vec<Variant> = variants
        .into_iter()
        .filter(|(name, _)| name.contains(only.as_str()))
        .collect();
    // Warm-up (page in stacks, fill the blocking pool, ...), not measured.
    for (_, run) in &variants {
        let _ = run();
    }
    let mut results: Vec<Vec<(f64, Duration, Duration, Duration)>> =
        vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        // Interleaved, so machine noise hits every variant alike.
        for (i, (name, run)) in variants.iter().enumerate() {
            let cpu0 = process_cpu();
            let Sample { wall, mut lat } = run();
            let cpu = (process_cpu() - cpu0) / lat.len() as u32;
            lat.sort_unstable();
            let rate = lat.len() as f64 / wall.as_secs_f64();
            let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
            eprintln!(
                "round {round}: {name}: {rate:.0} round trips/s, p50 {p50:?}, p99 {p99:?}, \
                 CPU {cpu:?} per round trip"
            );
            results[i].push((rate, p50, p99, cpu));
        }
    }
    println!();
    println!("TCP echo over loopback: {conns} connections x {trips} round trips of {MSG} bytes, median of {rounds} rounds");
    println!();
    println!("| variant | round trips/s | p50 latency | p99 latency | CPU per round trip |");
    println!("|---|---:|---:|---:|---:|");
    for ((name, _), r) in variants.iter().zip(&results) {
        let rate = median(r.iter().map(|x| x.0).collect());
        let p50 = median(r.iter().map(|x| x.1).collect());
        let p99 = median(r.iter().map(|x| x.2).collect());
        let cpu = median(r.iter().map(|x| x.3).collect());
        println!(
            "| {name} | {rate:.0} | {:.1} µs | {:.1} µs | {:.2} µs |",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6
        );
    }
}
