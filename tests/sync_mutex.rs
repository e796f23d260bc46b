//! Mutex and ReentrantMutex: exclusion across workers and OS threads, FIFO
//! hand-off, timeouts, cancellation while waiting, poisoning.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex as StdMutex, TryLockError};
use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::sync::{Event, Mutex, ReentrantMutex};
use greenhouse::thread;
use greenhouse::time::timeout;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Yields until `n` waiters have announced themselves, then lets them
/// reach the lock's queue: a locker spins (yielding) a few times before it
/// queues, and on one worker each yield here runs every ready green thread
/// once, so 50 rounds leave them all queued, in announcement order.
fn until_announced(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        thread::yield_now();
    }
    for _ in 0..50 {
        thread::yield_now();
    }
}

/// The seeds' lock demo: 2 threads x 1,000,000 `+= 1` under a lock always
/// give 2,000,000 — here two green threads on two workers.
#[test]
fn two_green_threads_times_a_million_increments_on_two_workers() {
    let total = rt(2).run(|| {
        let n = Arc::new(Mutex::new(0u64));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let n = n.clone();
                thread::spawn(move || {
                    for _ in 0..1_000_000 {
                        *n.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let v = *n.lock().unwrap();
        v
    });
    assert_eq!(total, 2_000_000);
}

#[test]
fn green_threads_and_os_threads_exclude_each_other() {
    let rt = rt(2);
    let n = Arc::new(Mutex::new(0u64));
    let greens: Vec<_> = (0..4)
        .map(|_| {
            let n = n.clone();
            rt.handle().spawn(move || {
                for _ in 0..20_000 {
                    let mut g = n.lock().unwrap();
                    let v = *g;
                    if v % 1000 == 0 {
                        thread::yield_now(); // hold it across a switch now and then
                    }
                    *g = v + 1;
                }
            })
        })
        .collect();
    let oses: Vec<_> = (0..2)
        .map(|_| {
            let n = n.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    *n.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in greens {
        h.join().unwrap();
    }
    for h in oses {
        h.join().unwrap();
    }
    assert_eq!(*n.lock().unwrap(), 120_000);
}

#[test]
fn unlock_hands_the_lock_to_waiters_in_fifo_order() {
    rt(1).run(|| {
        let m = Arc::new(Mutex::new(Vec::new()));
        let announced = Arc::new(AtomicUsize::new(0));
        let held = m.lock().unwrap();
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let (m, announced) = (m.clone(), announced.clone());
                thread::spawn(move || {
                    let ticket = announced.fetch_add(1, SeqCst);
                    m.lock().unwrap().push(ticket);
                })
            })
            .collect();
        until_announced(&announced, 5);
        drop(held);
        // Handed to the first waiter, still held: a newcomer cannot barge in.
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), [0, 1, 2, 3, 4]);
    });
}

#[test]
fn lock_timeout_gives_up_and_leaves_the_queue() {
    rt(1).run(|| {
        let m = Mutex::new(1);
        let held = m.lock().unwrap();
        let start = Instant::now();
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(30)),
            Err(TryLockError::WouldBlock)
        ));
        assert!(start.elapsed() >= Duration::from_millis(30));
        drop(held);
        // Nobody is left waiting: the unlock freed it.
        assert_eq!(*m.try_lock().unwrap(), 1);
    });
}

#[test]
fn killed_waiter_that_was_handed_the_lock_passes_it_on() {
    rt(1).run(|| {
        let m = Arc::new(Mutex::new(0));
        let announced = Arc::new(AtomicUsize::new(0));
        let held = m.lock().unwrap();
        let waiter = |m: Arc<Mutex<i32>>, announced: Arc<AtomicUsize>, v: i32| {
            thread::spawn(move || {
                announced.fetch_add(1, SeqCst);
                *m.lock().unwrap() = v;
            })
        };
        let first = waiter(m.clone(), announced.clone(), 1);
        until_announced(&announced, 1);
        let second = waiter(m.clone(), announced.clone(), 2);
        until_announced(&announced, 2);
        drop(held); // handed to `first`...
        first.kill(); // ...which unwinds before it runs
        assert!(first.join().unwrap_err().is_killed());
        second.join().unwrap();
        let g = m.lock().unwrap();
        assert_eq!(*g, 2);
        // Unwinding out of the *wait* does not poison: the lock was never
        // used by the killed thread.
        assert!(!m.is_poisoned());
    });
}

#[test]
fn timeout_scope_around_a_blocked_lock_then_the_lock_still_works() {
    rt(2).run(|| {
        let m = Arc::new(Mutex::new(0));
        let held = m.lock().unwrap();
        let m2 = m.clone();
        let r =
            thread::spawn(move || timeout(Duration::from_millis(20), || *m2.lock().unwrap() += 1))
                .join()
                .unwrap();
        assert!(r.is_err());
        drop(held);
        *m.lock_timeout(Duration::from_secs(5)).unwrap() += 10;
        assert_eq!(*m.lock().unwrap(), 10);
    });
}

#[test]
fn poisoned_by_a_panic_or_a_kill_inside_the_critical_section() {
    rt(1).run(|| {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let h = thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("inside");
        });
        assert!(h.join().unwrap_err().is_panic());
        assert!(m.is_poisoned());
        let g = m.lock().unwrap_err().into_inner();
        drop(g);
        m.clear_poison();
        assert!(!m.is_poisoned());

        let m3 = m.clone();
        let entered = Arc::new(AtomicBool::new(false));
        let e2 = entered.clone();
        let h = thread::spawn(move || {
            let _g = m3.lock().unwrap();
            e2.store(true, SeqCst);
            thread::sleep(Duration::from_secs(60));
        });
        while !entered.load(SeqCst) {
            thread::yield_now();
        }
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        assert!(m.is_poisoned());
        assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    });
}

#[test]
fn into_inner_get_mut_default_debug() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().unwrap().push(2);
    assert_eq!(
        format!("{m:?}"),
        "Mutex { data: [1, 2], poisoned: false, .. }"
    );
    let g = m.lock().unwrap();
    assert_eq!(format!("{g:?}"), "[1, 2]");
    drop(g);
    assert_eq!(m.into_inner().unwrap(), [1, 2]);
    assert_eq!(*Mutex::<u8>::default().lock().unwrap(), 0);
}

#[test]
fn reentrant_mutex_nests_for_its_owner_green_thread() {
    rt(1).run(|| {
        let m = Arc::new(ReentrantMutex::new(AtomicUsize::new(0)));
        let outer = m.lock();
        let inner = m.lock();
        assert!(m.try_lock().is_some());
        inner.fetch_add(1, SeqCst);
        // Another green thread on the same worker (same OS thread) is not
        // the owner: it must wait until the outermost guard is dropped.
        let m2 = m.clone();
        let other = thread::spawn(move || {
            assert!(m2.try_lock().is_none());
            let g = m2.lock();
            g.load(SeqCst)
        });
        thread::yield_now();
        drop(inner);
        thread::yield_now();
        assert!(!other.is_finished());
        outer.fetch_add(1, SeqCst);
        drop(outer);
        assert_eq!(other.join().unwrap(), 2);
    });
}

#[test]
fn reentrant_mutex_between_os_threads_and_green_threads() {
    let rt = rt(2);
    let m = Arc::new(ReentrantMutex::new(StdMutex::new(Vec::new())));
    let g = m.lock();
    let m2 = m.clone();
    let tried = Arc::new(Event::new());
    let t2 = tried.clone();
    let green = rt.handle().spawn(move || {
        assert!(m2.lock_timeout(Duration::from_millis(5)).is_none());
        t2.set();
        let outer = m2.lock();
        let inner = m2.lock();
        inner.lock().unwrap().push("green");
        drop(outer);
    });
    {
        let again = m.lock(); // the OS thread owns it and nests
        again.lock().unwrap().push("os");
    }
    tried.wait();
    drop(g);
    green.join().unwrap();
    assert_eq!(*m.lock().lock().unwrap(), ["os", "green"]);
}

#[test]
fn reentrant_mutex_waiter_killed_leaves_nothing_behind() {
    rt(1).run(|| {
        let m = Arc::new(ReentrantMutex::new(()));
        let held = m.lock();
        let m2 = m.clone();
        let h = thread::spawn(move || drop(m2.lock()));
        thread::yield_now();
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        drop(held);
        let m3 = m.clone();
        assert!(thread::spawn(move || m3.try_lock().is_some())
            .join()
            .unwrap());
    });
}
