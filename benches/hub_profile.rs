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
//! ```
//!
//! Instructions per operation = (total with N − total with 0) / N.

use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::thread;

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
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
    let rt = Runtime::builder()
        .workers(workers)
        .monitor_threshold(None)
        .build()
        .unwrap();
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
        other => {
            eprintln!("unknown mode {other:?}: yield | yield2 | spawn | sleep");
            std::process::exit(2);
        }
    }
}
