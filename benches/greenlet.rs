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
//! Run: `cargo bench --bench greenlet`

use std::hint::black_box;
use std::sync::mpsc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use criterion::{criterion_group, criterion_main, Criterion};
use greenhouse::generator::Generator;
use greenhouse::greenlet::{self, Greenlet};
use greenhouse::stack;

fn raw_echo() -> Coroutine<u64, u64, (), DefaultStack> {
    Coroutine::with_stack(
        DefaultStack::new(stack::DEFAULT_STACK_SIZE).unwrap(),
        |y: &Yielder<u64, u64>, mut v: u64| loop {
            v = y.suspend(v + 1);
        },
    )
}

fn switch_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch_round_trip");

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
    drop(raw);

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

fn generator_next(c: &mut Criterion) {
    let mut g = c.benchmark_group("generator_next");
    let mut gen = Generator::new(|y| {
        let mut n = 0u64;
        loop {
            y.yield_(n);
            n += 1;
        }
    })
    .unwrap();
    g.bench_function("generator_next", |b| b.iter(|| black_box(gen.next())));
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
            black_box(match raw.resume(()) {
                CoroutineResult::Yield(n) => Some(n),
                CoroutineResult::Return(()) => None,
            })
        })
    });
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

criterion_group!(benches, switch_round_trip, generator_next, create_run_drop);
criterion_main!(benches);
