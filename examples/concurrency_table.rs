//! Run: `cargo run --release --example concurrency_table` (`-- --quick` for
//! a scaled-down run).
//!
//! The seeds' experiment (seed 002 "单线程VS多线程VS多进程", seed 000
//! "进程和线程"): four kinds of work, each done 10 times, one after another
//! and concurrently, timed. The seeds ran it in Python — one thread,
//! threads, processes; here the columns are one OS thread, ten OS threads,
//! ten green threads on one worker, and ten green threads on one worker per
//! core. The seeds' own figures are printed beside ours.
//!
//! - CPU: a loop of 1,500,000 wrapping-arithmetic steps (the seeds doubled
//!   Python big integers, which Rust's integers do not reproduce).
//! - Disk: write 5,000,000 lines to a file (each task its own file); green
//!   threads hand it to the blocking pool (`spawn_blocking`), as blocking
//!   file I/O should be.
//! - Network: an HTTP GET from a local server that waits 100 ms before
//!   answering (the seeds fetched baidu.com and tieba.com).
//! - Simulated I/O: `sleep(2 s)`.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

#[allow(dead_code)]
#[path = "common/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "common/http.rs"]
mod http;

/// The seeds' task-type benchmark, with green threads.
#[derive(Debug, Clone, Parser)]
#[command(name = "concurrency_table")]
pub struct Settings {
    /// Scale down: 0.2 s sleeps, 500,000 lines, 20 ms server delay.
    #[arg(long)]
    pub quick: bool,
    /// Tasks per cell.
    #[arg(long, default_value_t = 10)]
    pub tasks: usize,
}

/// The sizes of one run.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Tasks per cell.
    pub tasks: usize,
    /// CPU loop iterations.
    pub cpu_iters: u64,
    /// Lines per disk task.
    pub lines: u64,
    /// Server delay per GET.
    pub net_delay: Duration,
    /// The simulated I/O.
    pub sleep: Duration,
}

impl Scale {
    /// The seeds' sizes, or the `--quick` ones.
    pub fn new(s: &Settings) -> Scale {
        Scale {
            tasks: s.tasks.max(1),
            cpu_iters: 1_500_000,
            lines: if s.quick { 500_000 } else { 5_000_000 },
            net_delay: Duration::from_millis(if s.quick { 20 } else { 100 }),
            sleep: Duration::from_millis(if s.quick { 200 } else { 2000 }),
        }
    }
}

/// A kind of work (a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// CPU-bound.
    Cpu,
    /// Disk writes.
    Disk,
    /// HTTP GET.
    Network,
    /// sleep.
    Sleep,
}

/// How the tasks run (a column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// One after another.
    Sequential,
    /// One OS thread each.
    OsThreads,
    /// One green thread each, on a runtime of this many workers.
    Green(usize),
}

impl How {
    /// Column heading.
    pub fn label(self) -> String {
        match self {
            How::Sequential => "sequential".into(),
            How::OsThreads => "OS threads".into(),
            How::Green(1) => "green, 1 worker".into(),
            How::Green(n) => format!("green, {n} workers"),
        }
    }
}

/// Everything a task needs.
struct Ctx {
    scale: Scale,
    dir: PathBuf,
    url: String,
    green_agent: ureq::Agent,
    std_agent: ureq::Agent,
}

fn cpu(iters: u64) -> u64 {
    let (mut x, mut y) = (1u64, 1u64);
    for c in 0..iters {
        x = std::hint::black_box(x.wrapping_add(x) ^ c);
        y = std::hint::black_box(y.wrapping_add(y).wrapping_add(c));
    }
    x ^ y
}

fn disk(path: PathBuf, lines: u64) -> io::Result<()> {
    let mut f = BufWriter::new(std::fs::File::create(&path)?);
    for idx in 0..lines {
        writeln!(f, "{idx}")?;
    }
    f.flush()?;
    drop(f);
    std::fs::remove_file(path)
}

/// One task of kind `work`, number `i`, on a green thread or not.
fn task(ctx: &Ctx, work: Work, i: usize, green: bool) -> io::Result<()> {
    match work {
        Work::Cpu => {
            std::hint::black_box(cpu(ctx.scale.cpu_iters));
        }
        Work::Disk => {
            let (path, lines) = (ctx.dir.join(format!("task-{i}.log")), ctx.scale.lines);
            if green {
                greenhouse::thread::spawn_blocking(move || disk(path, lines))?
            } else {
                disk(path, lines)?
            }
        }
        Work::Network => {
            let agent = if green {
                &ctx.green_agent
            } else {
                &ctx.std_agent
            };
            let mut resp = agent.get(&ctx.url).call().map_err(io::Error::other)?;
            io::copy(&mut resp.body_mut().as_reader(), &mut io::sink())?;
        }
        Work::Sleep => {
            if green {
                greenhouse::thread::sleep(ctx.scale.sleep)
            } else {
                std::thread::sleep(ctx.scale.sleep)
            }
        }
    }
    Ok(())
}

/// Runs `tasks` tasks of `work` the way `how` says; returns the wall time.
fn cell(ctx: &Arc<Ctx>, work: Work, how: How) -> io::Result<Duration> {
    let n = ctx.scale.tasks;
    let start = Instant::now();
    match how {
        How::Sequential => {
            for i in 0..n {
                task(ctx, work, i, false)?;
            }
        }
        How::OsThreads => {
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let ctx = ctx.clone();
                    std::thread::spawn(move || task(&ctx, work, i, false))
                })
                .collect();
            for h in hs {
                h.join()
                    .map_err(|_| io::Error::other("a task panicked"))??;
            }
        }
        How::Green(workers) => {
            let rt = greenhouse::runtime::Runtime::builder()
                .workers(workers)
                .build()?;
            let ctx = ctx.clone();
            let start = Instant::now(); // the runtime's start-up is not the work's
            rt.run(move || -> io::Result<()> {
                let hs: Vec<_> = (0..n)
                    .map(|i| {
                        let ctx = ctx.clone();
                        greenhouse::thread::spawn(move || task(&ctx, work, i, true))
                    })
                    .collect();
                for h in hs {
                    h.join().map_err(|e| io::Error::other(e.to_string()))??;
                }
                Ok(())
            })?;
            return Ok(start.elapsed());
        }
    }
    Ok(start.elapsed())
}

/// The table: `rows[work][how]`.
pub struct Table {
    /// Columns.
    pub hows: Vec<How>,
    /// Rows.
    pub rows: Vec<(Work, Vec<Duration>)>,
}

/// Runs every cell.
///
/// # Errors
/// If a task fails (the server, the disk).
pub fn run_table(scale: &Scale) -> io::Result<Table> {
    let server = fixture::FixtureServer::start(fixture::FixtureConfig {
        files: 1,
        delay: scale.net_delay,
        min_size: 1024,
        max_size: 1024,
        ..fixture::FixtureConfig::default()
    })?;
    let dir = std::env::temp_dir().join(format!("greenhouse-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ctx = Arc::new(Ctx {
        scale: scale.clone(),
        dir: dir.clone(),
        url: server.url("/files/file-000.bin"),
        green_agent: http::green_agent(Some(Duration::from_secs(30)), None),
        std_agent: http::std_agent(Some(Duration::from_secs(30)), None),
    });
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hows = vec![
        How::Sequential,
        How::OsThreads,
        How::Green(1),
        How::Green(cores),
    ];
    let mut rows = Vec::new();
    for work in [Work::Cpu, Work::Disk, Work::Network, Work::Sleep] {
        let mut cells = Vec::new();
        for &how in &hows {
            cells.push(cell(&ctx, work, how)?);
        }
        rows.push((work, cells));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Table { hows, rows })
}

/// The seeds' Python figures (S2's raw values; S0's table shows them to two
/// decimals): one thread, threads, processes.
const SEEDS: [(&str, [f64; 3]); 4] = [
    ("CPU 密集型", [83.43, 93.83, 9.08]),
    ("磁盘 IO 密集型", [15.64, 13.27, 1.29]),
    ("网络 IO 密集型", [1.14, 0.18, 0.13]),
    ("模拟 IO 密集型", [20.02, 2.03, 2.01]),
];

/// Prints the table with the seeds' figures beside it.
pub fn print_table(t: &Table, scale: &Scale, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{} tasks per cell; seconds. CPU {} steps, disk {} lines, GET with {} ms server delay, sleep {:.1} s",
        scale.tasks,
        scale.cpu_iters,
        scale.lines,
        scale.net_delay.as_millis(),
        scale.sleep.as_secs_f64()
    )?;
    write!(out, "{:<16}", "")?;
    for h in &t.hows {
        write!(out, " {:>17}", h.label())?;
    }
    writeln!(out, " | seeds (Python): 单线程  多线程  多进程")?;
    for ((work, cells), (name, seed)) in t.rows.iter().zip(SEEDS) {
        let label = match work {
            Work::Cpu => "CPU",
            Work::Disk => "disk",
            Work::Network => "network",
            Work::Sleep => "simulated I/O",
        };
        write!(out, "{label:<16}")?;
        for c in cells {
            write!(out, " {:>17.3}", c.as_secs_f64())?;
        }
        writeln!(
            out,
            " | {name}: {:.2} {:.2} {:.2}",
            seed[0], seed[1], seed[2]
        )?;
    }
    Ok(())
}

fn main() {
    let settings = Settings::parse();
    let scale = Scale::new(&settings);
    match run_table(&scale) {
        Ok(t) => print_table(&t, &scale, &mut io::stdout()).unwrap(),
        Err(e) => {
            eprintln!("concurrency_table: {e}");
            std::process::exit(1);
        }
    }
}
