//! A plain (non-criterion) driver for profiling the hub's hot paths with
//! `valgrind --tool=callgrind` or `perf record`, whose instruction counts are
//! repeatable on a shared, noisy machine where wall-clock times are not.
//!
//! Build it with `cargo bench --bench hub_profile --no-run`, then run the
//! binary cargo prints:
//!
//! ```text
//! valgrind --tool=callgrind <binary> yield 200000      # per-yield cost
//! valgrind --tool=callgrind <binary> yield 0           # the fixed cost to subtract
//! valgrind --tool=callgrind <binary> yield2 200000     # two green threads: 2 yields per n
//! valgrind --tool=callgrind <binary> spawn 100000      # per spawn + join
//! <binary> sleep 5 2 100000                            # 5 rounds, 2 workers, 100k sleepers
//! <binary> sleep 5 2 100000 16                         # the same with 16 KiB stacks
//! <binary> sleepbare 5 2 100000                        # the criterion bench's loop, uninstrumented
//! <binary> timeline 5 2 100000                         # when each sleeper began and woke, per OS thread
//! ```
//!
//! Instructions per operation = (total with N − total with 0) / N.

use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::thread;

#[path = "support/sleepers.rs"]
mod sleepers;

/// This process's resource usage so far.
fn rusage() -> libc::rusage {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only
    // writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru
}

fn cpu_time() -> Duration {
    let ru = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Minor and major page faults of the process so far.
fn faults() -> (i64, i64) {
    let ru = rusage();
    (ru.ru_minflt, ru.ru_majflt)
}

/// What the criterion binary does before its benches: 100,000 green threads
/// parked in a 2 s sleep on a runtime of their own, then killed.
fn park_and_kill(count: usize) {
    let rt = Runtime::builder().monitor_threshold(None).build().unwrap();
    rt.run(move || sleepers::kill_all(sleepers::spawn_parked_sleepers(count)));
}

/// VmRSS, VmPTE and VmSize from /proc/self/status.
fn mem_status() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmPTE") || l.starts_with("VmSize"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    if std::env::var_os("HUB_PREKILL").is_some() {
        let f = faults();
        let t = Instant::now();
        park_and_kill(100_000);
        println!(
            "prekill: 100000 parked and killed in {:.1} ms, {} minor faults",
            t.elapsed().as_secs_f64() * 1e3,
            faults().0 - f.0
        );
    }
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mode = args.first().map(String::as_str).unwrap_or("yield");
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let workers: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    // Optional fifth argument: the green threads' stack size in KiB.
    let mut builder = Runtime::builder().workers(workers).monitor_threshold(None);
    if let Some(kib) = args.get(4).and_then(|s| s.parse::<usize>().ok()) {
        builder = builder.stack_size(kib * 1024);
    }
    let rt = builder.build().unwrap();
    match mode {
        "yield" => {
            let t = rt.run(move || {
                for _ in 0..1000 {
                    thread::yield_now();
                }
                let start = Instant::now();
                for _ in 0..n {
                    thread::yield_now();
                }
                start.elapsed()
            });
            println!("yield_now: {:.1} ns", t.as_nanos() as f64 / n.max(1) as f64);
        }
        "yield2" => {
            // Two green threads yielding to each other (through the queue).
            let t = rt.run(move || {
                let other = thread::spawn(move || {
                    for _ in 0..n + 1000 {
                        thread::yield_now();
                    }
                });
                for _ in 0..1000 {
                    thread::yield_now();
                }
                let start = Instant::now();
                for _ in 0..n {
                    thread::yield_now();
                }
                other.join().unwrap();
                start.elapsed()
            });
            println!(
                "yield_now, two green threads: {:.1} ns",
                t.as_nanos() as f64 / (2 * n.max(1)) as f64
            );
        }
        "spawn" => {
            let t = rt.run(move || {
                for _ in 0..1000 {
                    thread::spawn(|| ()).join().unwrap();
                }
                let start = Instant::now();
                for _ in 0..n {
                    thread::spawn(|| ()).join().unwrap();
                }
                start.elapsed()
            });
            println!(
                "spawn + join: {:.1} ns",
                t.as_nanos() as f64 / n.max(1) as f64
            );
        }
        "sleep" => {
            use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
            use std::sync::Arc;
            let count: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            for round in 0..n {
                let cpu = cpu_time();
                // Nanoseconds since the round started: when the last green
                // thread began its sleep, and when the last one woke.
                let last_slept = Arc::new(AtomicU64::new(0));
                let last_woke = Arc::new(AtomicU64::new(0));
                let (ls, lw) = (last_slept.clone(), last_woke.clone());
                let (spawned, joined) = rt.run(move || {
                    let start = Instant::now();
                    let hs: Vec<_> = (0..count)
                        .map(|_| {
                            let (ls, lw) = (ls.clone(), lw.clone());
                            thread::spawn(move || {
                                ls.fetch_max(start.elapsed().as_nanos() as u64, Relaxed);
                                thread::sleep(Duration::from_millis(100));
                                lw.fetch_max(start.elapsed().as_nanos() as u64, Relaxed);
                            })
                        })
                        .collect();
                    let spawned = start.elapsed();
                    for h in hs {
                        h.join().unwrap();
                    }
                    (spawned, start.elapsed())
                });
                let ms = |ns: u64| ns as f64 / 1e6;
                println!(
                    "round {round}: {count} sleepers spawned by {:.1} ms, last began sleeping at \
                     {:.1} ms, last woke at {:.1} ms, all joined at {:.1} ms; CPU {:.1} ms",
                    spawned.as_secs_f64() * 1e3,
                    ms(last_slept.load(Relaxed)),
                    ms(last_woke.load(Relaxed)),
                    joined.as_secs_f64() * 1e3,
                    (cpu_time() - cpu).as_secs_f64() * 1e3
                );
            }
        }
        "sleepbare" => {
            // The criterion bench's loop exactly (no instrumentation in the
            // green threads): wall time to all joined, and CPU, per round.
            let count: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            for round in 0..n {
                let cpu = cpu_time();
                let flt = faults();
                let joined = rt.run(move || sleepers::all_sleep_100ms(count));
                let f = faults();
                println!(
                    "round {round}: {count} sleepers all joined at {:.1} ms; CPU {:.1} ms; \
                     faults {} minor {} major; {}",
                    joined.as_secs_f64() * 1e3,
                    (cpu_time() - cpu).as_secs_f64() * 1e3,
                    f.0 - flt.0,
                    f.1 - flt.1,
                    mem_status()
                );
            }
        }
        "timeline" => {
            // As `sleep`, but records when each green thread began its sleep
            // and woke, and on which OS thread, then prints per-5-ms counts.
            use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
            use std::sync::Arc;
            static NEXT_OS: AtomicUsize = AtomicUsize::new(0);
            thread_local! {
                static OS: usize = NEXT_OS.fetch_add(1, Relaxed);
            }
            let count: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            for round in 0..n {
                let began: Arc<Vec<AtomicU64>> =
                    Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
                let woke: Arc<Vec<AtomicU64>> =
                    Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
                // Each sleeper's stack address (of a local), by spawn index.
                let at: Arc<Vec<AtomicU64>> =
                    Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
                let (b2, w2, a2) = (began.clone(), woke.clone(), at.clone());
                let (spawned, joined) = rt.run(move || {
                    let start = Instant::now();
                    let hs: Vec<_> = (0..count)
                        .map(|i| {
                            let (b, w, a) = (b2.clone(), w2.clone(), a2.clone());
                            thread::spawn(move || {
                                let probe = 0u8;
                                a[i].store(
                                    std::hint::black_box(&probe) as *const u8 as u64,
                                    Relaxed,
                                );
                                let os = OS.with(|o| *o) as u64;
                                b[i].store(start.elapsed().as_nanos() as u64 | os << 60, Relaxed);
                                thread::sleep(Duration::from_millis(100));
                                let os = OS.with(|o| *o) as u64;
                                w[i].store(start.elapsed().as_nanos() as u64 | os << 60, Relaxed);
                            })
                        })
                        .collect();
                    let spawned = start.elapsed();
                    for h in hs {
                        h.join().unwrap();
                    }
                    (spawned, start.elapsed())
                });
                println!(
                    "round {round}: spawned by {:.1} ms, joined at {:.1} ms",
                    spawned.as_secs_f64() * 1e3,
                    joined.as_secs_f64() * 1e3
                );
                // Address locality of the stacks in the order each OS thread
                // started them: the share of starts whose stack is within
                // 2 MiB (one page-table page) of the previous start's.
                {
                    let mut per: std::collections::BTreeMap<u64, Vec<(u64, u64)>> =
                        Default::default();
                    for (b, a) in began.iter().zip(at.iter()) {
                        let b = b.load(Relaxed);
                        per.entry(b >> 60)
                            .or_default()
                            .push((b & ((1 << 60) - 1), a.load(Relaxed)));
                    }
                    let line: Vec<String> = per
                        .iter_mut()
                        .map(|(os, v)| {
                            v.sort_unstable();
                            let near = v
                                .windows(2)
                                .filter(|w| w[0].1.abs_diff(w[1].1) < 2 << 20)
                                .count();
                            format!("t{os}: {:.1}%", 100.0 * near as f64 / v.len().max(2) as f64)
                        })
                        .collect();
                    println!(
                        "  stacks within 2 MiB of the previous start's: {}",
                        line.join(", ")
                    );
                }
                for (what, v) in [("began", &began), ("woke", &woke)] {
                    // Per OS thread: how many, first and last (ms).
                    let mut per: std::collections::BTreeMap<u64, (usize, u64, u64)> =
                        Default::default();
                    for x in v.iter() {
                        let x = x.load(Relaxed);
                        let (t, os) = (x & ((1 << 60) - 1), x >> 60);
                        let e = per.entry(os).or_insert((0, u64::MAX, 0));
                        e.0 += 1;
                        e.1 = e.1.min(t);
                        e.2 = e.2.max(t);
                    }
                    let line: Vec<String> = per
                        .iter()
                        .map(|(os, (c, a, b))| {
                            format!(
                                "t{os}: {c} from {:.1} to {:.1} ms",
                                *a as f64 / 1e6,
                                *b as f64 / 1e6
                            )
                        })
                        .collect();
                    println!("  {what}: {}", line.join(", "));
                }
            }
        }
        other => {
            eprintln!(
                "unknown mode {other:?}: yield | yield2 | spawn | sleep | sleepbare | timeline"
            );
            std::process::exit(2);
        }
    }
}
