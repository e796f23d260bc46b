//! Condvar (the seeds' hide-and-seek) and Barrier: wake-ups across workers
//! and OS threads, FIFO notify, timeouts, cancellation (a notification is
//! never lost).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use greenhouse::runtime::Runtime;
use greenhouse::sync::{Barrier, Condvar, Mutex};
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Yields until `n` waiters have announced themselves (under the mutex,
/// just before waiting), then lets them settle into the condvar's queue (a
/// waiter spins a few rounds after queueing; on one worker each yield runs
/// every ready green thread once).
fn until_announced(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        thread::yield_now();
    }
    for _ in 0..50 {
        thread::yield_now();
    }
}

/// The seeds' hide-and-seek (S0 L568–633): two players take turns through
/// one Condition. The seed relies on start order; here a turn counter makes
/// it hold on any number of workers.
#[test]
fn hide_and_seek() {
    for workers in [1, 2] {
        let transcript = rt(workers).run(|| {
            let game = Arc::new((Mutex::new((0u32, Vec::new())), Condvar::new()));
            let play = |me: &'static str, my_turns: &'static [(u32, &'static str)]| {
                let game = game.clone();
                thread::spawn(move || {
                    let (m, cv) = &*game;
                    for &(turn, line) in my_turns {
                        let mut g = cv
                            .wait_while(m.lock().unwrap(), |(t, _)| *t != turn)
                            .unwrap();
                        g.1.push(format!("{me}: {line}"));
                        g.0 += 1;
                        cv.notify_all();
                    }
                })
            };
            let hider = play("Hider", &[(1, "I'm hidden"), (4, "you found me")]);
            let seeker = play(
                "Seeker",
                &[(0, "my eyes are covered"), (2, "found you"), (3, "I won")],
            );
            seeker.join().unwrap();
            hider.join().unwrap();
            let g = game.0.lock().unwrap();
            g.1.clone()
        });
        assert_eq!(
            transcript,
            [
                "Seeker: my eyes are covered",
                "Hider: I'm hidden",
                "Seeker: found you",
                "Seeker: I won",
                "Hider: you found me"
            ],
            "{workers} workers"
        );
    }
}

#[test]
fn notify_one_wakes_waiters_in_fifo_order_notify_all_wakes_the_rest() {
    rt(1).run(|| {
        let state = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let announced = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (state, announced) = (state.clone(), announced.clone());
                thread::spawn(move || {
                    let (m, cv) = &*state;
                    let g = m.lock().unwrap();
                    let ticket = announced.fetch_add(1, SeqCst);
                    let mut g = cv.wait(g).unwrap();
                    g.push(ticket);
                })
            })
            .collect();
        until_announced(&announced, 4);
        let (m, cv) = &*state;
        cv.notify_one();
        cv.notify_one();
        until_announced(&announced, 4);
        assert_eq!(*m.lock().unwrap(), [0, 1]);
        cv.notify_all();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), [0, 1, 2, 3]);
    });
}

#[test]
fn killed_waiter_passes_its_notification_on() {
    rt(1).run(|| {
        let state = Arc::new((Mutex::new(()), Condvar::new()));
        let announced = Arc::new(AtomicUsize::new(0));
        let waiter = || {
            let (state, announced) = (state.clone(), announced.clone());
            thread::spawn(move || {
                let (m, cv) = &*state;
                let g = m.lock().unwrap();
                announced.fetch_add(1, SeqCst);
                let (_g, r) = cv.wait_timeout(g, Duration::from_secs(30)).unwrap();
                !r.timed_out()
            })
        };
        let first = waiter();
        until_announced(&announced, 1);
        let second = waiter();
        until_announced(&announced, 2);
        state.1.notify_one(); // goes to `first`...
        first.kill(); // ...which unwinds without acting on it
        assert!(first.join().unwrap_err().is_killed());
        assert!(second.join().unwrap(), "the notification was lost");
    });
}

#[test]
fn wait_timeout_and_wait_timeout_while() {
    rt(1).run(|| {
        let (m, cv) = (Mutex::new(0), Condvar::new());
        let (g, r) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(10))
            .unwrap();
        assert!(r.timed_out());
        let (g, r) = cv
            .wait_timeout_while(g, Duration::from_millis(10), |v| *v == 0)
            .unwrap();
        assert!(r.timed_out());
        assert_eq!(*g, 0);
        drop(g);
        // A timed-out waiter left the queue: a notify reaches nobody stale.
        cv.notify_one();
    });
}

#[test]
fn os_thread_and_green_thread_notify_each_other() {
    let rt = rt(2);
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let s2 = state.clone();
    let green = rt.handle().spawn(move || {
        let (m, cv) = &*s2;
        for round in 0..100 {
            let mut g = cv
                .wait_while(m.lock().unwrap(), |v| *v != 2 * round + 1)
                .unwrap();
            *g += 1;
            cv.notify_all();
        }
    });
    let (m, cv) = &*state;
    for round in 0..100 {
        let mut g = cv
            .wait_while(m.lock().unwrap(), |v| *v != 2 * round)
            .unwrap();
        *g += 1;
        cv.notify_all();
    }
    green.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 200);
}

#[test]
fn barrier_releases_all_with_one_leader_for_several_generations() {
    let rt = rt(2);
    let barrier = Arc::new(Barrier::new(6));
    let leaders = Arc::new(AtomicUsize::new(0));
    let passed = Arc::new(AtomicUsize::new(0));
    let greens: Vec<_> = (0..5)
        .map(|_| {
            let (b, l, p) = (barrier.clone(), leaders.clone(), passed.clone());
            rt.handle().spawn(move || {
                for _ in 0..3 {
                    if b.wait().is_leader() {
                        l.fetch_add(1, SeqCst);
                    }
                    p.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for _ in 0..3 {
        if barrier.wait().is_leader() {
            leaders.fetch_add(1, SeqCst);
        }
        passed.fetch_add(1, SeqCst);
    }
    for h in greens {
        h.join().unwrap();
    }
    assert_eq!(leaders.load(SeqCst), 3);
    assert_eq!(passed.load(SeqCst), 18);
}

#[test]
fn barrier_arrivals_that_time_out_or_are_killed_are_withdrawn() {
    rt(1).run(|| {
        let b = Arc::new(Barrier::new(2));
        assert!(b.wait_timeout(Duration::from_millis(5)).is_none());
        let b2 = b.clone();
        let killed = thread::spawn(move || b2.wait());
        thread::yield_now();
        killed.kill();
        assert!(killed.join().unwrap_err().is_killed());
        // Neither arrival counts: a lone try_wait does not release it...
        assert!(b.try_wait().is_none());
        // ...but two live arrivals do.
        let b3 = b.clone();
        let other = thread::spawn(move || b3.wait().is_leader());
        let me = b.wait().is_leader();
        assert!(me ^ other.join().unwrap());
    });
}
