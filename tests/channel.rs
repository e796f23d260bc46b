//! Channels: bounded, unbounded, rendezvous; MPMC across workers and OS
//! threads; close/drop semantics; timeouts; cancellation while waiting (no
//! message lost); select.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::channel::{
    self, RecvTimeoutError, Select, SendTimeoutError, TryRecvError, TrySendError,
};
use greenhouse::runtime::Runtime;
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Yields until `n` green threads have announced they are about to wait,
/// then lets them settle into the channel's queue (a waiter spins a few
/// rounds first; on one worker each yield runs every ready green thread
/// once).
fn until_announced(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        thread::yield_now();
    }
    for _ in 0..50 {
        thread::yield_now();
    }
}

/// The stress test: 100 producers x 10,000 messages through one
/// bounded channel on two workers; two consumers; every message arrives
/// exactly once, and each producer's messages arrive in order.
#[test]
fn hundred_producers_times_ten_thousand_messages_each_received_once() {
    const PRODUCERS: usize = 100;
    const EACH: usize = 10_000;
    rt(2).run(|| {
        let (tx, rx) = channel::bounded::<(u32, u32)>(64);
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    tx.send((p as u32, i as u32)).unwrap();
                }
            });
        }
        drop(tx);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    let mut seen = vec![0u8; PRODUCERS * EACH];
                    let mut last = vec![None::<u32>; PRODUCERS];
                    for (p, i) in rx.iter() {
                        seen[p as usize * EACH + i as usize] += 1;
                        assert!(
                            last[p as usize] < Some(i),
                            "producer {p}'s messages out of order"
                        );
                        last[p as usize] = Some(i);
                    }
                    seen
                })
            })
            .collect();
        drop(rx);
        let mut total = vec![0u8; PRODUCERS * EACH];
        for c in consumers {
            for (t, s) in total.iter_mut().zip(c.join().unwrap()) {
                *t += s;
            }
        }
        assert!(
            total.iter().all(|&n| n == 1),
            "a message was lost or duplicated"
        );
    });
}

#[test]
fn bounded_unbounded_and_rendezvous_basics() {
    let (tx, rx) = channel::bounded(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert!(tx.is_full() && rx.is_full());
    assert_eq!((tx.len(), tx.capacity()), (2, Some(2)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    let (tx, rx) = channel::unbounded();
    for i in 0..10_000 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().count(), 10_000);

    let (tx, rx) = channel::rendezvous::<u8>();
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    assert!(tx.is_full());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn rendezvous_send_returns_only_once_received() {
    rt(2).run(|| {
        let (tx, rx) = channel::rendezvous();
        let received = Arc::new(AtomicUsize::new(0));
        let r2 = received.clone();
        let consumer = thread::spawn(move || {
            for _ in 0..100 {
                let v: usize = rx.recv().unwrap();
                r2.store(v + 1, SeqCst);
            }
        });
        for i in 0..100 {
            tx.send(i).unwrap();
            // The receiver has taken message i (it may not have stored it
            // yet, but it cannot be behind by more than this one).
            assert!(received.load(SeqCst) >= i);
        }
        consumer.join().unwrap();
    });
}

#[test]
fn dropping_all_senders_ends_iteration_after_the_buffer() {
    rt(2).run(|| {
        let (tx, rx) = channel::bounded(10);
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        let waiter = {
            let rx = rx.clone();
            thread::spawn(move || rx.iter().collect::<Vec<_>>())
        };
        drop(tx);
        thread::sleep(Duration::from_millis(5));
        tx2.send(3).unwrap();
        drop(tx2);
        let mut got = waiter.join().unwrap();
        got.extend(rx.iter());
        got.sort();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Disconnected)
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

#[test]
fn dropping_all_receivers_fails_sends_and_wakes_blocked_senders_with_their_message() {
    rt(1).run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(String::from("buffered")).unwrap();
        let announced = Arc::new(AtomicUsize::new(0));
        let (tx2, a2) = (tx.clone(), announced.clone());
        let blocked = thread::spawn(move || {
            a2.fetch_add(1, SeqCst);
            tx2.send(String::from("blocked"))
        });
        until_announced(&announced, 1);
        drop(rx);
        assert_eq!(blocked.join().unwrap().unwrap_err().0, "blocked");
        assert_eq!(tx.send("late".into()).unwrap_err().0, "late");
        assert!(matches!(
            tx.try_send("x".into()),
            Err(TrySendError::Disconnected(_))
        ));
    });
}

#[test]
fn timeouts_give_the_message_back() {
    rt(1).run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(1).unwrap();
        let start = Instant::now();
        assert_eq!(
            tx.send_timeout(2, Duration::from_millis(20)),
            Err(SendTimeoutError::Timeout(2))
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(rx.recv(), Ok(1));
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        // The timed-out waiters left no trace.
        tx.send(3).unwrap();
        assert_eq!(rx.recv(), Ok(3));
    });
}

#[test]
fn receiver_killed_after_a_message_was_handed_to_it_gives_it_back() {
    for cap in [0, 1] {
        rt(1).run(move || {
            let (tx, rx) = channel::bounded::<&str>(cap);
            let announced = Arc::new(AtomicUsize::new(0));
            let receiver = |rx: channel::Receiver<&'static str>, a: Arc<AtomicUsize>| {
                thread::spawn(move || {
                    a.fetch_add(1, SeqCst);
                    rx.recv_timeout(Duration::from_secs(30))
                })
            };
            let first = receiver(rx.clone(), announced.clone());
            until_announced(&announced, 1);
            let second = receiver(rx.clone(), announced.clone());
            until_announced(&announced, 2);
            // Handed straight to `first` (it waits, the buffer is empty)...
            tx.try_send("precious").unwrap();
            // ...which is killed before it runs again.
            first.kill();
            assert!(first.join().unwrap_err().is_killed());
            assert_eq!(second.join().unwrap(), Ok("precious"), "cap {cap}");
        });
    }
}

#[test]
fn sender_killed_while_waiting_does_not_deliver_and_others_still_flow() {
    rt(1).run(|| {
        let (tx, rx) = channel::bounded(1);
        tx.send(0).unwrap();
        let announced = Arc::new(AtomicUsize::new(0));
        let (t1, a1) = (tx.clone(), announced.clone());
        let killed = thread::spawn(move || {
            a1.fetch_add(1, SeqCst);
            t1.send(1).unwrap();
        });
        until_announced(&announced, 1);
        let (t2, a2) = (tx.clone(), announced.clone());
        let kept = thread::spawn(move || {
            a2.fetch_add(1, SeqCst);
            t2.send(2).unwrap();
        });
        until_announced(&announced, 2);
        killed.kill();
        assert!(killed.join().unwrap_err().is_killed());
        assert_eq!(rx.recv(), Ok(0));
        kept.join().unwrap();
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn timeout_scope_interrupts_recv_and_send() {
    rt(2).run(|| {
        let (tx, rx) = channel::bounded::<u8>(0);
        let limit = Duration::from_millis(20);
        assert!(greenhouse::time::timeout(limit, || rx.recv()).is_err());
        assert!(greenhouse::time::timeout(limit, || tx.send(1)).is_err());
        // Nothing stale is left: a real pair still meets.
        let h = thread::spawn(move || rx.recv().unwrap());
        tx.send(9).unwrap();
        assert_eq!(h.join().unwrap(), 9);
    });
}

#[test]
fn os_threads_and_green_threads_on_both_ends() {
    let rt = rt(2);
    let (tx, rx) = channel::bounded::<u64>(4);
    let (back_tx, back_rx) = channel::unbounded::<u64>();
    // Green echo servers...
    let greens: Vec<_> = (0..3)
        .map(|_| {
            let (rx, back_tx) = (rx.clone(), back_tx.clone());
            rt.handle().spawn(move || {
                for v in rx.iter() {
                    back_tx.send(v * 2).unwrap();
                }
            })
        })
        .collect();
    drop((rx, back_tx));
    // ...fed by OS threads.
    let oses: Vec<_> = (0..3)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    tx.send(t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for t in oses {
        t.join().unwrap();
    }
    let sum: u64 = back_rx.iter().sum();
    assert_eq!(sum, 2 * (0..3000).sum::<u64>());
    for g in greens {
        g.join().unwrap();
    }
}

#[test]
fn ping_pong_on_one_worker() {
    for cap in [0, 1] {
        rt(1).run(move || {
            let (ping_tx, ping_rx) = channel::bounded::<u32>(cap);
            let (pong_tx, pong_rx) = channel::bounded::<u32>(cap);
            let h = thread::spawn(move || {
                for v in ping_rx.iter() {
                    pong_tx.send(v + 1).unwrap();
                }
            });
            let mut v = 0;
            for _ in 0..10_000 {
                ping_tx.send(v).unwrap();
                v = pong_rx.recv().unwrap();
            }
            assert_eq!(v, 10_000);
            drop(ping_tx);
            h.join().unwrap();
        });
    }
}

#[test]
fn select_receives_from_whichever_is_ready_and_times_out() {
    rt(2).run(|| {
        let (tx1, rx1) = channel::unbounded::<u32>();
        let (tx2, rx2) = channel::unbounded::<u32>();
        let mut sel = Select::new();
        let a = sel.recv(&rx1);
        let b = sel.recv(&rx2);
        assert!(sel.try_select().is_err());
        assert!(sel.select_timeout(Duration::from_millis(10)).is_err());
        let h = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            tx2.send(2).unwrap();
            (tx1, tx2) // a dropped tx2 would make rx2 ready (disconnected)
        });
        let oper = sel.select();
        assert_eq!(oper.index(), b);
        assert_eq!(oper.recv(&rx2), Ok(2));
        let (tx1, _tx2) = h.join().unwrap();
        tx1.send(1).unwrap();
        let oper = sel.select();
        assert_eq!(oper.index(), a);
        assert_eq!(oper.recv(&rx1), Ok(1));
    });
}

#[test]
fn select_is_fair_when_both_are_ready() {
    let (tx1, rx1) = channel::unbounded::<u8>();
    let (tx2, rx2) = channel::unbounded::<u8>();
    for _ in 0..100 {
        tx1.send(1).unwrap();
        tx2.send(2).unwrap();
    }
    let mut counts = [0; 3];
    let mut sel = Select::new();
    sel.recv(&rx1);
    sel.recv(&rx2);
    for _ in 0..100 {
        let oper = sel.select();
        let v = match oper.index() {
            0 => oper.recv(&rx1).unwrap(),
            _ => oper.recv(&rx2).unwrap(),
        };
        counts[v as usize] += 1;
    }
    assert!(counts[1] >= 30 && counts[2] >= 30, "{counts:?}");
}

#[test]
fn select_mixes_sends_and_receives_and_reports_disconnection() {
    rt(1).run(|| {
        let (full_tx, full_rx) = channel::bounded::<u8>(1);
        full_tx.send(0).unwrap();
        let (_in_tx, in_rx) = channel::unbounded::<u8>();
        let mut sel = Select::new();
        let send = sel.send(&full_tx);
        let recv = sel.recv(&in_rx);
        let _ = recv;
        // Frees a slot later: the blocked select send is chosen then.
        let h = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            full_rx.recv().unwrap();
            full_rx
        });
        let oper = sel.select();
        assert_eq!(oper.index(), send);
        oper.send(&full_tx, 5).unwrap();
        let full_rx = h.join().unwrap();
        assert_eq!(full_rx.recv(), Ok(5));

        let (dead_tx, dead_rx) = channel::unbounded::<u8>();
        drop(dead_tx);
        let mut sel = Select::new();
        sel.recv(&dead_rx);
        assert!(sel.select().recv(&dead_rx).is_err());
    });
}

#[test]
fn two_selects_meet_on_a_rendezvous_channel() {
    rt(2).run(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let (_other_tx, other_rx) = channel::unbounded::<u32>();
        let sender = thread::spawn(move || {
            for i in 0..100 {
                let mut sel = Select::new();
                sel.send(&tx);
                sel.select().send(&tx, i).unwrap();
            }
        });
        let mut got = Vec::new();
        for _ in 0..100 {
            let mut sel = Select::new();
            let r = sel.recv(&rx);
            sel.recv(&other_rx);
            let oper = sel.select();
            assert_eq!(oper.index(), r);
            got.push(oper.recv(&rx).unwrap());
        }
        sender.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn select_killed_after_a_message_was_handed_to_it_gives_it_back() {
    rt(1).run(|| {
        let (tx, rx) = channel::rendezvous::<&str>();
        let announced = Arc::new(AtomicUsize::new(0));
        let (rx1, a1) = (rx.clone(), announced.clone());
        let selector = thread::spawn(move || {
            let mut sel = Select::new();
            sel.recv(&rx1);
            a1.fetch_add(1, SeqCst);
            sel.select().recv(&rx1)
        });
        until_announced(&announced, 1);
        let (rx2, a2) = (rx.clone(), announced.clone());
        let plain = thread::spawn(move || {
            a2.fetch_add(1, SeqCst);
            rx2.recv_timeout(Duration::from_secs(30))
        });
        until_announced(&announced, 2);
        tx.try_send("precious").unwrap(); // handed to the select...
        selector.kill(); // ...which unwinds without taking it
        assert!(selector.join().unwrap_err().is_killed());
        assert_eq!(plain.join().unwrap(), Ok("precious"));
    });
}

#[test]
fn unfinished_selected_operation_gives_back_what_it_holds() {
    let (tx, rx) = channel::bounded::<u8>(1);
    let mut sel = Select::new();
    sel.send(&tx);
    drop(sel.select()); // reserved the only slot, then gave it back
    assert_eq!(tx.try_send(1), Ok(()));
    let mut sel = Select::new();
    sel.recv(&rx);
    drop(sel.select()); // took the message, then gave it back
    assert_eq!(rx.try_recv(), Ok(1));
}

/// Same-worker wake-ups are made in place without counting a reference
/// (`park::WakeHandle::Local`). A receiver that has used up its spin (six
/// yields) and parked for real must still be scheduled by a sender on its
/// own worker; one still spinning must see its message. Each round parks
/// the receivers behind a sleeping sender, then sends to them.
#[test]
fn same_worker_wakes_reach_parked_and_spinning_receivers() {
    rt(1).run(|| {
        for round in 0..20u32 {
            let (tx, rx) = channel::unbounded::<u32>();
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    thread::spawn(move || rx.recv().unwrap())
                })
                .collect();
            if round % 2 == 0 {
                // Long enough for the receivers to give up spinning and park.
                thread::sleep(Duration::from_millis(2));
            }
            for i in 0..3 {
                tx.send(round * 10 + i).unwrap();
            }
            let mut got: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            got.sort();
            assert_eq!(got, [round * 10, round * 10 + 1, round * 10 + 2]);
        }
    });
}

/// Wake-ups from an OS thread (or another worker) count a reference to the
/// woken green thread (`park::WakeHandle::Later`), because it may run and
/// finish the moment it sees its message, before the waker has unparked
/// it: receivers that finish at once, woken by an OS thread, thousands of
/// times on two workers.
#[test]
fn receivers_woken_from_an_os_thread_may_finish_at_once() {
    const N: u32 = 2_000;
    let rt = rt(2);
    let (tx, rx) = channel::rendezvous::<u32>();
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            tx.send(i).unwrap();
        }
    });
    let sum: u64 = rt.run(move || {
        let mut sum = 0u64;
        for _ in 0..N / 100 {
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    let rx = rx.clone();
                    thread::spawn(move || rx.recv().unwrap() as u64)
                })
                .collect();
            sum += hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
        }
        sum
    });
    sender.join().unwrap();
    assert_eq!(sum, (0..N as u64).sum::<u64>());
}
