//! Semaphore and BoundedSemaphore: FIFO hand-off, timeouts, cancellation
//! while waiting (nothing lost), OS threads, several workers.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::sync::{BoundedSemaphore, Semaphore};
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Yields until `n` waiters have announced themselves. On one worker a
/// waiter runs uninterrupted from its announcement into the wait, so when
/// the count is seen they are all queued, in announcement order.
fn until_announced(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        thread::yield_now();
    }
}

#[test]
fn waiters_get_permits_in_fifo_order_and_newcomers_do_not_overtake() {
    rt(1).run(|| {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.acquire();
        let announced = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let (sem, announced, order) = (sem.clone(), announced.clone(), order.clone());
                thread::spawn(move || {
                    let ticket = announced.fetch_add(1, SeqCst);
                    let _p = sem.acquire();
                    order.lock().unwrap().push(ticket);
                })
            })
            .collect();
        until_announced(&announced, 5);
        drop(held);
        // The permit went to the first waiter: a newcomer finds none.
        assert!(sem.try_acquire().is_none());
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(sem.counter(), 1);
    });
}

#[test]
fn acquire_timeout_gives_up_and_leaves_nothing_behind() {
    rt(1).run(|| {
        let sem = Semaphore::new(1);
        let held = sem.acquire();
        let start = Instant::now();
        assert!(sem.acquire_timeout(Duration::from_millis(30)).is_none());
        assert!(start.elapsed() >= Duration::from_millis(30));
        drop(held);
        // The timed-out waiter is gone: the release went to the counter.
        assert_eq!(sem.counter(), 1);
        assert!(sem.acquire_timeout(Duration::from_millis(30)).is_some());
    });
}

#[test]
fn killed_waiter_that_was_handed_the_permit_passes_it_on() {
    rt(1).run(|| {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.acquire();
        let announced = Arc::new(AtomicUsize::new(0));
        let spawn_waiter = |sem: Arc<Semaphore>, announced: Arc<AtomicUsize>| {
            thread::spawn(move || {
                announced.fetch_add(1, SeqCst);
                let _p = sem.acquire();
                "acquired"
            })
        };
        let first = spawn_waiter(sem.clone(), announced.clone());
        until_announced(&announced, 1);
        let second = spawn_waiter(sem.clone(), announced.clone());
        until_announced(&announced, 2);
        // Hand the permit to `first`, then kill it before it runs again: it
        // unwinds out of its wait holding a permit it never used.
        drop(held);
        first.kill();
        assert!(first.join().unwrap_err().is_killed());
        assert_eq!(second.join().unwrap(), "acquired");
        assert_eq!(sem.counter(), 1);
    });
}

#[test]
fn killed_waiter_still_queued_leaves_the_queue() {
    rt(1).run(|| {
        let sem = Arc::new(Semaphore::new(0));
        let announced = Arc::new(AtomicUsize::new(0));
        let (s2, a2) = (sem.clone(), announced.clone());
        let waiter = thread::spawn(move || {
            a2.fetch_add(1, SeqCst);
            s2.acquire().forget();
        });
        until_announced(&announced, 1);
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        sem.release();
        assert_eq!(
            sem.counter(),
            1,
            "the release must not go to the dead waiter"
        );
    });
}

#[test]
fn timeout_scope_interrupts_a_waiter_and_nothing_is_lost() {
    rt(2).run(|| {
        let sem = Arc::new(Semaphore::new(0));
        let r = greenhouse::time::timeout(Duration::from_millis(20), || sem.acquire().forget());
        assert!(r.is_err());
        sem.release();
        assert_eq!(sem.counter(), 1);
    });
}

#[test]
fn os_threads_and_green_threads_share_a_semaphore() {
    let sem = Arc::new(Semaphore::new(0));
    let rt = rt(2);
    let s2 = sem.clone();
    let green = rt.handle().spawn(move || {
        s2.acquire().forget();
        "green got it"
    });
    // An OS thread waits too, then both are released from this OS thread.
    let s3 = sem.clone();
    let os = std::thread::spawn(move || {
        s3.acquire().forget();
        "os got it"
    });
    sem.release();
    sem.release();
    assert_eq!(green.join().unwrap(), "green got it");
    assert_eq!(os.join().unwrap(), "os got it");
    assert_eq!(sem.counter(), 0);
}

#[test]
fn never_more_holders_than_permits_across_two_workers() {
    rt(2).run(|| {
        let sem = Arc::new(Semaphore::new(3));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..50)
            .map(|_| {
                let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
                thread::spawn(move || {
                    for _ in 0..20 {
                        let _p = sem.acquire();
                        peak.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
                        thread::yield_now();
                        now.fetch_sub(1, SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(peak.load(SeqCst) <= 3);
        assert_eq!(sem.counter(), 3);
    });
}

#[test]
fn wait_returns_when_a_permit_is_free_without_taking_it() {
    rt(1).run(|| {
        let sem = Arc::new(Semaphore::new(0));
        assert!(!sem.wait_timeout(Duration::from_millis(5)));
        let s2 = sem.clone();
        let h = thread::spawn(move || s2.release());
        sem.wait();
        assert_eq!(sem.counter(), 1);
        h.join().unwrap();
    });
}

#[test]
fn bounded_semaphore_refuses_over_release() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release().unwrap_err().bound(), 2);
    let a = sem.acquire();
    sem.acquire().forget();
    assert!(sem.locked());
    sem.release().unwrap();
    drop(a);
    assert_eq!(sem.counter(), 2);
    assert!(sem.release().is_err());
    assert_eq!(sem.counter(), 2);
}
