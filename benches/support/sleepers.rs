//! The sleeper workloads the runtime bench measures, shared with
//! `hub_profile`, which replays them to profile exactly what the bench runs:
//! green threads parked in a sleep and then killed (the RSS measurement the
//! bench makes before its criterion groups), and the 100 ms sleepers of its
//! `sleep_100ms_x100k` group.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhouse::thread::{self, JoinHandle};

/// Spawns `count` green threads that each sleep 2 s and returns once every
/// one of them has started (and so is parked in its sleep). Call from a
/// green thread.
pub fn spawn_parked_sleepers(count: usize) -> Vec<JoinHandle<()>> {
    let started = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..count)
        .map(|_| {
            let s = started.clone();
            thread::spawn(move || {
                s.fetch_add(1, SeqCst);
                thread::sleep(Duration::from_secs(2))
            })
        })
        .collect();
    while started.load(SeqCst) < count {
        thread::sleep(Duration::from_millis(5));
    }
    hs
}

/// Spawns `count` green threads that each sleep 100 ms and joins them all;
/// returns the wall time from the first spawn to the last join. Call from a
/// green thread.
pub fn all_sleep_100ms(count: usize) -> Duration {
    let start = Instant::now();
    let hs: Vec<_> = (0..count)
        .map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(100))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

/// Kills and joins the green threads of [`spawn_parked_sleepers`].
pub fn kill_all(hs: Vec<JoinHandle<()>>) {
    for h in hs {
        h.kill();
        let _ = h.join();
    }
}
