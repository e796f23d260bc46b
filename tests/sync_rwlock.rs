//! RwLock: shared readers, exclusive writers, FIFO fairness (no writer
//! starvation), timeouts, cancellation, poisoning, OS threads.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, TryLockError};
use std::time::Duration;

use greenhouse::runtime::Runtime;
use greenhouse::sync::RwLock;
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// As in sync_semaphore.rs: on one worker, an announced waiter is queued
/// (the RwLock does not spin before queueing).
fn until_announced(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        thread::yield_now();
    }
}

#[test]
fn readers_share_and_writers_exclude_across_workers() {
    rt(2).run(|| {
        let l = Arc::new(RwLock::new((0u64, 0u64)));
        let readers_in = Arc::new(AtomicUsize::new(0));
        let peak_readers = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for i in 0..8 {
            let (l, readers_in, peak) = (l.clone(), readers_in.clone(), peak_readers.clone());
            hs.push(thread::spawn(move || {
                for _ in 0..500 {
                    if i % 4 == 0 {
                        let mut w = l.write().unwrap();
                        assert_eq!(readers_in.load(SeqCst), 0);
                        w.0 += 1;
                        thread::yield_now();
                        w.1 += 1;
                    } else {
                        let r = l.read().unwrap();
                        peak.fetch_max(readers_in.fetch_add(1, SeqCst) + 1, SeqCst);
                        assert_eq!(r.0, r.1, "a reader saw a half-done write");
                        thread::yield_now();
                        readers_in.fetch_sub(1, SeqCst);
                    }
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*l.read().unwrap(), (1000, 1000));
        assert!(peak_readers.load(SeqCst) > 1, "readers never overlapped");
    });
}

#[test]
fn a_waiting_writer_is_not_starved_by_new_readers_and_order_is_fifo() {
    rt(1).run(|| {
        let l = Arc::new(RwLock::new(Vec::new()));
        let announced = Arc::new(AtomicUsize::new(0));
        let first_reader = l.read().unwrap();
        let spawn = |write: bool| {
            let (l, announced) = (l.clone(), announced.clone());
            thread::spawn(move || {
                let ticket = announced.fetch_add(1, SeqCst);
                if write {
                    l.write().unwrap().push(("w", ticket));
                } else {
                    let _r = l.read().unwrap();
                    // Readers record under the write lock afterwards would
                    // reorder; record through a short write instead.
                    drop(_r);
                    l.write().unwrap().push(("r", ticket));
                }
            })
        };
        let w = spawn(true);
        until_announced(&announced, 1);
        // A new reader waits behind the queued writer.
        assert!(matches!(l.try_read(), Err(TryLockError::WouldBlock)));
        let r = spawn(false);
        until_announced(&announced, 2);
        drop(first_reader);
        w.join().unwrap();
        r.join().unwrap();
        assert_eq!(*l.read().unwrap(), [("w", 0), ("r", 1)]);
    });
}

#[test]
fn timeouts_and_cancelled_writer_hands_the_lock_on() {
    rt(1).run(|| {
        let l = Arc::new(RwLock::new(0));
        let r = l.read().unwrap();
        assert!(matches!(
            l.write_timeout(Duration::from_millis(10)),
            Err(TryLockError::WouldBlock)
        ));
        assert!(l.read_timeout(Duration::from_millis(10)).is_ok());
        let announced = Arc::new(AtomicUsize::new(0));
        let (l2, a2) = (l.clone(), announced.clone());
        let writer = thread::spawn(move || {
            a2.fetch_add(1, SeqCst);
            *l2.write().unwrap() = 1;
        });
        until_announced(&announced, 1);
        let (l3, a3) = (l.clone(), announced.clone());
        let reader = thread::spawn(move || {
            a3.fetch_add(1, SeqCst);
            *l3.read().unwrap()
        });
        until_announced(&announced, 2);
        drop(r); // grants the writer...
        writer.kill(); // ...which unwinds before using it: the reader gets in
        assert!(writer.join().unwrap_err().is_killed());
        assert_eq!(reader.join().unwrap(), 0);
        assert!(!l.is_poisoned());
        assert!(l.try_write().is_ok());
    });
}

#[test]
fn writer_panic_poisons_reader_panic_does_not() {
    rt(1).run(|| {
        let l = Arc::new(RwLock::new(0));
        let l2 = l.clone();
        let _ = thread::spawn(move || {
            let _r = l2.read().unwrap();
            panic!("reader");
        })
        .join();
        assert!(!l.is_poisoned());
        let l3 = l.clone();
        let _ = thread::spawn(move || {
            let _w = l3.write().unwrap();
            panic!("writer");
        })
        .join();
        assert!(l.is_poisoned());
        assert!(l.read().is_err());
        l.clear_poison();
        assert_eq!(*l.read().unwrap(), 0);
    });
}

#[test]
fn os_thread_writer_wakes_green_readers() {
    let rt = rt(2);
    let l = Arc::new(RwLock::new(String::new()));
    let w = l.write().unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let l = l.clone();
            rt.handle().spawn(move || l.read().unwrap().clone())
        })
        .collect();
    let mut w = w;
    w.push_str("written");
    drop(w);
    for r in readers {
        assert_eq!(r.join().unwrap(), "written");
    }
}
