//! Helpers shared by the net, fs and server tests.
#![allow(dead_code)] // each test binary uses a subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenhouse::runtime::Runtime;
use greenhouse::thread::{self, JoinHandle};

pub fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Generous bound for waits that must end (tests never rely on it to
/// synchronise; it only turns a hang into a failure).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Spawns `f` as a green thread that runs on another worker (OS thread) than
/// the caller's; the runtime must have at least two workers. New green
/// threads are stealable, so candidates are spawned in batches until another
/// worker has stolen one. A candidate that lands on the caller's worker
/// blocks that OS thread for a millisecond (a std sleep, on purpose) so the
/// other worker gets time to steal the rest, then returns.
pub fn spawn_elsewhere<T, F>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let here = std::thread::current().id();
    let slot = Arc::new(Mutex::new(Some(f)));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut candidates = Vec::new();
    let start = std::time::Instant::now();
    while start.elapsed() < PATIENCE {
        for _ in 0..4 {
            let slot = slot.clone();
            let tx = tx.clone();
            candidates.push(thread::spawn(move || {
                if std::thread::current().id() == here {
                    std::thread::sleep(Duration::from_millis(1));
                    return None;
                }
                let f = slot.lock().unwrap().take()?;
                let _ = tx.send(());
                Some(f())
            }));
        }
        thread::yield_now();
        if rx.try_recv().is_ok() {
            break;
        }
    }
    assert!(
        slot.lock().unwrap().is_none(),
        "no other worker picked up a green thread"
    );
    thread::spawn(move || {
        candidates
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .next()
            .expect("the chosen candidate ran f")
    })
}
