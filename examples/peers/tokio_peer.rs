//! tokio's side of every workload: the current-thread runtime where one
//! worker is asked for, the multi-thread runtime otherwise; everything runs
//! in spawned tasks (inside the runtime), not in `block_on`'s future.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use crate::measure::{Countdown, Lateness, Sampler};
use crate::proto::{self, Proto, CONN_BUF, HTTP_RESPONSE};
use crate::workload::{CostOut, ScaleTimes};

fn runtime(workers: usize) -> Runtime {
    let mut b = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    b.enable_all().build().expect("tokio runtime")
}

/// Runs `fut` as a spawned task and waits for its output.
fn inside<T: Send + 'static>(
    rt: &Runtime,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async move { tokio::spawn(fut).await.unwrap() })
}

pub fn spawn_join(workers: usize, s: &Sampler) -> f64 {
    let rt = runtime(workers);
    s.ns_per_op(|n| {
        inside(&rt, async move {
            let t = Instant::now();
            for _ in 0..n {
                tokio::spawn(async {}).await.unwrap();
            }
            t.elapsed()
        })
    })
}

pub fn yield_now(workers: usize, s: &Sampler) -> f64 {
    let rt = runtime(workers);
    s.ns_per_op(|n| {
        inside(&rt, async move {
            let t = Instant::now();
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
            t.elapsed()
        })
    })
}

pub fn pingpong(workers: usize, s: &Sampler) -> Option<f64> {
    let rt = runtime(workers);
    Some(s.ns_per_op(|n| {
        inside(&rt, async move {
            let (to_pong, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            let (to_ping, mut ping_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            let pong = tokio::spawn(async move {
                while let Some(v) = pong_rx.recv().await {
                    if to_ping.send(v).is_err() {
                        break;
                    }
                }
            });
            let t = Instant::now();
            for i in 0..n {
                to_pong.send(i).unwrap();
                ping_rx.recv().await.unwrap();
            }
            let e = t.elapsed();
            drop(to_pong);
            pong.await.unwrap();
            e
        })
    }))
}

pub fn sleepers(workers: usize, n: usize, dur: Duration) -> Duration {
    let rt = runtime(workers);
    inside(&rt, async move {
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| tokio::spawn(tokio::time::sleep(dur)))
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    })
}

async fn serve_conn(mut s: tokio::net::TcpStream, proto: Proto) -> std::io::Result<()> {
    let mut buf = [0u8; CONN_BUF];
    match proto {
        Proto::Echo => loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n]).await?;
        },
        Proto::Http => {
            let mut filled = 0;
            loop {
                let n = s.read(&mut buf[filled..]).await?;
                if n == 0 {
                    return Ok(());
                }
                filled += n;
                let (reqs, used) = proto::http_requests(&buf[..filled])?;
                for _ in 0..reqs {
                    s.write_all(HTTP_RESPONSE).await?;
                }
                buf.copy_within(used..filled, 0);
                filled -= used;
                if filled == buf.len() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "request larger than the buffer",
                    ));
                }
            }
        }
    }
}

pub fn serve(workers: usize, proto: Proto, ready: mpsc::Sender<SocketAddr>) {
    let rt = runtime(workers);
    inside(&rt, async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        ready.send(l.local_addr().unwrap()).unwrap();
        let mut reported = false;
        loop {
            match l.accept().await {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    tokio::spawn(async move {
                        let _ = serve_conn(s, proto).await;
                    });
                }
                Err(e) if !reported => {
                    eprintln!("peers: tokio accept: {e}");
                    reported = true;
                }
                Err(_) => {}
            }
        }
    });
}

/// Sleeps 1 ms at a time until every task has arrived; returns when the last did.
async fn wait(cd: &Countdown) -> Instant {
    loop {
        if let Some(t) = cd.finished_at() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
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
    let times = inside(&rt, async move {
        let started = Arc::new(Countdown::new(n));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (started, late) = (started.clone(), late.clone());
                tokio::spawn(async move {
                    let due = Instant::now() + dur;
                    started.arrive();
                    tokio::time::sleep(dur).await;
                    late.record(i, Instant::now().saturating_duration_since(due));
                })
            })
            .collect();
        let spawned = t0.elapsed();
        let all_started = wait(&started).await - t0;
        on_parked();
        for h in hs {
            h.await.unwrap();
        }
        ScaleTimes {
            spawned,
            all_started,
        }
    });
    std::mem::forget(rt);
    times
}

pub fn cost_spawn(workers: usize, live: usize, s: Sampler) -> CostOut {
    let rt = runtime(workers);
    let ramp_ns = inside(&rt, async move {
        let started = Arc::new(Countdown::new(live));
        let t0 = Instant::now();
        let hs: Vec<_> = (0..live)
            .map(|_| {
                let started = started.clone();
                tokio::spawn(async move {
                    started.arrive();
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                })
            })
            .collect();
        let ramp_ns = (wait(&started).await - t0).as_nanos() as f64 / live as f64;
        std::mem::forget(hs);
        ramp_ns
    });
    // The sampler's batches are synchronous closures: each runs one batch as
    // a spawned task while the live tasks stay parked in the runtime.
    let spawn_join_ns = s.ns_per_op(|n| {
        inside(&rt, async move {
            let t = Instant::now();
            for _ in 0..n {
                tokio::spawn(async {}).await.unwrap();
            }
            t.elapsed()
        })
    });
    let yield_ns = s.ns_per_op(|n| {
        inside(&rt, async move {
            let t = Instant::now();
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
            t.elapsed()
        })
    });
    std::mem::forget(rt);
    CostOut {
        ramp_ns,
        spawn_join_ns,
        yield_ns,
    }
}

/// `live` tasks waiting at a gate (a semaphore with no permits); released
/// together, each yields `k` times. Returns ns per switch.
pub fn cost_switch(workers: usize, live: usize, k: usize) -> f64 {
    let rt = runtime(workers);
    let ns = inside(&rt, async move {
        let started = Arc::new(Countdown::new(live));
        let done = Arc::new(Countdown::new(live));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let hs: Vec<_> = (0..live)
            .map(|_| {
                let (started, done, gate) = (started.clone(), done.clone(), gate.clone());
                tokio::spawn(async move {
                    started.arrive();
                    gate.acquire().await.unwrap().forget();
                    for _ in 0..k {
                        tokio::task::yield_now().await;
                    }
                    done.arrive();
                })
            })
            .collect();
        wait(&started).await;
        gate.add_permits(live);
        // One worker: none of them runs before this task waits in join.
        let t0 = Instant::now();
        for h in hs {
            h.await.unwrap();
        }
        let t1 = done.finished_at().expect("every task finished");
        (t1 - t0).as_nanos() as f64 / (live * k) as f64
    });
    std::mem::forget(rt);
    ns
}
