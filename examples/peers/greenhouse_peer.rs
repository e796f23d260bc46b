//! greenhouse's side of every workload: green threads, default settings
//! (256 KiB lazily-committed stacks, monitor and deadlock detection on) but
//! for the worker count.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenhouse::runtime::Runtime;
use greenhouse::{channel, net, thread};

use crate::measure::{Countdown, Lateness, Sampler};
use crate::proto::{self, Proto};
use crate::workload::{CostOut, ScaleTimes};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("greenhouse: cannot start the runtime")
}

pub fn spawn_join(workers: usize, s: &Sampler) -> f64 {
    let rt = runtime(workers);
    s.ns_per_op(|n| {
        rt.run(move || {
            let t = Instant::now();
            for _ in 0..n {
                thread::spawn(|| ()).join().unwrap();
            }
            t.elapsed()
        })
    })
}

pub fn yield_now(workers: usize, s: &Sampler) -> f64 {
    let rt = runtime(workers);
    s.ns_per_op(|n| {
        rt.run(move || {
            let t = Instant::now();
            for _ in 0..n {
                thread::yield_now();
            }
            t.elapsed()
        })
    })
}

/// Round trips of a message between two green threads over two unbounded
/// channels (the others use their unbounded channels too).
pub fn pingpong(workers: usize, s: &Sampler) -> Option<f64> {
    let rt = runtime(workers);
    Some(s.ns_per_op(|n| {
        rt.run(move || {
            let (to_pong, pong_rx) = channel::unbounded::<u64>();
            let (to_ping, ping_rx) = channel::unbounded::<u64>();
            let pong = thread::spawn(move || {
                while let Ok(v) = pong_rx.recv() {
                    if to_ping.send(v).is_err() {
                        break;
                    }
                }
            });
            let t = Instant::now();
            for i in 0..n {
                to_pong.send(i).unwrap();
                ping_rx.recv().unwrap();
            }
            let e = t.elapsed();
            drop(to_pong);
            pong.join().unwrap();
            e
        })
    }))
}

pub fn sleepers(workers: usize, n: usize, dur: Duration) -> Duration {
    let rt = runtime(workers);
    rt.run(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| thread::spawn(move || thread::sleep(dur)))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed()
    })
}

pub fn serve(workers: usize, proto: Proto, ready: mpsc::Sender<SocketAddr>) {
    let rt = runtime(workers);
    rt.run(move || {
        let l = net::TcpListener::bind("127.0.0.1:0").expect("bind");
        ready.send(l.local_addr().unwrap()).unwrap();
        let mut reported = false;
        for s in l.incoming() {
            match s {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    thread::spawn(move || {
                        let _ = proto::serve_conn(s, proto);
                    });
                }
                Err(e) if !reported => {
                    eprintln!("peers: greenhouse accept: {e}");
                    reported = true;
                }
                Err(_) => {}
            }
        }
    });
}

/// Sleeps 1 ms at a time until every task has arrived; returns when the last did.
fn wait(cd: &Countdown) -> Instant {
    loop {
        if let Some(t) = cd.finished_at() {
            return t;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

pub fn scale_sleep(
    workers: usize,
    n: usize,
    dur: Duration,
    late: Arc<Lateness>,
    on_parked: impl FnOnce() + Send + 'static,
) -> ScaleTimes {
    let rt = runtime(workers);
    let times = rt.run(move || {
        let started = Arc::new(Countdown::new(n));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (started, late) = (started.clone(), late.clone());
                thread::spawn(move || {
                    let due = Instant::now() + dur;
                    started.arrive();
                    thread::sleep(dur);
                    late.record(i, Instant::now().saturating_duration_since(due));
                })
            })
            .collect();
        let spawned = t0.elapsed();
        let all_started = wait(&started) - t0;
        on_parked();
        for h in hs {
            h.join().unwrap();
        }
        ScaleTimes {
            spawned,
            all_started,
        }
    });
    std::mem::forget(rt); // the process exits next; skip tearing down a big runtime
    times
}

pub fn cost_spawn(workers: usize, live: usize, s: Sampler) -> CostOut {
    let rt = runtime(workers);
    let out = rt.run(move || {
        let started = Arc::new(Countdown::new(live));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..live)
            .map(|_| {
                let started = started.clone();
                thread::spawn(move || {
                    started.arrive();
                    thread::sleep(Duration::from_secs(3600));
                })
            })
            .collect();
        let ramp_ns = (wait(&started) - t0).as_nanos() as f64 / live as f64;
        let spawn_join_ns = s.ns_per_op(|n| {
            let t = Instant::now();
            for _ in 0..n {
                thread::spawn(|| ()).join().unwrap();
            }
            t.elapsed()
        });
        let yield_ns = s.ns_per_op(|n| {
            let t = Instant::now();
            for _ in 0..n {
                thread::yield_now();
            }
            t.elapsed()
        });
        std::mem::forget(hs);
        CostOut {
            ramp_ns,
            spawn_join_ns,
            yield_ns,
        }
    });
    std::mem::forget(rt);
    out
}

/// `live` green threads parked at a gate; released together, each yields
/// `k` times. Returns ns per switch.
pub fn cost_switch(workers: usize, live: usize, k: usize) -> f64 {
    let rt = runtime(workers);
    let ns = rt.run(move || {
        let started = Arc::new(Countdown::new(live));
        let done = Arc::new(Countdown::new(live));
        let go = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..live)
            .map(|_| {
                let (started, done, go) = (started.clone(), done.clone(), go.clone());
                thread::spawn(move || {
                    started.arrive();
                    while !go.load(Acquire) {
                        thread::park();
                    }
                    for _ in 0..k {
                        thread::yield_now();
                    }
                    done.arrive();
                })
            })
            .collect();
        wait(&started);
        go.store(true, Release);
        for h in &hs {
            h.thread().unpark();
        }
        // One worker: none of them runs before this green thread parks in join.
        let t0 = Instant::now();
        for h in hs {
            h.join().unwrap();
        }
        let t1 = done.finished_at().expect("every green thread finished");
        (t1 - t0).as_nanos() as f64 / (live * k) as f64
    });
    std::mem::forget(rt);
    ns
}
