//! The examples' std-only code paths under `monkey::patch_all`, side by
//! side with the same programs on greenhouse's own types (issue 5: "same
//! throughput with `patch_all` as with greenhouse's own types, within 10%").
//! One criterion group per example:
//!
//! - `downloader`: every file of the demo's fixture (200 files, 1 KiB to
//!   1 MiB, 27 MB; no server delay, so the time is the client's work, not
//!   the wait), one green thread per file, each body hashed and written to
//!   /dev/shm (not the shared disk). `green` is `--mode green` (ureq over
//!   `greenhouse::net::TcpStream`), `patched` is `--mode patched` (ureq's
//!   own `std::net` transport under `patch_all`). The fixture server runs
//!   in this process, the same for both.
//! - `chat`: chat-load (400 clients in rooms of 10, 25 messages each:
//!   10,000 sent, 100,000 delivered, every room's order checked) against the chat
//!   server in `--mode green` and in `--mode patched` (std's sockets under
//!   `patch_all`, greenhouse's threads and locks). The time is chat-load's
//!   messages phase; connecting is left out.
//!
//! Each measured program runs in a child process (this binary re-run with
//! `GH_EXAMPLES_CHILD` set): `patch_all` is process-wide and cannot be
//! undone, and the green side must run unpatched. Both use the default
//! number of workers (one per core).
//!
//! Run: `cargo bench --bench examples`; criterion's medians are in
//! `target/criterion/<group>/<mode>/new/estimates.json` (`median`). Or,
//! alternating the modes round by round and printing medians and ratios
//! (steadier on a shared machine): `GH_EXAMPLES_ROUNDS=9 cargo bench
//! --bench examples`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};

#[allow(dead_code)]
#[path = "../examples/downloader/main.rs"]
mod downloader;

#[allow(dead_code)]
#[path = "../examples/chat-server/main.rs"]
mod chat_server;

// chat-load.rs includes common/procstat.rs for itself, as the downloader
// does: two copies of a small module, which is how the examples are built.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../examples/chat-load.rs"]
mod chat_load;

use downloader::common::fixture::{file_specs, FixtureConfig, FixtureServer};
use downloader::download::{download_all, Options, RunMode};

const MODES: [&str; 2] = ["green", "patched"];

/// The downloader's workload: the demo's files, no delay.
fn fixture() -> FixtureConfig {
    FixtureConfig {
        delay: Duration::ZERO,
        ..FixtureConfig::default()
    }
}

/// chat-load's workload (the server address filled in per mode).
fn chat_load_config(addr: SocketAddr, server_pid: u32) -> chat_load::LoadConfig {
    chat_load::LoadConfig {
        addr,
        clients: 400,
        messages: 25,
        room_size: 10,
        server_pid: Some(server_pid),
        connect_concurrency: 64,
        timeout: 120,
    }
}

/// This binary, re-run as a child doing one job.
fn child(job: &str, mode: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("own path"));
    c.env("GH_EXAMPLES_CHILD", job)
        .env("GH_EXAMPLES_MODE", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    c
}

fn downloader(c: &mut Criterion) {
    let server = FixtureServer::start(fixture()).expect("fixture server");
    let bytes: u64 = file_specs(&fixture()).iter().map(|f| f.size).sum();
    let mut g = c.benchmark_group("downloader");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Bytes(bytes));
    for mode in MODES {
        g.bench_function(mode, |b| {
            b.iter_custom(|iters| downloads(mode, server.addr(), iters).0)
        });
    }
    g.finish();
}

fn chat(c: &mut Criterion) {
    let cfg = chat_load_config("127.0.0.1:0".parse().unwrap(), 0);
    let delivered = (cfg.clients * cfg.messages * cfg.room_size) as u64;
    let mut g = c.benchmark_group("chat");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements(delivered));
    for mode in MODES {
        let mut server = ChatServer::start(mode);
        let cfg = chat_load_config(server.addr, server.child.id());
        g.bench_function(mode, |b| b.iter_custom(|iters| chat_loads(&cfg, iters)));
        server.stop();
    }
    g.finish();
}

/// The wall and CPU time `iters` downloads of every file take in a `mode`
/// child.
fn downloads(mode: &str, addr: SocketAddr, iters: u64) -> (Duration, Duration) {
    let out = child("download", mode)
        .env("GH_EXAMPLES_ADDR", addr.to_string())
        .env("GH_EXAMPLES_ITERS", iters.to_string())
        .output()
        .expect("run the download child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "download child: {text}");
    let ns: Vec<u64> = text
        .split_whitespace()
        .map(|v| v.parse().expect("child prints nanoseconds"))
        .collect();
    (Duration::from_nanos(ns[0]), Duration::from_nanos(ns[1]))
}

/// A process's CPU time (user + system) so far, from /proc (10 ms ticks).
fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("(comm)") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// This process's CPU time (user + system), from getrusage.
fn own_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        let mut ru = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The messages phases of `iters` chat-load runs, each checked.
fn chat_loads(cfg: &chat_load::LoadConfig, iters: u64) -> Duration {
    let delivered = (cfg.clients * cfg.messages * cfg.room_size) as u64;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let c = cfg.clone();
        let r = greenhouse::run(move || chat_load::run_load(&c)).expect("chat-load");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.delivered, delivered);
        total += r.messages;
    }
    total
}

/// `GH_EXAMPLES_ROUNDS=N <bench binary>`: both modes of both examples,
/// alternating (the order flipped every round, so neither always runs
/// first), `N` rounds of `PER_ROUND` runs each; prints each mode's median
/// time per run and the throughput ratio. On a shared machine whose load
/// drifts, alternation keeps the drift out of the ratio better than
/// criterion's one-mode-then-the-other.
fn alternate(rounds: usize) {
    const PER_ROUND: u64 = 3;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let order = |round: usize| {
        if round % 2 == 0 {
            [0, 1]
        } else {
            [1, 0]
        }
    };
    let mut rows = Vec::new();

    let server = FixtureServer::start(fixture()).expect("fixture server");
    let mut times: [Vec<Duration>; 2] = Default::default();
    let mut cpu: [Vec<Duration>; 2] = Default::default();
    for round in 0..rounds {
        for i in order(round) {
            let (wall, c) = downloads(MODES[i], server.addr(), PER_ROUND);
            times[i].push(wall / PER_ROUND as u32);
            cpu[i].push(c / PER_ROUND as u32);
        }
    }
    rows.push(("downloader", times, cpu));
    drop(server);

    let mut servers = MODES.map(ChatServer::start);
    let cfgs = [0, 1].map(|i| chat_load_config(servers[i].addr, servers[i].child.id()));
    let mut times: [Vec<Duration>; 2] = Default::default();
    let mut cpu: [Vec<Duration>; 2] = Default::default();
    for i in [0, 1] {
        chat_loads(&cfgs[i], 1); // warm-up
    }
    for round in 0..rounds {
        for i in order(round) {
            let pid = servers[i].child.id();
            let before = proc_cpu(pid);
            times[i].push(chat_loads(&cfgs[i], PER_ROUND) / PER_ROUND as u32);
            cpu[i].push((proc_cpu(pid) - before) / PER_ROUND as u32);
        }
    }
    rows.push(("chat", times, cpu));
    for s in &mut servers {
        s.stop();
    }

    println!(
        "{rounds} rounds x {PER_ROUND} runs per mode, alternating; median per run (min-max of the rounds)"
    );
    println!("wall: the downloads / chat-load's messages phase; CPU: the downloading process / the chat server");
    println!(
        "{:<16} {:>26} {:>26} {:>16}",
        "example", "green (own types)", "patched (std + patch_all)", "green / patched"
    );
    let span = |v: &[Duration]| format!("({:.1}-{:.1})", ms(v[0]), ms(v[v.len() - 1]));
    for (name, mut wall, mut cpu) in rows {
        for (what, t) in [("wall", &mut wall), ("CPU", &mut cpu)] {
            let (g, p) = (median(&mut t[0]), median(&mut t[1]));
            println!(
                "{:<16} {:>10.1} ms {:>13} {:>10.1} ms {:>13} {:>16.3}",
                format!("{name} {what}"),
                ms(g),
                span(&t[0]),
                ms(p),
                span(&t[1]),
                g.as_secs_f64() / p.as_secs_f64()
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A chat server child, killed when done.
struct ChatServer {
    child: Child,
    addr: SocketAddr,
}

impl ChatServer {
    fn start(mode: &str) -> ChatServer {
        let mut child = child("chat-server", mode)
            .spawn()
            .expect("start the chat server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the server's address");
        let addr = line.trim().parse().expect("the child prints its address");
        ChatServer { child, addr }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChatServer {
    /// A failed check panics; the server child must not outlive it.
    fn drop(&mut self) {
        self.stop();
    }
}

criterion_group!(benches, downloader, chat);

fn main() {
    match std::env::var("GH_EXAMPLES_CHILD").as_deref() {
        Ok("download") => download_child(),
        Ok("chat-server") => chat_server_child(),
        _ if std::env::var_os("GH_EXAMPLES_ROUNDS").is_some() => {
            let rounds = std::env::var("GH_EXAMPLES_ROUNDS").unwrap();
            alternate(
                rounds
                    .parse()
                    .expect("GH_EXAMPLES_ROUNDS: a number of rounds"),
            );
        }
        _ => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

fn mode_from_env() -> RunMode {
    match std::env::var("GH_EXAMPLES_MODE").as_deref() {
        Ok("patched") => RunMode::Patched,
        _ => RunMode::Green,
    }
}

/// Downloads every file `GH_EXAMPLES_ITERS` times (after one untimed
/// round); prints the total wall and CPU time of the timed downloads in
/// nanoseconds (checking every file's checksum, and removing the files,
/// outside them).
fn download_child() {
    let addr: SocketAddr = std::env::var("GH_EXAMPLES_ADDR").unwrap().parse().unwrap();
    let iters: u64 = std::env::var("GH_EXAMPLES_ITERS").unwrap().parse().unwrap();
    let mode = mode_from_env();
    let specs = file_specs(&fixture());
    let urls: Vec<String> = specs
        .iter()
        .map(|f| format!("http://{addr}/files/{}", f.name))
        .collect();
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("greenhouse-bench-dl-{}", std::process::id()));
    let opts = Options {
        out_dir: dir.clone(),
        concurrency: None,
        timeout: Some(Duration::from_secs(60)),
        mode,
        report_failures: true,
        tls_roots: None,
    };
    // One untimed round first: the process's first run pays for growing
    // the runtime's stack and record pools, and for page-faulting the heap.
    let mut total = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    for round in 0..=iters {
        let _ = std::fs::remove_dir_all(&dir);
        let (start, cpu_start) = (Instant::now(), own_cpu());
        let outcomes = download_all(&urls, &opts, &indicatif::ProgressBar::hidden()).unwrap();
        if round > 0 {
            total += start.elapsed();
            cpu += own_cpu() - cpu_start;
        }
        for (o, spec) in outcomes.iter().zip(&specs) {
            let saved = o
                .result
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", o.url));
            assert_eq!(saved.sha256, spec.sha256, "{}", o.url);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{} {}", total.as_nanos(), cpu.as_nanos());
}

/// Serves chat until killed; prints its address first.
fn chat_server_child() {
    let cfg = chat_server::Config::default();
    let patched = matches!(mode_from_env(), RunMode::Patched);
    let r = if patched {
        greenhouse::monkey::patch_all().and_then(|()| {
            greenhouse::run(move || {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                println!("{}", l.local_addr()?);
                chat_server::patched::Server::new(cfg).serve(l)
            })
        })
    } else {
        greenhouse::run(move || {
            let l = greenhouse::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?);
            chat_server::green::Server::new(cfg).serve(l)
        })
    };
    r.expect("chat server");
}
