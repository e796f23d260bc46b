//! may's side of every workload: stackful coroutines spawned with `go!` (the
//! macro may's docs give for its `unsafe` spawn: the caller promises not to
//! block the worker thread or hold thread-locals across switches, which
//! these bodies do not), default settings (32 KiB stacks, workers pinned to
//! cores) but for the worker count.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use may::coroutine;
use may::go;

use crate::measure::{Countdown, Lateness, Sampler};
use crate::proto::{self, Proto};
use crate::workload::{CostOut, ScaleTimes};

fn configure(workers: usize) {
    may::config().set_workers(workers);
}

/// Runs `f` in a coroutine and waits for it from this OS thread.
fn inside<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    go!(f).join().unwrap()
}

pub fn spawn_join(workers: usize, s: &Sampler) -> f64 {
    configure(workers);
    s.ns_per_op(|n| {
        inside(move || {
            let t = Instant::now();
            for _ in 0..n {
                go!(|| ()).join().unwrap();
            }
            t.elapsed()
        })
    })
}

pub fn yield_now(workers: usize, s: &Sampler) -> f64 {
    configure(workers);
    s.ns_per_op(|n| {
        inside(move || {
            let t = Instant::now();
            for _ in 0..n {
                coroutine::yield_now();
            }
            t.elapsed()
        })
    })
}

pub fn pingpong(workers: usize, s: &Sampler) -> Option<f64> {
    configure(workers);
    Some(s.ns_per_op(|n| {
        inside(move || {
            let (to_pong, pong_rx) = may::sync::mpsc::channel::<u64>();
            let (to_ping, ping_rx) = may::sync::mpsc::channel::<u64>();
            let pong = go!(move || {
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
    configure(workers);
    inside(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n).map(|_| go!(move || coroutine::sleep(dur))).collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed()
    })
}

pub fn serve(workers: usize, proto: Proto, ready: mpsc::Sender<SocketAddr>) {
    configure(workers);
    inside(move || {
        let l = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        ready.send(l.local_addr().unwrap()).unwrap();
        let mut reported = false;
        for s in l.incoming() {
            match s {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    go!(move || {
                        let _ = proto::serve_conn(s, proto);
                    });
                }
                Err(e) if !reported => {
                    eprintln!("peers: may accept: {e}");
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
        coroutine::sleep(Duration::from_millis(1));
    }
}

pub fn scale_sleep(
    workers: usize,
    n: usize,
    dur: Duration,
    late: Arc<Lateness>,
    on_parked: impl FnOnce() + Send + 'static,
) -> ScaleTimes {
    configure(workers);
    inside(move || {
        let started = Arc::new(Countdown::new(n));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (started, late) = (started.clone(), late.clone());
                go!(move || {
                    let due = Instant::now() + dur;
                    started.arrive();
                    coroutine::sleep(dur);
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
    })
}

pub fn cost_spawn(workers: usize, live: usize, s: Sampler) -> CostOut {
    configure(workers);
    inside(move || {
        let started = Arc::new(Countdown::new(live));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..live)
            .map(|_| {
                let started = started.clone();
                go!(move || {
                    started.arrive();
                    coroutine::sleep(Duration::from_secs(3600));
                })
            })
            .collect();
        let ramp_ns = (wait(&started) - t0).as_nanos() as f64 / live as f64;
        let spawn_join_ns = s.ns_per_op(|n| {
            let t = Instant::now();
            for _ in 0..n {
                go!(|| ()).join().unwrap();
            }
            t.elapsed()
        });
        let yield_ns = s.ns_per_op(|n| {
            let t = Instant::now();
            for _ in 0..n {
                coroutine::yield_now();
            }
            t.elapsed()
        });
        std::mem::forget(hs);
        CostOut {
            ramp_ns,
            spawn_join_ns,
            yield_ns,
        }
    })
}

/// `live` coroutines parked at a gate; released together, each yields
/// `k` times. Returns ns per switch.
pub fn cost_switch(workers: usize, live: usize, k: usize) -> f64 {
    configure(workers);
    inside(move || {
        let started = Arc::new(Countdown::new(live));
        let done = Arc::new(Countdown::new(live));
        let go = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..live)
            .map(|_| {
                let (started, done, go) = (started.clone(), done.clone(), go.clone());
                go!(move || {
                    started.arrive();
                    while !go.load(Acquire) {
                        coroutine::park();
                    }
                    for _ in 0..k {
                        coroutine::yield_now();
                    }
                    done.arrive();
                })
            })
            .collect();
        wait(&started);
        go.store(true, Release);
        for h in &hs {
            h.coroutine().unpark();
        }
        // One worker: none of them runs before this coroutine parks in join.
        let t0 = Instant::now();
        for h in hs {
            h.join().unwrap();
        }
        let t1 = done.finished_at().expect("every coroutine finished");
        (t1 - t0).as_nanos() as f64 / (live * k) as f64
    })
}
