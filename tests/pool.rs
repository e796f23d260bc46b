//! Pool and Group: the bound, map order, join, kill, membership however a
//! member ends, cancellation of a spawner waiting for a slot.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use greenhouse::pool::{Group, Pool};
use greenhouse::runtime::Runtime;
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// The seeds' ThreadPoolExecutor(5) over 10 tasks: never more than 5 at
/// once, and all 5 slots are used.
#[test]
fn pool_of_five_over_ten_tasks_never_runs_more_than_five() {
    for workers in [1, 2] {
        rt(workers).run(move || {
            let pool = Pool::new(5);
            let now = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let finished = Arc::new(AtomicUsize::new(0));
            for _ in 0..10 {
                let (now, peak, finished) = (now.clone(), peak.clone(), finished.clone());
                pool.spawn(move || {
                    peak.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
                    for _ in 0..5 {
                        thread::sleep(Duration::from_millis(2));
                        assert!(now.load(SeqCst) <= 5);
                    }
                    now.fetch_sub(1, SeqCst);
                    finished.fetch_add(1, SeqCst);
                });
                assert!(pool.len() <= 5);
            }
            pool.join();
            assert_eq!(finished.load(SeqCst), 10);
            assert_eq!(peak.load(SeqCst), 5, "{workers} workers");
            assert_eq!(pool.free_count(), 5);
        });
    }
}

#[test]
fn map_returns_results_in_input_order_whatever_the_finishing_order() {
    rt(2).run(|| {
        let pool = Pool::new(3);
        let out = pool
            .map(
                |ms: u64| {
                    thread::sleep(Duration::from_millis(ms));
                    ms
                },
                vec![30, 1, 20, 2, 10, 3],
            )
            .unwrap();
        assert_eq!(out, [30, 1, 20, 2, 10, 3]);
        let group = Group::new();
        assert_eq!(
            group.map(|x: i32| x + 1, 0..100).unwrap(),
            (1..101).collect::<Vec<_>>()
        );
    });
}

#[test]
fn map_reports_the_first_failure_and_kills_the_rest() {
    let start = std::time::Instant::now();
    rt(1).run(|| {
        let pool = Pool::new(4);
        let err = pool
            .map(
                |i: u32| {
                    if i == 1 {
                        panic!("member {i} fails");
                    }
                    thread::sleep(Duration::from_secs(30));
                },
                0..4,
            )
            .unwrap_err();
        // Member 1's panic is noticed as it happens, not after member 0's
        // 30 s sleep: the sleepers are killed.
        assert!(err.is_panic());
        assert!(pool.is_empty());
        assert_eq!(pool.free_count(), 4);
    });
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn spawn_waits_for_a_free_slot() {
    rt(1).run(|| {
        let pool = Pool::new(1);
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let l1 = log.clone();
        let a = pool.spawn(move || {
            thread::sleep(Duration::from_millis(20));
            l1.lock().unwrap().push("a done");
        });
        assert!(pool.is_full());
        let l2 = log.clone();
        let b = pool.spawn(move || l2.lock().unwrap().push("b started"));
        // `spawn` returned only once `a` had left the pool.
        assert_eq!(log.lock().unwrap()[0], "a done");
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(*log.lock().unwrap(), ["a done", "b started"]);
    });
}

#[test]
fn kill_ends_every_member_and_frees_every_slot() {
    rt(2).run(|| {
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let pool = Pool::new(8);
        let dropped = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let d = Dropped(dropped.clone());
                pool.spawn(move || {
                    let _d = d;
                    thread::sleep(Duration::from_secs(60));
                })
            })
            .collect();
        pool.kill();
        assert!(pool.is_empty());
        assert_eq!(pool.free_count(), 8);
        assert_eq!(dropped.load(SeqCst), 8);
        for h in hs {
            assert!(h.join().unwrap_err().is_killed());
        }
    });
}

#[test]
fn members_killed_before_they_start_leave_the_group() {
    rt(1).run(|| {
        let group = Group::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let h = group.spawn(move || {
            r.fetch_add(1, SeqCst);
        });
        // Killed before the worker ever ran it: its closure is dropped.
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        group.join();
        assert!(group.is_empty());
        assert_eq!(ran.load(SeqCst), 0);
    });
}

#[test]
fn join_timeout_and_members_that_panic_still_leave() {
    rt(1).run(|| {
        let group = Group::new();
        group.spawn(|| thread::sleep(Duration::from_millis(30)));
        let p = group.spawn(|| panic!("member panics"));
        assert!(!group.join_timeout(Duration::from_millis(1)));
        assert!(group.join_timeout(Duration::from_secs(10)));
        assert!(p.join().unwrap_err().is_panic());
        assert!(group.is_empty());
    });
}

#[test]
fn killed_spawner_waiting_for_a_slot_loses_nothing() {
    rt(1).run(|| {
        let pool = Pool::new(1);
        let blocker = pool.spawn(thread::park);
        let p2 = pool.clone();
        let spawner = thread::spawn(move || {
            p2.spawn(|| ());
        });
        while !pool.is_full() {
            thread::yield_now();
        }
        thread::yield_now();
        spawner.kill();
        assert!(spawner.join().unwrap_err().is_killed());
        pool.kill();
        let _ = blocker.join();
        assert_eq!(pool.free_count(), 1);
        assert!(pool.is_empty());
    });
}

#[test]
fn group_join_from_an_os_thread() {
    let rt = rt(2);
    let group = rt.run(|| {
        let group = Group::new();
        for _ in 0..5 {
            group.spawn(|| thread::sleep(Duration::from_millis(10)));
        }
        group
    });
    group.join();
    assert!(group.is_empty());
}

#[test]
#[should_panic(expected = "size 0")]
fn pool_of_size_zero_is_refused() {
    let _ = Pool::new(0);
}

#[test]
fn imap_unordered_yields_in_completion_order_within_the_bound() {
    rt(2).run(|| {
        let pool = Pool::new(3);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n2, p2) = (now.clone(), peak.clone());
        let results: Vec<u64> = pool
            .imap_unordered(
                move |ms: u64| {
                    p2.fetch_max(n2.fetch_add(1, SeqCst) + 1, SeqCst);
                    thread::sleep(Duration::from_millis(ms));
                    n2.fetch_sub(1, SeqCst);
                    ms
                },
                vec![80, 5, 40, 1, 1, 1],
            )
            .map(Result::unwrap)
            .collect();
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 1, 1, 5, 40, 80]);
        assert_eq!(
            *results.last().unwrap(),
            80,
            "the slowest comes last: {results:?}"
        );
        assert!(peak.load(SeqCst) <= 3);
        assert!(pool.is_empty());
    });
}

#[test]
fn imap_unordered_reports_failures_and_dropping_it_kills_the_rest() {
    rt(1).run(|| {
        let group = Group::new();
        let mut it = group.imap_unordered(
            |i: u32| {
                if i == 0 {
                    panic!("first fails");
                }
                thread::sleep(Duration::from_secs(60));
                i
            },
            0..5,
        );
        assert!(it.next().unwrap().unwrap_err().is_panic());
        drop(it);
        group.join(); // the sleepers were killed: this returns at once
        assert!(group.is_empty());
    });
}
