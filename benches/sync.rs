//! greenhouse's sync and channel costs, side by side with std in one run:
//!
//! - `channel_ping_pong`: a round trip (send, then receive the reply)
//!   between two green threads on one worker, over bounded(1), rendezvous
//!   and unbounded channels; against two OS threads over `std::sync::mpsc`.
//!   Target: at most 150 ns per round trip. `greenhouse_yield_pair_1_worker_floor`
//!   is the same context switches with no channel (the floor).
//! - `mutex_uncontended`: lock + unlock of an uncontended `Mutex`, green
//!   thread and OS thread; against `std::sync::Mutex`. Target: at most 20 ns.
//!
//! Run: `cargo bench --bench sync`
//!
//! Instruction counts (repeatable on a shared, noisy machine): build with
//! `cargo bench --bench sync --no-run`, then
//!
//! ```text
//! SYNC_PROFILE=<case> SYNC_ITERS=N valgrind --tool=callgrind <binary>
//! ```
//!
//! for N and 2N; instructions per operation = (total(2N) - total(N)) / N.
//! Cases: `bounded1`, `rendezvous`, `unbounded`, `yield_pair` (one
//! worker), `mutex` (green thread), `std_mutex` (`std::sync::Mutex` on
//! an OS thread). `SYNC_WORKERS=2` runs the channel
//! cases on two workers (where the two green threads may share one), and
//! `cross` runs unbounded ping-pong with the two green threads on different
//! workers (needs `SYNC_WORKERS=2`). Each prints the time per operation.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, Criterion};
use greenhouse::channel;
use greenhouse::runtime::Runtime;
use greenhouse::sync::Mutex;
use greenhouse::thread;

fn one_worker() -> Runtime {
    Runtime::builder()
        .workers(1)
        .monitor_threshold(None)
        .build()
        .unwrap()
}

type Pair = (channel::Sender<u64>, channel::Receiver<u64>);

/// `iters` round trips between the calling green thread and an echo green
/// thread on the same worker.
fn green_ping_pong(rt: &Runtime, iters: u64, make: fn() -> (Pair, Pair)) -> std::time::Duration {
    rt.run(move || {
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = make();
        let echo = thread::spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v).unwrap();
            }
        });
        // Warm the echo thread up: it is parked in recv when timing starts.
        ping_tx.send(0).unwrap();
        pong_rx.recv().unwrap();
        let start = Instant::now();
        for i in 0..iters {
            ping_tx.send(i).unwrap();
            black_box(pong_rx.recv().unwrap());
        }
        let took = start.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
        took
    })
}

/// Two green threads yielding to each other `iters` times: the same four
/// context switches as a ping-pong round trip, without a channel.
fn yield_pair(rt: &Runtime, iters: u64) -> std::time::Duration {
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
        let took = start.elapsed();
        other.join().unwrap();
        took
    })
}

fn channel_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_ping_pong");
    let rt = one_worker();
    g.bench_function("greenhouse_bounded1_1_worker", |b| {
        b.iter_custom(|iters| {
            green_ping_pong(&rt, iters, || (channel::bounded(1), channel::bounded(1)))
        })
    });
    g.bench_function("greenhouse_rendezvous_1_worker", |b| {
        b.iter_custom(|iters| {
            green_ping_pong(&rt, iters, || {
                (channel::rendezvous(), channel::rendezvous())
            })
        })
    });
    g.bench_function("greenhouse_unbounded_1_worker", |b| {
        b.iter_custom(|iters| {
            green_ping_pong(&rt, iters, || (channel::unbounded(), channel::unbounded()))
        })
    });
    // The floor: the same four context switches per round trip with no
    // channel at all (two green threads yielding to each other).
    g.bench_function("greenhouse_yield_pair_1_worker_floor", |b| {
        b.iter_custom(|iters| yield_pair(&rt, iters))
    });
    g.bench_function("std_mpsc_os_threads", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = std::sync::mpsc::channel::<u64>();
            let (pong_tx, pong_rx) = std::sync::mpsc::channel::<u64>();
            let echo = std::thread::spawn(move || {
                for v in ping_rx.iter() {
                    pong_tx.send(v).unwrap();
                }
            });
            ping_tx.send(0).unwrap();
            pong_rx.recv().unwrap();
            let start = Instant::now();
            for i in 0..iters {
                ping_tx.send(i).unwrap();
                black_box(pong_rx.recv().unwrap());
            }
            let took = start.elapsed();
            drop(ping_tx);
            echo.join().unwrap();
            took
        })
    });
    g.finish();
}

fn mutex_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_uncontended");
    let rt = one_worker();
    g.bench_function("greenhouse_green_thread", |b| {
        b.iter_custom(|iters| {
            rt.run(move || {
                let m = Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *black_box(&m).lock().unwrap() += 1;
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("greenhouse_os_thread", |b| {
        let m = Mutex::new(0u64);
        b.iter(|| *black_box(&m).lock().unwrap() += 1)
    });
    g.bench_function("std_mutex_os_thread", |b| {
        let m = std::sync::Mutex::new(0u64);
        b.iter(|| *black_box(&m).lock().unwrap() += 1)
    });
    g.finish();
}

criterion_group!(benches, channel_ping_pong, mutex_uncontended);

/// `iters` round trips over unbounded channels between the calling green
/// thread and an echo green thread on another worker: the echo is spawned
/// from an OS thread (so it goes to the runtime's injector and wakes an
/// idle worker) while this one keeps its own worker busy until the echo
/// has started elsewhere. Started green threads never move, so they stay
/// apart.
fn cross_worker_ping_pong(rt: &Runtime, iters: u64) -> std::time::Duration {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    assert!(rt.workers() >= 2, "the cross case needs SYNC_WORKERS=2");
    let handle = rt.handle();
    rt.run(move || {
        let (ping_tx, ping_rx) = channel::unbounded::<u64>();
        let (pong_tx, pong_rx) = channel::unbounded::<u64>();
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let me = std::thread::current().id();
        let echo = std::thread::spawn(move || {
            handle.spawn(move || {
                assert_ne!(
                    std::thread::current().id(),
                    me,
                    "echo on the pinger's worker"
                );
                flag.store(true, Ordering::SeqCst);
                for v in ping_rx.iter() {
                    pong_tx.send(v).unwrap();
                }
            })
        })
        .join()
        .unwrap();
        while !started.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        ping_tx.send(0).unwrap();
        pong_rx.recv().unwrap();
        let start = Instant::now();
        for i in 0..iters {
            ping_tx.send(i).unwrap();
            black_box(pong_rx.recv().unwrap());
        }
        let took = start.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
        took
    })
}

/// The plain driver behind `SYNC_PROFILE` (see the module docs).
fn profile(case: &str) {
    let iters: u64 = std::env::var("SYNC_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let workers: usize = std::env::var("SYNC_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rt = Runtime::builder()
        .workers(workers)
        .monitor_threshold(None)
        .build()
        .unwrap();
    let took = match case {
        "bounded1" => green_ping_pong(&rt, iters, || (channel::bounded(1), channel::bounded(1))),
        "rendezvous" => green_ping_pong(&rt, iters, || {
            (channel::rendezvous(), channel::rendezvous())
        }),
        "unbounded" => green_ping_pong(&rt, iters, || (channel::unbounded(), channel::unbounded())),
        "cross" => cross_worker_ping_pong(&rt, iters),
        "yield_pair" => yield_pair(&rt, iters),
        "mutex" => rt.run(move || {
            let m = Mutex::new(0u64);
            let start = Instant::now();
            for _ in 0..iters {
                *black_box(&m).lock().unwrap() += 1;
            }
            start.elapsed()
        }),
        "std_mutex" => {
            let m = std::sync::Mutex::new(0u64);
            let start = Instant::now();
            for _ in 0..iters {
                *black_box(&m).lock().unwrap() += 1;
            }
            start.elapsed()
        }
        other => panic!("unknown SYNC_PROFILE case {other:?}"),
    };
    println!(
        "{case}, {workers} worker(s): {:.1} ns per operation",
        took.as_nanos() as f64 / iters.max(1) as f64
    );
}

fn main() {
    if let Ok(case) = std::env::var("SYNC_PROFILE") {
        profile(&case);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
