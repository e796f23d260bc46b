//! The hub's behaviour: spawn/join, sleep, kill, timeouts, panics, handles,
//! scheduling order and fairness, on 1 and 2 workers.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::thread::{self, WaitFor};
use greenhouse::time::{timeout, Timeout};

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Raises vm.max_map_count when we may, so tests with many live green
/// threads fit; returns how many live green threads the limit allows.
fn live_green_thread_budget() -> usize {
    let path = "/proc/sys/vm/max_map_count";
    let read = || {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(65530)
    };
    if read() < 1_048_576 {
        let _ = std::fs::write(path, "1048576");
    }
    // Two maps per stack, and headroom for everything else.
    (read() / 2).saturating_sub(5_000)
}

/// The seeds' simulated-I/O workload: ten `sleep(2 s)` take about 2 s, not 20.
#[test]
fn ten_sleeps_of_two_seconds_overlap_on_one_and_two_workers() {
    for workers in [1, 2] {
        let start = Instant::now();
        rt(workers).run(|| {
            let hs: Vec<_> = (0..10)
                .map(|_| thread::spawn(|| thread::sleep(Duration::from_secs(2))))
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(2),
            "{workers} workers: {took:?}"
        );
        // Loose: other tests share this (debug build, 2-core) machine.
        assert!(
            took < Duration::from_secs(10),
            "{workers} workers: {took:?}"
        );
    }
}

/// A sleep returns only once its deadline has passed, also when the green
/// thread's timer entry was armed for an earlier, abandoned wait (the entry
/// fires first and re-arms), when a timeout scope's deadline comes first, and
/// when other green threads' timers fire around it.
#[test]
fn sleeps_never_end_before_their_deadline() {
    for workers in [1, 2] {
        rt(workers).run(|| {
            let hs: Vec<_> = (0..50u64)
                .map(|i| {
                    thread::spawn(move || {
                        for round in 0..4u64 {
                            // An abandoned timed wait leaves an earlier entry.
                            let quick = thread::spawn(|| ());
                            let _ = quick.join_timeout(Duration::from_millis(1 + i % 3));
                            let d = Duration::from_micros(300 + 97 * i + 1000 * round);
                            let deadline = Instant::now() + d;
                            thread::sleep(d);
                            assert!(Instant::now() >= deadline, "slept short: {d:?}");
                            // A scope whose deadline comes first.
                            let r = timeout(d / 2, || thread::sleep(d));
                            assert!(r.is_err());
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
    }
}

#[test]
fn hundred_thousand_green_threads_spawned_and_joined_on_one_and_two_workers() {
    let n = 100_000.min(live_green_thread_budget());
    if n < 100_000 {
        eprintln!("note: vm.max_map_count too low and not raisable; scaled down to {n}");
    }
    for workers in [1, 2] {
        let count = rt(workers).run(move || {
            let hs: Vec<_> = (0..n).map(|i| thread::spawn(move || i)).collect();
            let mut sum = 0usize;
            for h in hs {
                sum += h.join().unwrap();
            }
            sum
        });
        assert_eq!(count, n * (n - 1) / 2, "{workers} workers");
    }
}

#[test]
fn hundred_thousand_increments_on_two_workers_all_complete() {
    let n = 100_000.min(live_green_thread_budget());
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    rt(2).run(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    c.fetch_add(1, SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(counter.load(SeqCst), n);
}

struct SetOnDrop(Arc<AtomicUsize>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn kill_during_sleep_runs_destructors_and_join_reports_killed() {
    for workers in [1, 2] {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let reached_end = Arc::new(AtomicUsize::new(0));
        let r = reached_end.clone();
        rt(workers).run(move || {
            let started = greenhouse::thread::current();
            let h = thread::spawn(move || {
                let _guard = SetOnDrop(d);
                started.unpark();
                thread::sleep(Duration::from_secs(60));
                r.fetch_add(1, SeqCst);
            });
            // Wait until the target is inside its sleep.
            thread::park();
            h.kill();
            let err = h.join().unwrap_err();
            assert!(err.is_killed(), "{err:?}");
        });
        assert_eq!(dropped.load(SeqCst), 1, "destructor did not run");
        assert_eq!(reached_end.load(SeqCst), 0, "code after the sleep ran");
    }
}

#[test]
fn kill_before_start_never_runs_and_kill_after_finish_does_nothing() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    rt(1).run(move || {
        let h = thread::spawn(move || {
            r.fetch_add(1, SeqCst);
        });
        h.kill(); // on one worker, it has not started yet
        assert!(h.join().unwrap_err().is_killed());
        let done = thread::spawn(|| 5);
        while !done.is_finished() {
            thread::yield_now();
        }
        done.kill();
        assert_eq!(done.join().unwrap(), 5);
    });
    assert_eq!(ran.load(SeqCst), 0);
}

#[test]
fn kill_from_an_os_thread() {
    let rt = rt(2);
    let handle = rt.handle();
    let h = handle.spawn(|| thread::sleep(Duration::from_secs(60)));
    let killer = std::thread::spawn(move || {
        h.kill();
        h.join()
    });
    assert!(killer.join().unwrap().unwrap_err().is_killed());
}

#[test]
fn nested_timeouts_the_first_to_expire_wins_and_only_it_reports() {
    for workers in [1, 2] {
        nested_timeouts_on(workers);
    }
}

fn nested_timeouts_on(workers: usize) {
    rt(workers).run(|| {
        // Inner expires first.
        let r = timeout(Duration::from_secs(10), || {
            timeout(Duration::from_millis(20), || {
                thread::sleep(Duration::from_secs(10))
            })
        });
        assert!(r.unwrap().is_err());
        // Outer expires first: the inner scope must not swallow it.
        let inner_reported = Arc::new(AtomicUsize::new(0));
        let ir = inner_reported.clone();
        let start = Instant::now();
        let r = timeout(Duration::from_millis(20), move || {
            let inner = timeout(Duration::from_secs(10), || {
                thread::sleep(Duration::from_secs(10))
            });
            ir.fetch_add(1, SeqCst);
            inner
        });
        assert!(r.is_err());
        assert_eq!(inner_reported.load(SeqCst), 0);
        assert!(start.elapsed() < Duration::from_secs(5));
        // A body that finishes in time cancels its limit: nothing fires later.
        let r = timeout(Duration::from_millis(30), || 1);
        assert_eq!(r.unwrap(), 1);
        thread::sleep(Duration::from_millis(60));
    });
}

#[test]
fn timeout_interrupts_join_and_runs_destructors() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    rt(2).run(move || {
        let sleeper = thread::spawn(|| thread::sleep(Duration::from_secs(60)));
        let r = timeout(Duration::from_millis(20), move || {
            let _g = SetOnDrop(d);
            let _ = sleeper.join();
        });
        assert!(r.is_err());
    });
    assert_eq!(dropped.load(SeqCst), 1);
}

#[test]
fn timeout_works_on_plain_os_threads() {
    let start = Instant::now();
    let r = timeout(Duration::from_millis(20), thread::park);
    assert!(r.is_err());
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn uncaught_timeout_guard_ends_the_green_thread() {
    rt(1).run(|| {
        let h = thread::spawn(|| {
            let _t = Timeout::start(Duration::from_millis(10));
            thread::sleep(Duration::from_secs(60));
        });
        assert!(h.join().unwrap_err().is_timeout());
    });
}

#[test]
fn panic_is_isolated_and_join_gets_the_payload() {
    for workers in [1, 2] {
        rt(workers).run(|| {
            let bad = thread::Builder::new()
                .name("bad".into())
                .spawn(|| -> u32 { panic!("deliberate panic in a green thread") })
                .unwrap();
            let good = thread::spawn(|| {
                thread::sleep(Duration::from_millis(10));
                7
            });
            let err = bad.join().unwrap_err();
            assert!(err.is_panic());
            let msg = err.into_panic();
            assert_eq!(
                *msg.downcast_ref::<&str>().unwrap(),
                "deliberate panic in a green thread"
            );
            assert_eq!(good.join().unwrap(), 7);
        });
    }
}

#[test]
fn run_resumes_a_panic_of_the_root() {
    let r = std::panic::catch_unwind(|| rt(1).run(|| panic!("root panic")));
    assert!(r.is_err());
}

#[test]
fn spawn_from_an_os_thread_through_handle() {
    for workers in [1, 2] {
        spawn_from_os_threads_on(workers);
    }
}

fn spawn_from_os_threads_on(workers: usize) {
    let rt = rt(workers);
    let handle = rt.handle();
    let results: Vec<u64> = (0..4)
        .map(|i| {
            let h = handle.clone();
            std::thread::spawn(move || {
                h.spawn(move || {
                    thread::sleep(Duration::from_millis(5));
                    i * 10
                })
                .join()
                .unwrap()
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(results, [0, 10, 20, 30]);
}

#[test]
fn handle_after_runtime_drop_gives_an_error() {
    let rt = rt(1);
    let handle = rt.handle();
    drop(rt);
    let err = thread::Builder::new().spawn_on(&handle, || ()).unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
}

#[test]
fn runtime_drop_kills_stragglers_and_runs_their_destructors() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let rt = rt(2);
    rt.run(move || {
        for _ in 0..10 {
            // Captured, so it is dropped whether the straggler had started
            // (unwound from its sleep) or not (dropped without running).
            let g = SetOnDrop(d.clone());
            thread::spawn(move || {
                let _g = g;
                thread::sleep(Duration::from_secs(60));
            });
        }
    });
    let start = Instant::now();
    drop(rt);
    assert_eq!(dropped.load(SeqCst), 10);
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// gevent's test__order: on one worker, two green threads that print and
/// yield interleave exactly.
#[test]
fn one_worker_interleaves_exactly_1a_2a_1b_2b() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt(1).run(move || {
        let mk = |n: u32, l: Arc<Mutex<Vec<String>>>| {
            thread::spawn(move || {
                l.lock().unwrap().push(format!("{n}A"));
                thread::yield_now();
                l.lock().unwrap().push(format!("{n}B"));
            })
        };
        let a = mk(1, l.clone());
        let b = mk(2, l.clone());
        a.join().unwrap();
        b.join().unwrap();
    });
    assert_eq!(*log.lock().unwrap(), ["1A", "2A", "1B", "2B"]);
}

/// gevent's test__sleep0: a green thread that only yields does not starve
/// timers or other green threads.
#[test]
fn yield_loop_does_not_starve_timers_or_others() {
    rt(1).run(|| {
        let stop = Arc::new(AtomicUsize::new(0));
        let s = stop.clone();
        let spinner = thread::spawn(move || {
            while s.load(SeqCst) == 0 {
                thread::yield_now();
            }
        });
        let start = Instant::now();
        let r = timeout(Duration::from_millis(10), || {
            thread::sleep(Duration::from_secs(10))
        });
        assert!(r.is_err());
        let other = thread::spawn(|| 1);
        assert_eq!(other.join().unwrap(), 1);
        stop.store(1, SeqCst);
        spinner.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    });
}

/// A lone green thread yielding in a loop (a yield that resumes it at once,
/// nothing else being ready) still lets in what arrives from outside its
/// worker: a wake-up from an OS thread and a green thread spawned through a
/// `Handle`.
#[test]
fn lone_yield_loop_sees_wakeups_and_spawns_from_os_threads() {
    let rt = rt(1);
    let handle = rt.handle();
    rt.run(move || {
        // An OS thread unparks a parked green thread: it lands in the inbox.
        let flag = Arc::new(AtomicUsize::new(0));
        let f = flag.clone();
        let parked = thread::spawn(move || {
            while f.load(SeqCst) == 0 {
                thread::park();
            }
            f.store(2, SeqCst);
        });
        thread::yield_now(); // it runs and parks
        let waker = parked.thread().clone();
        let f = flag.clone();
        std::thread::spawn(move || {
            f.store(1, SeqCst);
            waker.unpark();
        });
        let start = Instant::now();
        while flag.load(SeqCst) != 2 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "wake-up never ran"
            );
            thread::yield_now();
        }
        parked.join().unwrap();
        // An OS thread spawns through the handle: it lands in the injector.
        let spawned = Arc::new(AtomicUsize::new(0));
        let s = spawned.clone();
        std::thread::spawn(move || handle.spawn(move || s.store(1, SeqCst)));
        while spawned.load(SeqCst) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "spawn never ran");
            thread::yield_now();
        }
    });
}

#[test]
fn join_timeout_gives_the_handle_back() {
    rt(1).run(|| {
        let h = thread::spawn(|| {
            thread::sleep(Duration::from_millis(50));
            3
        });
        let h = h.join_timeout(Duration::from_millis(1)).unwrap_err();
        assert!(!h.is_finished());
        assert_eq!(h.join_timeout(Duration::from_secs(10)).unwrap().unwrap(), 3);
    });
}

#[test]
fn join_all_wait_and_as_completed() {
    rt(2).run(|| {
        let spawn_sleeper = |ms: u64| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(ms));
                ms
            })
        };
        // join_all keeps input order.
        let out: Vec<u64> = thread::join_all([60, 20, 40].map(spawn_sleeper))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, [60, 20, 40]);
        // as_completed yields in completion order.
        let order: Vec<u64> = thread::as_completed([90, 10, 50].map(spawn_sleeper))
            .map(Result::unwrap)
            .collect();
        assert_eq!(order, [10, 50, 90]);
        // wait: FIRST_COMPLETED, then a timeout, then ALL_COMPLETED.
        let hs: Vec<_> = [10, 300, 400].into_iter().map(spawn_sleeper).collect();
        let (done, pending) = thread::wait(hs, WaitFor::First, None);
        assert_eq!(done.len(), 1);
        assert_eq!(done.into_iter().next().unwrap().join().unwrap(), 10);
        let (done, pending) = thread::wait(pending, WaitFor::All, Some(Duration::from_millis(5)));
        assert_eq!((done.len(), pending.len()), (0, 2));
        let (done, pending) = thread::wait(pending, WaitFor::All, None);
        assert_eq!((done.len(), pending.len()), (2, 0));
    });
}

/// The seeds' asyncio timing: tasks sleeping 1, 2 and 4 units finish in about
/// the longest, not the sum.
#[test]
fn concurrent_sleeps_take_the_max_not_the_sum() {
    let start = Instant::now();
    rt(1).run(|| {
        let hs: Vec<_> = [100u64, 200, 400]
            .into_iter()
            .map(|ms| thread::spawn(move || thread::sleep(Duration::from_millis(ms))))
            .collect();
        thread::join_all(hs);
    });
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(400));
    assert!(took < Duration::from_millis(3000), "{took:?}");
}

greenhouse::green_local! {
    static PER_GREEN: std::cell::Cell<u64> = std::cell::Cell::new(0);
}

/// Counts drops of the values below.
static LATE_DROPS: AtomicUsize = AtomicUsize::new(0);

struct CountsDrop;
impl Drop for CountsDrop {
    fn drop(&mut self) {
        LATE_DROPS.fetch_add(1, SeqCst);
    }
}

/// Its destructor creates a value of `LATE`: a green-local made while the
/// green thread's own green-locals are being dropped, after they were taken.
struct MakesLate;
impl Drop for MakesLate {
    fn drop(&mut self) {
        LATE.with(|_| ());
    }
}

greenhouse::green_local! {
    static MAKES_LATE: MakesLate = MakesLate;
}

greenhouse::green_local! {
    static LATE: CountsDrop = CountsDrop;
}

/// Whatever a green thread leaves in its green-locals is dropped when it
/// finishes, by its worker (the task record is freed later without looking
/// at them): here a value created by another value's destructor.
#[test]
fn green_locals_made_while_green_locals_drop_are_dropped_too() {
    rt(1).run(|| {
        let hs: Vec<_> = (0..10)
            .map(|_| thread::spawn(|| MAKES_LATE.with(|_| ())))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(LATE_DROPS.load(SeqCst), 10);
}

#[test]
fn green_local_is_per_green_thread_even_on_one_worker() {
    rt(1).run(|| {
        let hs: Vec<_> = (1..=50u64)
            .map(|i| {
                thread::spawn(move || {
                    PER_GREEN.with(|v| v.set(i));
                    // Others run and set theirs meanwhile.
                    thread::yield_now();
                    thread::sleep(Duration::from_millis(1));
                    PER_GREEN.with(|v| v.get())
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u64 + 1);
        }
    });
}

#[test]
fn spawn_blocking_does_not_stall_the_worker() {
    rt(1).run(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let ticker = thread::spawn(move || {
            for _ in 0..10 {
                thread::sleep(Duration::from_millis(5));
                t.fetch_add(1, SeqCst);
            }
        });
        let ticks_during = {
            let t = ticks.clone();
            thread::spawn_blocking(move || {
                // A blocking OS sleep: would freeze the only worker if run there.
                std::thread::sleep(Duration::from_millis(300));
                t.load(SeqCst)
            })
        };
        ticker.join().unwrap();
        assert_eq!(
            ticks_during, 10,
            "the worker did not run the ticker meanwhile"
        );
        let r = std::panic::catch_unwind(|| thread::spawn_blocking(|| panic!("in pool")));
        assert!(r.is_err());
    });
}

#[test]
fn park_unpark_tokens_like_std() {
    rt(2).run(|| {
        let me = thread::current();
        me.unpark();
        thread::park(); // returns at once: token already there
        let h = thread::spawn(move || me.unpark());
        thread::park();
        h.join().unwrap();
        let start = Instant::now();
        thread::park_timeout(Duration::from_millis(10));
        assert!(start.elapsed() >= Duration::from_millis(10));
    });
}

#[test]
fn names_ids_and_current() {
    rt(1).run(|| {
        assert_eq!(thread::current().name(), Some("main"));
        let h = thread::Builder::new()
            .name("named".into())
            .spawn(|| {
                let me = thread::current();
                (me.id(), me.name().map(String::from))
            })
            .unwrap();
        let id = h.id();
        assert_eq!(h.name(), Some("named"));
        let (inner_id, name) = h.join().unwrap();
        assert_eq!(inner_id, id);
        assert_eq!(name.as_deref(), Some("named"));
    });
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let err = thread::Builder::new().spawn(|| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
    assert!(std::panic::catch_unwind(|| thread::spawn(|| ())).is_err());
}

#[test]
fn spawn_later_waits_and_can_be_killed_during_the_delay() {
    rt(1).run(|| {
        let start = Instant::now();
        let h = thread::spawn_later(Duration::from_millis(30), || 9);
        assert_eq!(h.join().unwrap(), 9);
        assert!(start.elapsed() >= Duration::from_millis(30));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let h = thread::spawn_later(Duration::from_secs(60), move || {
            r.fetch_add(1, SeqCst);
        });
        thread::sleep(Duration::from_millis(5));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        assert_eq!(ran.load(SeqCst), 0);
    });
}

#[test]
fn thread_local_survives_a_switch_because_green_threads_do_not_migrate() {
    std::thread_local! { static OS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) }; }
    rt(2).run(|| {
        let hs: Vec<_> = (0..200)
            .map(|i| {
                thread::spawn(move || {
                    let os = std::thread::current().id();
                    OS_THREAD.with(|c| c.set(i));
                    for _ in 0..5 {
                        thread::sleep(Duration::from_millis(1));
                        assert_eq!(std::thread::current().id(), os, "green thread migrated");
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn zero_workers_is_rejected() {
    let e = Runtime::builder().workers(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

/// Each green thread has its own implicit main greenlet, even when several
/// share one worker and switch between each other while greenlets are
/// suspended.
#[test]
fn greenlets_inside_green_threads_are_per_green_thread() {
    use greenhouse::greenlet::{self, Greenlet};
    rt(1).run(|| {
        let hs: Vec<_> = (0..20u64)
            .map(|i| {
                thread::spawn(move || {
                    let main_before = greenlet::current::<u64>();
                    let child = Greenlet::new(move |x: u64| {
                        let parent = greenlet::current::<u64>().parent().unwrap();
                        let y = parent.switch(x + i).unwrap();
                        y * 2
                    })
                    .unwrap();
                    let a = child.switch(100).unwrap();
                    // Let the other green threads (and their greenlets) run.
                    thread::sleep(Duration::from_millis(2));
                    assert_eq!(greenlet::current::<u64>(), main_before);
                    let b = child.switch(a).unwrap();
                    (a, b)
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            let i = i as u64;
            assert_eq!(h.join().unwrap(), (100 + i, (100 + i) * 2));
        }
    });
}

/// A green thread that ends with a greenlet still suspended unwinds it (its
/// destructors run), and the next green thread on the worker starts with a
/// fresh main greenlet.
#[test]
fn suspended_greenlets_unwind_when_their_green_thread_ends() {
    use greenhouse::greenlet::{self, Greenlet};
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    rt(1).run(move || {
        thread::spawn(move || {
            let child = Greenlet::new(move |_: ()| {
                let _g = SetOnDrop(d);
                // Bind the parent first: a `current()` temporary would keep
                // this greenlet alive across the switch.
                let parent = greenlet::current::<()>().parent().unwrap();
                parent.switch(()).unwrap();
                unreachable!("never resumed");
            })
            .unwrap();
            child.switch(()).unwrap();
            // `child` is dropped here, suspended.
        })
        .join()
        .unwrap();
        let fresh = thread::spawn(|| {
            let me = greenlet::current::<()>();
            (me.is_main(), me.parent().is_none())
        });
        assert_eq!(fresh.join().unwrap(), (true, true));
    });
    assert_eq!(dropped.load(SeqCst), 1);
}

/// Runs `wait` in a green thread of a one-worker runtime after spawning
/// another green thread, and tells whether that other one ran during
/// `wait`. Spawning does not run the new green thread at once, so it runs
/// during `wait` only if `wait` switched away.
fn other_runs_during(wait: impl FnOnce()) -> bool {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let other = thread::spawn(move || {
        r.store(1, SeqCst);
    });
    wait();
    let during = ran.load(SeqCst) == 1;
    other.join().unwrap();
    during
}

/// The hub switches away from a waiting green thread only when the wait is
/// on the green thread's own stack. Inside a greenlet or generator that the
/// green thread resumed (each on a stack of its own, told apart by the
/// stack pointer) a switch would suspend the wrong coroutine, so the wait
/// blocks the OS thread instead and nothing else runs on the one worker
/// meanwhile; back on its own stack the green thread switches again.
#[test]
fn waiting_inside_a_nested_greenlet_or_generator_blocks_instead_of_switching() {
    use greenhouse::generator::Generator;
    use greenhouse::greenlet::Greenlet;
    rt(1).run(|| {
        thread::spawn(|| {
            assert!(!other_runs_during(|| {}), "spawn ran the new green thread");
            assert!(other_runs_during(thread::yield_now));
            assert!(other_runs_during(|| thread::sleep(Duration::from_millis(
                1
            ))));

            let in_greenlet = |f: fn()| {
                other_runs_during(|| Greenlet::new(move |()| f()).unwrap().switch(()).unwrap())
            };
            assert!(!in_greenlet(thread::yield_now));
            assert!(!in_greenlet(|| thread::sleep(Duration::from_millis(1))));

            let in_generator = |f: fn()| {
                other_runs_during(|| {
                    let mut g = Generator::new(move |y| {
                        f();
                        y.yield_(1);
                        f();
                        y.yield_(2);
                    })
                    .unwrap();
                    // The first resume, then a later one (the body's
                    // context exists by then).
                    assert_eq!(g.next(), Some(1));
                    assert_eq!(g.next(), Some(2));
                })
            };
            assert!(!in_generator(thread::yield_now));
            assert!(!in_generator(|| thread::sleep(Duration::from_millis(1))));

            // A greenlet inside a generator, and a generator inside a
            // greenlet.
            assert!(!other_runs_during(|| {
                let mut g = Generator::new(|y| {
                    let inner = Greenlet::new(|()| thread::yield_now()).unwrap();
                    inner.switch(()).unwrap();
                    y.yield_(1);
                })
                .unwrap();
                assert_eq!(g.next(), Some(1));
            }));
            assert!(!other_runs_during(|| {
                let g = Greenlet::new(|()| {
                    let mut gen = Generator::new(|y| {
                        thread::yield_now();
                        y.yield_(1)
                    })
                    .unwrap();
                    assert_eq!(gen.next(), Some(1));
                })
                .unwrap();
                g.switch(()).unwrap();
            }));

            // Back on its own stack, it switches again.
            assert!(other_runs_during(thread::yield_now));
        })
        .join()
        .unwrap();
    });
}

/// A generator whose body panics, inside a green thread: the panic reaches
/// the caller of `next`, the green thread's own greenlet state is back
/// (its main greenlet is current), and it still parks by switching.
#[test]
fn a_generator_panicking_inside_a_green_thread_leaves_it_intact() {
    use greenhouse::generator::Generator;
    use greenhouse::greenlet;
    rt(1).run(|| {
        thread::spawn(|| {
            let main = greenlet::current::<()>();
            let mut g = Generator::new(|y| {
                y.yield_(1);
                // Its own main greenlet, not the green thread's.
                assert!(greenlet::current::<()>().is_main());
                panic!("in the body");
            })
            .unwrap();
            assert_eq!(g.next(), Some(1));
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.next()));
            let payload = caught.unwrap_err();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the body"));
            assert!(g.is_finished());
            assert_eq!(g.next(), None);
            assert!(greenlet::current::<()>() == main);
            assert!(other_runs_during(thread::yield_now));
            assert!(other_runs_during(|| thread::sleep(Duration::from_millis(
                1
            ))));
        })
        .join()
        .unwrap();
    });
}

std::thread_local! {
    /// The main greenlet a destructor saw while running on a worker thread
    /// outside any green thread.
    static SEEN_ON_WORKER: std::cell::RefCell<Option<greenhouse::greenlet::Greenlet<()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Its destructor uses greenlets wherever it runs.
struct UsesGreenletsOnDrop;
impl Drop for UsesGreenletsOnDrop {
    fn drop(&mut self) {
        let main = greenhouse::greenlet::current::<()>();
        SEEN_ON_WORKER.with(|s| *s.borrow_mut() = Some(main));
    }
}

/// Its destructor creates a value of `LATE_GREENLET_USER` after the green
/// thread's green-locals were taken: that one is dropped by the worker.
struct MakesLateGreenletUser;
impl Drop for MakesLateGreenletUser {
    fn drop(&mut self) {
        LATE_GREENLET_USER.with(|_| ());
    }
}

greenhouse::green_local! {
    static MAKES_LATE_GREENLET_USER: MakesLateGreenletUser = MakesLateGreenletUser;
    static LATE_GREENLET_USER: UsesGreenletsOnDrop = UsesGreenletsOnDrop;
}

/// A destructor run by a worker outside any green thread may make the
/// worker a greenlet state of its own; the next green thread on that worker
/// must still get a state of its own, not the worker's.
#[test]
fn greenlets_used_on_a_worker_outside_green_threads_never_leak_into_the_next_one() {
    rt(1).run(|| {
        thread::spawn(|| MAKES_LATE_GREENLET_USER.with(|_| ()))
            .join()
            .unwrap();
        // Same (only) worker.
        let next = thread::spawn(|| {
            let seen = SEEN_ON_WORKER.with(|s| s.borrow().clone());
            let mine = greenhouse::greenlet::current::<()>();
            (seen.is_some(), seen.is_some_and(|s| s == mine))
        });
        let (destructor_ran, same) = next.join().unwrap();
        assert!(
            destructor_ran,
            "the late green-local was not dropped on the worker"
        );
        assert!(!same, "a green thread saw the worker's greenlet state");
    });
}
