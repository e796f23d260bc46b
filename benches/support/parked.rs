//! 100,000 green threads parked in a sleep, then killed: what the runtime
//! bench does to measure RSS per green thread before its criterion groups,
//! and what `hub_profile` replays to reproduce that bench's state.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

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

/// Kills and joins the green threads of [`spawn_parked_sleepers`].
pub fn kill_all(hs: Vec<JoinHandle<()>>) {
    for h in hs {
        h.kill();
        let _ = h.join();
    }
}
