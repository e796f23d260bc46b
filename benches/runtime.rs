//! The hub's costs, side by side with OS threads in one run:
//! spawn + join of an empty green thread vs `std::thread::spawn` + join,
//! `yield_now` on one worker, and 100,000 green threads each sleeping 100 ms
//! (wall time to all joined, and resident memory per sleeping green thread).
//!
//! Run: `cargo bench --bench runtime`

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use greenhouse::runtime::Runtime;
use greenhouse::thread;

#[path = "support/sleepers.rs"]
mod sleepers;

fn one_worker() -> Runtime {
    Runtime::builder()
        .workers(1)
        .monitor_threshold(None)
        .build()
        .unwrap()
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join_empty");
    let rt = one_worker();
    g.bench_function("greenhouse_1_worker", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    thread::spawn(|| ()).join().unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("std_thread", |b| {
        b.iter(|| std::thread::spawn(|| ()).join().unwrap())
    });
    g.finish();
}

fn yield_now(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_now");
    let rt = one_worker();
    g.bench_function("greenhouse_1_worker", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    thread::yield_now();
                }
                start.elapsed()
            })
        })
    });
    // Two green threads yielding to each other: every yield goes through
    // the run queue (a lone one is resumed at once, see worker.rs).
    g.bench_function("greenhouse_1_worker_two_green_threads", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let other = thread::spawn(move || {
                    for _ in 0..iters {
                        thread::yield_now();
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    thread::yield_now();
                }
                other.join().unwrap();
                // Both yielded `iters` times: per yield.
                start.elapsed() / 2
            })
        })
    });
    g.bench_function("std_thread_yield_now", |b| b.iter(std::thread::yield_now));
    g.finish();
}

const SLEEPERS: usize = 100_000;

fn raise_map_limit() {
    let path = "/proc/sys/vm/max_map_count";
    let cur: usize = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530);
    if cur < 1_048_576 && std::fs::write(path, "1048576").is_err() {
        eprintln!("note: vm.max_map_count is {cur} and could not be raised; the 100k-sleeper bench may fail");
    }
}

fn sleepers(c: &mut Criterion) {
    raise_map_limit();
    let mut g = c.benchmark_group("sleep_100ms_x100k");
    g.sample_size(10);
    let rt = Runtime::builder().monitor_threshold(None).build().unwrap();
    g.bench_function("greenhouse_all_workers", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += sleepers::all_sleep_100ms(SLEEPERS);
                }
                total
            })
        })
    });
    g.finish();
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resident memory per sleeping green thread, measured cold in a fresh
/// runtime before any other 100k burst: RSS with 100,000 green threads parked
/// in `sleep` minus RSS before spawning them, divided by 100,000. Counts the
/// stack pages each touched, its task record and join handle.
fn rss_per_green_thread() {
    raise_map_limit();
    let rt = Runtime::builder().monitor_threshold(None).build().unwrap();
    let per = rt.run(|| {
        let before = vm_rss_kib();
        let hs = sleepers::spawn_parked_sleepers(SLEEPERS);
        let during = vm_rss_kib();
        sleepers::kill_all(hs);
        during.saturating_sub(before) as f64 * 1024.0 / SLEEPERS as f64
    });
    println!("rss_per_sleeping_green_thread: {per:.0} bytes ({SLEEPERS} green threads parked in sleep, cold)");
}

criterion_group!(benches, spawn_join, yield_now, sleepers);

fn main() {
    rss_per_green_thread();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
