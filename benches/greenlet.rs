//! Greenlet and generator costs, each side by side with its baseline in one
//! criterion group:
//!
//! - `switch_round_trip`: main → child → main with a `u64` through
//!   `Greenlet::switch`, vs a raw corosensei resume + suspend, vs two OS
//!   threads ping-ponging over `std::sync::mpsc`.
//! - `generator_next`: `Generator::next` vs a raw corosensei resume + suspend.
//! - `greenlet_create_run_drop`: create a greenlet, run it to the end, drop
//!   it, with the stack pool on and off (`stack::set_pool_limit(0)`).
//!
//! These measure wall time, the only fair clock for the OS-thread ping-pong
//! (its cost is waiting). The greenlet and generator comparisons with raw
//! corosensei run again in `*_cpu_time` groups that measure the thread's CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`): a switch within one thread never waits,
//! so CPU time is its cost, and it is not inflated by preemption when the
//! machine is shared and loaded.
//!
//! Run: `cargo bench --bench greenlet`
//!
//! Two more modes of the same binary, for iterating on the switch:
//! `GREENLET_CALLGRIND=N valgrind --tool=callgrind <binary>` (exact
//! instruction counts per iteration, see `callgrind_loops`) and
//! `GREENLET_MIN_OF=ROUNDS <binary>` (minimum CPU time per iteration, see
//! `min_of_rounds`).

use std::hint::black_box;
use std::sync::mpsc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, BenchmarkGroup, Criterion};
use greenhouse::generator::Generator;
use greenhouse::greenlet::{self, Greenlet};
use greenhouse::stack;

/// The calling thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Criterion measurement: CPU time of the benchmarking thread.
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, like wall time.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

fn raw_echo() -> Coroutine<u64, u64, (), DefaultStack> {
    Coroutine::with_stack(
        DefaultStack::new(stack::DEFAULT_STACK_SIZE).unwrap(),
        |y: &Yielder<u64, u64>, mut v: u64| loop {
            v = y.suspend(v + 1);
        },
    )
}

/// Greenlet round trip and the raw corosensei one, into `g`.
fn greenlet_and_raw_round_trip<M: Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    let child = Greenlet::new(|mut v: u64| {
        let main = greenlet::current::<u64>().parent().unwrap();
        loop {
            v = main.switch(v + 1).unwrap();
        }
    })
    .unwrap();
    child.switch(0).unwrap();
    g.bench_function("greenlet_switch", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v = child.switch(black_box(v)).unwrap();
        })
    });
    drop(child);

    let mut raw = raw_echo();
    g.bench_function("corosensei_resume_suspend", |b| {
        let mut v = 0u64;
        // Same work as the greenlet loop: a value in, a Result out.
        b.iter(|| {
            let r: Result<u64, ()> = match raw.resume(black_box(v)) {
                CoroutineResult::Yield(n) => Ok(n),
                CoroutineResult::Return(()) => Err(()),
            };
            v = r.unwrap();
        })
    });
}

fn switch_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch_round_trip");
    greenlet_and_raw_round_trip(&mut g);

    let (to_tx, to_rx) = mpsc::channel::<u64>();
    let (back_tx, back_rx) = mpsc::channel::<u64>();
    let echo = std::thread::spawn(move || {
        for v in to_rx {
            if back_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    g.bench_function("os_thread_mpsc_ping_pong", |b| {
        let mut v = 0u64;
        b.iter(|| {
            to_tx.send(black_box(v)).unwrap();
            v = back_rx.recv().unwrap();
        })
    });
    drop(to_tx);
    echo.join().unwrap();
    g.finish();
}

/// `Generator::next` and the raw corosensei equivalent, into `g`.
fn generator_and_raw_next<M: Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    let mut gen = Generator::new(|y| {
        let mut n = 0u64;
        loop {
            y.yield_(n);
            n += 1;
        }
    })
    .unwrap();
    // Both loops hand criterion a `u64` (criterion black-boxes what the
    // routine returns): black-boxing the 16-byte `Option<u64>` itself made
    // both loops store it as two words and reload it as one, a failed
    // store-to-load forward that cost ~6 ns per iteration and hid most of
    // the difference between the two.
    g.bench_function("generator_next", |b| b.iter(|| gen.next().unwrap()));
    drop(gen);

    let mut raw = Coroutine::with_stack(
        DefaultStack::new(stack::DEFAULT_STACK_SIZE).unwrap(),
        |y: &Yielder<(), u64>, ()| {
            let mut n = 0u64;
            loop {
                y.suspend(n);
                n += 1;
            }
        },
    );
    g.bench_function("corosensei_resume_suspend", |b| {
        // Same result type as `Generator::next`, for a like-for-like loop.
        b.iter(|| {
            match raw.resume(()) {
                CoroutineResult::Yield(n) => Some(n),
                CoroutineResult::Return(()) => None,
            }
            .unwrap()
        })
    });
}

fn generator_next(c: &mut Criterion) {
    let mut g = c.benchmark_group("generator_next");
    generator_and_raw_next(&mut g);
    g.finish();
}

fn switch_round_trip_cpu_time(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("switch_round_trip_cpu_time");
    greenlet_and_raw_round_trip(&mut g);
    g.finish();
}

fn generator_next_cpu_time(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("generator_next_cpu_time");
    generator_and_raw_next(&mut g);
    g.finish();
}

fn create_run_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("greenlet_create_run_drop");
    let limit = stack::pool_limit();
    g.bench_function("pooled_stack", |b| {
        b.iter(|| {
            let gl = Greenlet::new(|v: u64| v + 1).unwrap();
            black_box(gl.switch(black_box(1)).unwrap())
        })
    });
    stack::set_pool_limit(0);
    g.bench_function("fresh_stack", |b| {
        b.iter(|| {
            let gl = Greenlet::new(|v: u64| v + 1).unwrap();
            black_box(gl.switch(black_box(1)).unwrap())
        })
    });
    stack::set_pool_limit(limit);
    g.finish();
}

/// `n` greenlet round trips main → child → main, for callgrind.
#[inline(never)]
fn greenlet_round_trips(child: &Greenlet<u64>, n: u64) -> u64 {
    let mut v = 0u64;
    for _ in 0..n {
        v = child.switch(black_box(v)).unwrap();
    }
    v
}

/// `n` raw corosensei round trips, for callgrind.
#[inline(never)]
fn raw_round_trips(raw: &mut Coroutine<u64, u64, (), DefaultStack>, n: u64) -> u64 {
    let mut v = 0u64;
    for _ in 0..n {
        let r: Result<u64, ()> = match raw.resume(black_box(v)) {
            CoroutineResult::Yield(n) => Ok(n),
            CoroutineResult::Return(()) => Err(()),
        };
        v = r.unwrap();
    }
    v
}

/// `n` calls of `Generator::next`, for callgrind.
#[inline(never)]
fn generator_nexts(gen: &mut Generator<u64>, n: u64) {
    for _ in 0..n {
        black_box(gen.next().unwrap());
    }
}

/// `GREENLET_CALLGRIND=N valgrind --tool=callgrind <bench binary>`: N
/// iterations of each loop above, each in a function of its own (the child
/// and the generator are started beforehand), so
/// `callgrind_annotate --inclusive=yes` divided by N gives instructions per
/// iteration. Instruction counts are repeatable on a loaded machine where
/// times are not.
fn callgrind_loops(n: u64) {
    let child = Greenlet::new(|mut v: u64| {
        let main = greenlet::current::<u64>().parent().unwrap();
        loop {
            v = main.switch(v + 1).unwrap();
        }
    })
    .unwrap();
    child.switch(0).unwrap();
    black_box(greenlet_round_trips(&child, n));
    let mut raw = raw_echo();
    black_box(raw_round_trips(&mut raw, n));
    let mut gen = Generator::new(|y| {
        let mut n = 0u64;
        loop {
            y.yield_(n);
            n += 1;
        }
    })
    .unwrap();
    gen.next();
    generator_nexts(&mut gen, n);
}

/// `GREENLET_MIN_OF=ROUNDS <bench binary>`: the round-trip and `next()`
/// loops above, greenhouse and raw interleaved, 1M iterations per round,
/// printing the minimum thread-CPU time per iteration over the rounds. A
/// quick, steady comparison while iterating on the switch (the minimum
/// drops the rounds another process disturbed).
fn min_of_rounds(rounds: u32) {
    let child = Greenlet::new(|mut v: u64| {
        let main = greenlet::current::<u64>().parent().unwrap();
        loop {
            v = main.switch(v + 1).unwrap();
        }
    })
    .unwrap();
    child.switch(0).unwrap();
    let mut raw = raw_echo();
    let mut gen = Generator::new(|y| {
        let mut n = 0u64;
        loop {
            y.yield_(n);
            n += 1;
        }
    })
    .unwrap();
    let mut raw_gen = Coroutine::with_stack(
        DefaultStack::new(stack::DEFAULT_STACK_SIZE).unwrap(),
        |y: &Yielder<(), u64>, ()| {
            let mut n = 0u64;
            loop {
                y.suspend(n);
                n += 1;
            }
        },
    );
    const N: u64 = 1_000_000;
    let per = |f: &mut dyn FnMut()| {
        let t = thread_cpu_ns();
        f();
        (thread_cpu_ns() - t) as f64 / N as f64
    };
    let mut best = [f64::MAX; 4];
    for _ in 0..rounds {
        let times = [
            per(&mut || {
                black_box(greenlet_round_trips(&child, N));
            }),
            per(&mut || {
                black_box(raw_round_trips(&mut raw, N));
            }),
            per(&mut || generator_nexts(&mut gen, N)),
            per(&mut || {
                for _ in 0..N {
                    black_box(
                        match raw_gen.resume(()) {
                            CoroutineResult::Yield(n) => Some(n),
                            CoroutineResult::Return(()) => None,
                        }
                        .unwrap(),
                    );
                }
            }),
        ];
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
    }
    println!(
        "switch round trip {:.2} ns, raw {:.2} ns: {:.2}x; next() {:.2} ns, raw {:.2} ns: {:.2}x",
        best[0],
        best[1],
        best[0] / best[1],
        best[2],
        best[3],
        best[2] / best[3]
    );
}

criterion_group!(benches, switch_round_trip, generator_next, create_run_drop);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = switch_round_trip_cpu_time, generator_next_cpu_time
}

fn main() {
    if let Some(n) = std::env::var("GREENLET_CALLGRIND")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        callgrind_loops(n);
        return;
    }
    if let Some(rounds) = std::env::var("GREENLET_MIN_OF")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        min_of_rounds(rounds);
        return;
    }
    benches();
    cpu_time();
    Criterion::default().configure_from_args().final_summary();
}
