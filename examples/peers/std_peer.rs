//! One OS thread per task (`std::thread`, default settings): the baseline a
//! Rust user has without any runtime. "Workers" do not apply; the harness
//! pins the process to one CPU where the others get one worker.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::measure::Sampler;
use crate::proto::{self, Proto};

pub fn spawn_join(s: &Sampler) -> f64 {
    s.ns_per_op(|n| {
        let t = Instant::now();
        for _ in 0..n {
            std::thread::spawn(|| ()).join().unwrap();
        }
        t.elapsed()
    })
}

pub fn yield_now(s: &Sampler) -> f64 {
    s.ns_per_op(|n| {
        let t = Instant::now();
        for _ in 0..n {
            std::thread::yield_now();
        }
        t.elapsed()
    })
}

pub fn pingpong(s: &Sampler) -> Option<f64> {
    Some(s.ns_per_op(|n| {
        let (to_pong, pong_rx) = mpsc::channel::<u64>();
        let (to_ping, ping_rx) = mpsc::channel::<u64>();
        let pong = std::thread::spawn(move || {
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
    }))
}

/// `n` OS threads each sleeping `dur`.
///
/// # Errors
/// How many threads could be started before the OS refused one, and why.
pub fn sleepers(n: usize, dur: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    let mut hs = Vec::with_capacity(n);
    let mut failed = None;
    for _ in 0..n {
        match std::thread::Builder::new().spawn(move || std::thread::sleep(dur)) {
            Ok(h) => hs.push(h),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let started = hs.len();
    for h in hs {
        h.join().unwrap();
    }
    match failed {
        None => Ok(t.elapsed()),
        Some(e) => Err(format!("the OS refused thread {} of {n}: {e}", started + 1)),
    }
}

pub fn serve(proto: Proto, ready: mpsc::Sender<SocketAddr>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    ready.send(l.local_addr().unwrap()).unwrap();
    let mut reported = false;
    for s in l.incoming() {
        let r = s.and_then(|s| {
            let _ = s.set_nodelay(true);
            std::thread::Builder::new()
                .spawn(move || {
                    let _ = proto::serve_conn(s, proto);
                })
                .map(drop)
        });
        if let Err(e) = r {
            if !reported {
                eprintln!("peers: std accept/spawn: {e}");
                reported = true;
            }
        }
    }
}
