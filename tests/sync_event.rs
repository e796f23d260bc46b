//! Event (the seeds' "wake all"), AsyncResult and WaitGroup: across
//! workers and OS threads, timeouts, cancellation.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::sync::{AsyncResult, Event, WaitGroup};
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// The seeds' Event demo (S0 L518–544): threads wait on one event; a single
/// `set` wakes them all — green threads on two workers and an OS thread.
#[test]
fn set_wakes_every_waiter_on_every_worker_and_os_threads() {
    let rt = rt(2);
    let event = Arc::new(Event::new());
    let woke = Arc::new(AtomicUsize::new(0));
    let greens: Vec<_> = (0..20)
        .map(|_| {
            let (e, w) = (event.clone(), woke.clone());
            rt.handle().spawn(move || {
                e.wait();
                w.fetch_add(1, SeqCst);
            })
        })
        .collect();
    let (e, w) = (event.clone(), woke.clone());
    let os = std::thread::spawn(move || {
        e.wait();
        w.fetch_add(1, SeqCst);
    });
    assert!(!event.is_set());
    event.set();
    for h in greens {
        h.join().unwrap();
    }
    os.join().unwrap();
    assert_eq!(woke.load(SeqCst), 21);
}

/// Queued waiters are woken by `set` even if the event is cleared before
/// they run; later waiters wait for the next `set`.
#[test]
fn set_then_clear_still_releases_the_queued_waiters() {
    rt(1).run(|| {
        let event = Arc::new(Event::new());
        let announced = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (e, a) = (event.clone(), announced.clone());
                thread::spawn(move || {
                    a.fetch_add(1, SeqCst);
                    e.wait();
                })
            })
            .collect();
        while announced.load(SeqCst) < 3 {
            thread::yield_now();
        }
        event.set();
        event.clear();
        for h in hs {
            h.join().unwrap();
        }
        assert!(!event.wait_timeout(Duration::from_millis(5)));
    });
}

#[test]
fn event_wait_timeout_and_kill_while_waiting() {
    rt(1).run(|| {
        let event = Arc::new(Event::new());
        let start = Instant::now();
        assert!(!event.wait_timeout(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
        let e2 = event.clone();
        let h = thread::spawn(move || e2.wait());
        thread::yield_now();
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        event.set();
        assert!(event.wait_timeout(Duration::from_millis(1)));
    });
}

#[test]
fn async_result_set_from_an_os_thread_wakes_green_waiters_on_two_workers() {
    let rt = rt(2);
    let result: Arc<AsyncResult<String, String>> = Arc::new(AsyncResult::new());
    let waiters: Vec<_> = (0..6)
        .map(|_| {
            let r = result.clone();
            rt.handle().spawn(move || r.get())
        })
        .collect();
    let r2 = result.clone();
    std::thread::spawn(move || r2.set("done".into()).unwrap())
        .join()
        .unwrap();
    for w in waiters {
        assert_eq!(w.join().unwrap(), Ok("done".to_string()));
    }
    assert!(result.ready() && result.successful());
    assert_eq!(result.set("again".into()), Err("again".to_string()));
    assert_eq!(result.set_error("late".into()), Err("late".to_string()));
}

#[test]
fn async_result_error_timeout_and_into_inner() {
    rt(1).run(|| {
        let r: AsyncResult<u8, &str> = AsyncResult::new();
        assert_eq!(r.get_timeout(Duration::from_millis(5)), None);
        assert!(!r.wait_timeout(Duration::from_millis(1)));
        r.set_error("failed").unwrap();
        assert_eq!(r.get(), Err("failed"));
        assert!(r.ready() && !r.successful());
        assert_eq!(r.into_inner(), Some(Err("failed")));
    });
}

#[test]
fn wait_group_waits_for_every_clone_across_workers_and_os_threads() {
    let rt = rt(2);
    let wg = WaitGroup::new();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let (wg, d) = (wg.clone(), done.clone());
        rt.handle().spawn(move || {
            thread::sleep(Duration::from_millis(5));
            d.fetch_add(1, SeqCst);
            drop(wg);
        });
    }
    let (wg2, d) = (wg.clone(), done.clone());
    std::thread::spawn(move || {
        d.fetch_add(1, SeqCst);
        drop(wg2);
    });
    wg.wait();
    assert_eq!(done.load(SeqCst), 11);
}

#[test]
fn wait_group_timeout_and_a_killed_holder_counts_as_done() {
    rt(1).run(|| {
        let wg = WaitGroup::new();
        let held = wg.clone();
        let h = thread::spawn(move || {
            let _held = held;
            thread::sleep(Duration::from_secs(60));
        });
        let probe = wg.clone();
        assert!(!probe.wait_timeout(Duration::from_millis(5)));
        assert_eq!(wg.count(), 2);
        h.kill();
        let _ = h.join();
        wg.wait();
    });
}
